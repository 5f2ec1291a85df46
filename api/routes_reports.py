"""POST /v1/reports: a cited report as JSON, or as Server-Sent Events while it is researched and written."""

from __future__ import annotations

from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.disconnect import unless_disconnected
from api.report_runner import final_report
from api.schemas import ReportRequest
from api.sse import SSE_HEADERS, guarded, sse
from api.state import AppState
from generate.report import Report

STREAM_DOC = ("With `stream: true`, `text/event-stream` events: `queued`, `started`, research steps (`plan`, "
              "`search`, `evidence`, `write`), `token` (the writer's raw output as generated), `citation` (each "
              "verified citation, numbered as in the sources), then `report` (the whole report, timings and token "
              "counts) or `error` ({error: {type, code, message}}).")


def reports_router(state: AppState) -> APIRouter:
    router = APIRouter(tags=["reports"])

    @router.post("/v1/reports", summary="Research a question and return a cited report", description=STREAM_DOC,
                 responses={200: {"content": {"text/event-stream": {}}}, 429: {"description": "Queue full"}})
    async def create_report(body: ReportRequest, request: Request) -> Any:
        ticket = state.admit()
        task = "check" if body.check else "answer"
        events = state.runner.events(ticket, body.question, task, body.options.overrides())
        if body.stream:
            return StreamingResponse(guarded(_frames(events), lambda err: sse(err, "error")),
                                     media_type="text/event-stream", headers=SSE_HEADERS)
        report = await unless_disconnected(request, final_report(events))
        return report.to_dict()

    return router


async def _frames(events: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[bytes]:
    async for name, data in events:
        yield sse(data.to_dict() if isinstance(data, Report) else data, name)

