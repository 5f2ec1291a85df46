"""POST /v1/reports: a cited report as JSON, or as Server-Sent Events while it is researched and written."""

from __future__ import annotations

from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.deps import State
from api.disconnect import unless_disconnected
from api.report_runner import final_report
from api.responses import ReportOut
from api.schemas import ReportRequest
from api.sse import SSE_HEADERS, guarded, sse
from generate.events import Event
from generate.task import Task

STREAM_DOC = ("With `stream: true`, `text/event-stream` events: `queued`, `started`, research steps (`plan`, "
              "`search`, `evidence`, `write`), `token` (the writer's raw output as generated), `citation` (each "
              "verified citation, numbered as in the sources), then `report` (the whole report, timings and token "
              "counts) or `error` ({error: {type, code, message}}).")

router = APIRouter(tags=["reports"])


@router.post("/v1/reports", summary="Research a question and return a cited report", description=STREAM_DOC,
             response_model=ReportOut,
             responses={200: {"content": {"text/event-stream": {}}}, 429: {"description": "Queue full"}})
async def create_report(body: ReportRequest, request: Request, state: State) -> Any:
    ticket = state.admit()
    events = state.runner.events(ticket, body.question, Task.CHECK if body.check else Task.ANSWER, body.options)
    if body.stream:
        return StreamingResponse(guarded(_frames(events), lambda err: sse(err, "error")),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    report = await unless_disconnected(request, final_report(events))
    return report.to_dict()


async def _frames(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    async for event in events:
        yield sse(event.to_dict(), event.name)
