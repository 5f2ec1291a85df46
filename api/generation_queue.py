"""A bounded queue in front of the one shared writer model: wait your turn, or hear 429 at once.

A report holds the model for seconds; letting requests pile up without bound would turn a burst into
a wall of timeouts. Admission is decided when the request arrives: a place is either free (the
request waits for the model) or not (QueueFullError with a Retry-After estimated from recent reports).
All counting happens on the event loop; `release` is idempotent.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque

from ingest.core.errors import QueueFullError

DEFAULT_REPORT_S = 15.0


class Ticket:
    """One admitted request: waiting until `start()` returns, then holding the model until `release()`."""

    def __init__(self, queue: GenerationQueue) -> None:
        self.queue = queue
        self.started_at: float | None = None
        self.released = False

    async def start(self) -> None:
        await self.queue._semaphore().acquire()
        if self.released:  # released while waiting (cancelled): give the place straight back
            self.queue._semaphore().release()
            return
        self.queue.waiting -= 1
        self.queue.running += 1
        self.started_at = time.monotonic()

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        q = self.queue
        if self.started_at is None:
            q.waiting -= 1
            return
        q.running -= 1
        q.recent.append(time.monotonic() - self.started_at)
        q._semaphore().release()


class GenerationQueue:
    """`workers` requests generate at once (one per model instance), `size` more may wait."""

    def __init__(self, size: int, workers: int = 1) -> None:
        self.size = size
        self.workers = workers
        self.waiting = 0
        self.running = 0
        self.recent: deque[float] = deque(maxlen=20)
        self._sem: asyncio.Semaphore | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        if self._sem is None:  # created on first use, inside the server's event loop
            self._sem = asyncio.Semaphore(self.workers)
        return self._sem

    def admit(self) -> Ticket:
        """A place in the queue, or QueueFullError right away."""
        if self.waiting + self.running >= self.workers + self.size:
            raise QueueFullError(f"the report queue is full ({self.running} generating, {self.waiting} waiting); "
                                 f"retry after about {self.retry_after_s()} s", self.retry_after_s())
        self.waiting += 1
        return Ticket(self)

    def retry_after_s(self) -> int:
        per_report = sum(self.recent) / len(self.recent) if self.recent else DEFAULT_REPORT_S
        ahead = (self.waiting + self.running) / self.workers
        return max(1, math.ceil(per_report * max(1.0, ahead)))
