"""Stop work a client no longer waits for: a JSON request's handler is not cancelled when it hangs up."""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

from starlette.requests import Request

from ingest.core.errors import RequestCancelled

T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T], poll_s: float = 0.5) -> T:
    """Await `work`, cancelling it (and so its generation) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_s)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise RequestCancelled("the client disconnected; generation stopped")
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
