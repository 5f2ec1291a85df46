"""The HTTP API: reports, search, documents and ingest jobs over one index directory, plus a web page.

Models and the read-side index are loaded once and shared. Blocking work runs in worker threads,
never on the event loop; reports go through one bounded queue to the one writer model (429 when it is
full), and index writes through one lock here (plus the index's own file lock against other processes).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI

from api.auth import ApiKeys
from api.body_limit import BodyLimit
from api.errors import install_error_handlers
from api.metrics import RequestMetrics
from api.routers import documents, jobs, openai, reports, search
from api.routers.ops import ops_router
from api.state import AppState
from generate.engine import Engine
from ingest.core.settings import Settings


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The app over one index; `engine` lets a caller (a test) pass components it already loaded."""
    state = AppState(settings, engine)
    auth = ApiKeys(settings.server.api_keys)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.start()
        yield
        state.close()

    app = FastAPI(title="citewise", version="0.1.0", lifespan=lifespan,
                  description="Local RAG whose every citation is a verified verbatim quote. Errors are "
                              "`{error: {type, code, message}}`.")
    app.state.citewise = state  # what the `State` dependency hands each route
    install_error_handlers(app)
    secured = [Depends(auth)]
    for module in (reports, search, openai, documents, jobs):
        app.include_router(module.router, dependencies=secured)
    app.include_router(ops_router(auth))
    server = settings.server
    upload_limit = int(server.max_upload_mb * 1_048_576)

    def body_limit(scope: dict[str, Any]) -> int:
        if scope.get("path") == "/v1/documents" and scope.get("method") == "POST":
            return upload_limit
        return server.max_body_kb * 1024

    app.add_middleware(BodyLimit, limit_for=body_limit)
    app.add_middleware(RequestMetrics, metrics=state.metrics)
    return app


def app_from_environment() -> FastAPI:
    """The app from settings loaded in this process (uvicorn's factory for `citewise serve --workers N`)."""
    from ingest.core.settings import load_settings

    return create_app(load_settings())
