"""Health, readiness, Prometheus metrics and the web page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse, Response

from api.auth import ApiKeys
from api.deps import State
from api.responses import Health, Readiness

STATIC = Path(__file__).resolve().parent.parent / "static"


def ops_router(auth: ApiKeys) -> APIRouter:
    """Health and readiness are open to probes; metrics need a key when keys are set."""
    router = APIRouter(tags=["operations"])

    @router.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The page holds no data: every request it makes carries the key the user enters."""
        return FileResponse(STATIC / "index.html")

    @router.get("/healthz", summary="The process is alive", response_model=Health)
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Models loaded and index open (503 until then)", response_model=Readiness,
                responses={503: {"model": Readiness, "description": "Not ready yet (or a part failed to load)"}})
    async def ready(state: State) -> JSONResponse:
        ok, parts = state.readiness()
        body = Readiness(status="ready" if ok else "not ready", parts=parts, index=str(state.index_dir))
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(auth)],
                response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def metrics(state: State) -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return router
