"""Server-Sent Events framing, and the one way a stream reports a failure after its headers went out."""

from __future__ import annotations

import json
import logging
from contextlib import aclosing
from typing import Any, AsyncIterator

from api.errors import error_of
from ingest.core.errors import CitewiseError, RequestCancelled
from ingest.core.text import normalize_ws

log = logging.getLogger("citewise.api")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


def comment(text: str) -> bytes:
    """A line clients ignore: progress for people reading the raw stream, keeps proxies from timing out."""
    return f": {normalize_ws(text)}\n\n".encode("utf-8")


async def guarded(frames: AsyncIterator[bytes], error_frame: Any) -> AsyncIterator[bytes]:
    """Pass frames through; a failure mid-stream becomes one last error frame instead of a cut connection."""
    try:
        async with aclosing(frames) as it:  # type: ignore[type-var]
            async for frame in it:
                yield frame
    except RequestCancelled:
        return
    except Exception as exc:
        if not isinstance(exc, CitewiseError):
            log.exception("stream failed")
        yield error_frame(error_of(exc))
