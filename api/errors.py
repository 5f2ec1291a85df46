"""The one place where failures become HTTP responses: JSON `{"error": {type, code, message}}`.

Nothing else in `api/` builds an error body, and no response ever carries a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.core.errors import (AuthenticationError, CitewiseError, ConfigError, DocumentError, GenerationError,
                                IndexBusyError, IndexStateError, IndexWriteError, InvalidRequestError, ModelServerError,
                                ModelUnavailableError,
                                NotFoundError, PayloadTooLargeError, QueueFullError, ReadOnlyError, RequestCancelled,
                                UnsupportedMediaError)

log = logging.getLogger("citewise.api")

HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
              415: "unsupported_media_type"}


#: The HTTP status of each kind of failure, most specific first (an error takes its first matching entry).
STATUS: tuple[tuple[type[CitewiseError], int], ...] = (
    (ReadOnlyError, 403), (IndexBusyError, 423), (IndexWriteError, 507), (IndexStateError, 409), (AuthenticationError, 401), (QueueFullError, 429),
    (NotFoundError, 404), (DocumentError, 422), (InvalidRequestError, 400), (ConfigError, 400),
    (PayloadTooLargeError, 413), (UnsupportedMediaError, 415), (ModelUnavailableError, 503),
    (RequestCancelled, 499), (GenerationError, 500),
)


def status_of(exc: CitewiseError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 500)


def headers_of(exc: CitewiseError) -> dict[str, str] | None:
    """What a client needs to act on the error: when to retry, how to authenticate."""
    if isinstance(exc, (QueueFullError, ModelServerError)):
        return {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, AuthenticationError):
        return {"WWW-Authenticate": "Bearer"}
    return None


def error_body(type_: str, code: str, message: str) -> dict[str, Any]:
    return {"error": {"type": type_, "code": code, "message": message}}


def error_of(exc: BaseException) -> dict[str, Any]:
    """The body for any exception: a CitewiseError speaks for itself, anything else is an internal error."""
    if isinstance(exc, CitewiseError):
        return error_body(type(exc).__name__, exc.code, str(exc))
    return error_body("InternalError", "internal_error", f"{type(exc).__name__}: {exc}")


def validation_message(errors: list[Any]) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CitewiseError)
    async def citewise_error(_: Request, exc: CitewiseError) -> JSONResponse:
        return JSONResponse(error_of(exc), status_code=status_of(exc), headers=headers_of(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("InvalidRequestError", "invalid_request", validation_message(exc.errors())),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body("HTTPError", code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_of(exc), status_code=500)
