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
from dataclasses import dataclass
from typing import AsyncIterator, Callable, ClassVar

from api.generation_queue import GenerationQueue, Ticket
from generate.events import Event, ReportReady
from generate.report import Report
from generate.researcher import Researcher
from generate.task import Task
from ingest.core.errors import RequestCancelled
from ingest.core.settings import ResearchOptions


@dataclass(frozen=True)
class Queued(Event):
    """Admitted: how many reports wait and run ahead of this one."""

    name: ClassVar[str] = "queued"
    waiting: int
    generating: int


@dataclass(frozen=True)
class Started(Event):
    """This report now holds the model."""

    name: ClassVar[str] = "started"


class _Done(Event):
    """Internal: the worker returned (the report, or the exception it raised, is in the future)."""


class ReportRunner:
    """Admission through the GenerationQueue, generation in one worker thread, events as an async stream."""

    def __init__(self, queue: GenerationQueue, researcher: Callable[[], Researcher],
                 on_report: Callable[[str, Report | None], None] | None = None) -> None:
        self.queue = queue
        self.researcher = researcher
        self.on_report = on_report or (lambda outcome, report: None)
        self._executor = ThreadPoolExecutor(max_workers=queue.workers, thread_name_prefix="citewise-report")

    def admit(self) -> Ticket:
        """Called before a response starts, so a full queue is a plain 429."""
        return self.queue.admit()

    async def events(self, ticket: Ticket, question: str, task: Task,
                     options: ResearchOptions | None = None) -> AsyncIterator[Event]:
        """Queued, Started, the research loop's events (search, plan, evidence, write, token, citation), then
        ReportReady."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Event] = asyncio.Queue()
        cancel = threading.Event()
        future: asyncio.Future[Report] | None = None

        def emit(event: Event) -> None:
            if cancel.is_set():
                raise RequestCancelled("the client disconnected; generation stopped")
            loop.call_soon_threadsafe(inbox.put_nowait, event)

        def work() -> Report:
            return self.researcher().run(question, task, options, on_event=emit)

        try:
            yield Queued(waiting=self.queue.waiting, generating=self.queue.running)
            await ticket.start()
            yield Started()
            future = loop.run_in_executor(self._executor, work)
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(inbox.put_nowait, _Done()))
            while True:
                event = await inbox.get()
                if isinstance(event, _Done):
                    break
                yield event
            report = future.result()
            self.on_report("done", report)
            yield ReportReady(report=report)
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
    async for event in events:
        if isinstance(event, ReportReady):
            report = event.report
    assert isinstance(report, Report), "the event stream ended without a report"
    return report
