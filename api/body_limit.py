"""ASGI middleware: a request body over its limit is refused while it arrives, before it fills a disk."""

from __future__ import annotations

from typing import Any, Callable

from starlette.exceptions import HTTPException

ASGIApp = Callable[..., Any]


class BodyLimit:
    """`limit_for(scope)` gives the byte limit; a declared or streamed body beyond it raises 413."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[dict[str, Any]], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        seen = 0

        def too_large(size: str) -> HTTPException:
            return HTTPException(413, f"the request body is {size}; the limit for {scope.get('path')} is "
                                      f"{_human(limit)} (settings server.max_upload_mb / server.max_body_kb)")

        async def limited() -> dict[str, Any]:
            nonlocal seen
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise too_large(_human(int(declared)))
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(f"over {_human(limit)}")
            return message

        await self.app(scope, limited, send)


def _human(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB" if n >= 1_048_576 else f"{n / 1024:.0f} KB"
