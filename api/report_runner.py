"""Runs one report at a time on the shared models, off the event loop, as a stream of events.

The research loop runs in a dedicated worker thread and reports through its `events` callback; each
event crosses to the event loop through a per-request asyncio queue, so a stream can only ever carry
its own request's tokens. When the consumer goes away (client disconnect), the next event the worker
tries to send raises RequestCancelled inside it: llama.cpp stops at the next token and the model and
the queue place are freed as soon as the worker returns.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable

from api.generation_queue import GenerationQueue, Ticket
from generate.report import Report
from generate.research import Researcher
from ingest.errors import RequestCancelled

Event = tuple[str, Any]
DONE = "_done"


class ReportRunner:
    """Admission through the GenerationQueue, generation in one worker thread, events as an async stream."""

    def __init__(self, queue: GenerationQueue, researcher: Callable[[dict[str, Any] | None], Researcher],
                 on_report: Callable[[str, Report | None], None] | None = None) -> None:
        self.queue = queue
        self.researcher = researcher
        self.on_report = on_report or (lambda outcome, report: None)
        self._executor = ThreadPoolExecutor(max_workers=queue.workers, thread_name_prefix="citewise-report")

    def admit(self) -> Ticket:
        """Called before a response starts, so a full queue is a plain 429."""
        return self.queue.admit()

    async def events(self, ticket: Ticket, question: str, task: str,
                     options: dict[str, Any] | None = None) -> AsyncIterator[Event]:
        """queued, started, the research loop's events (search, plan, evidence, write, token, citation), then
        ("report", Report)."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Event] = asyncio.Queue()
        cancel = threading.Event()
        future: asyncio.Future[Report] | None = None

        def emit(name: str, data: dict[str, Any]) -> None:
            if cancel.is_set():
                raise RequestCancelled("the client disconnected; generation stopped")
            loop.call_soon_threadsafe(inbox.put_nowait, (name, data))

        def work() -> Report:
            return self.researcher(options).run(question, emit, task=task)

        try:
            yield "queued", {"waiting": self.queue.waiting, "generating": self.queue.running}
            await ticket.start()
            yield "started", {}
            future = loop.run_in_executor(self._executor, work)
            future.add_done_callback(lambda _: inbox.put_nowait((DONE, {})))
            while True:
                name, data = await inbox.get()
                if name == DONE:
                    break
                yield name, data
            report = future.result()
            self.on_report("done", report)
            yield "report", report
        finally:
            if future is not None and not future.done():
                cancel.set()  # the worker stops at its next event; the place is freed when it has
                future.add_done_callback(lambda f: self._finished(f, ticket))
            else:
                if future is not None:
                    self._outcome(future)
                ticket.release()

    def _finished(self, future: asyncio.Future[Report], ticket: Ticket) -> None:
        self._outcome(future)
        ticket.release()

    def _outcome(self, future: asyncio.Future[Report]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, RequestCancelled):
            self.on_report("cancelled", None)
        elif exc is not None:
            self.on_report("failed", None)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def final_report(events: AsyncIterator[Event]) -> Report:
    """Drain a report's events, keeping the report (for callers that answer all at once)."""
    report = None
    async for name, data in events:
        if name == "report":
            report = data
    assert isinstance(report, Report), "the event stream ended without a report"
    return report
