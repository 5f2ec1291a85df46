"""The one place where failures become HTTP responses: JSON `{type, code, message}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import CitewiseError

log = logging.getLogger("citewise.api")


def error_body(type_: str, code: str, message: str) -> dict[str, str]:
    return {"type": type_, "code": code, "message": message}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CitewiseError)
    async def citewise_error(_: Request, exc: CitewiseError) -> JSONResponse:
        return JSONResponse(error_body(type(exc).__name__, exc.code, str(exc)), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(error_body("InvalidRequestError", "invalid_request", problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else "http_error"
        return JSONResponse(error_body("HTTPError", code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body("InternalError", "internal_error", f"{type(exc).__name__}: {exc}"),
                            status_code=500)
