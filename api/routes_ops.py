"""Health, readiness, Prometheus metrics and the web page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse, Response

from api.auth import ApiKeys
from api.state import AppState

STATIC = Path(__file__).parent / "static"


def ops_router(state: AppState, auth: ApiKeys) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The page holds no data: every request it makes carries the key the user enters."""
        return FileResponse(STATIC / "index.html")

    @router.get("/healthz", summary="The process is alive")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Models loaded and index open (503 until then)")
    async def ready() -> JSONResponse:
        ok, parts = state.readiness()
        body = {"status": "ready" if ok else "not ready", "parts": parts, "index": str(state.index_dir)}
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(auth)],
                response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return router
