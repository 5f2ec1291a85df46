"""OpenAI-compatible chat completions: the last user message is the question, the reply is the report.

The reply's content is the report in Markdown with numbered citations, and a `citations` field
carries each verified quote with its source and offsets. Streaming sends research progress as SSE
comments (ignored by clients), then the Markdown once its citations are verified (a statement is
never shown before it is checked), then a last chunk with `citations` and `usage`, then `[DONE]`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.deps import State
from api.disconnect import unless_disconnected
from api.report_runner import Queued, Started, final_report
from api.responses import ChatCompletion, ModelList
from api.schemas import ChatRequest
from api.sse import SSE_HEADERS, comment, guarded, sse
from generate.events import CitationVerified, Event, ReportReady, Searched, TokenWritten
from generate.markdown import render_markdown
from generate.report import Report
from generate.task import Task
from ingest.core.errors import InvalidRequestError, NotFoundError

MODEL = "citewise"

router = APIRouter(tags=["openai"])


@router.get("/v1/models", summary="The one model this server offers (OpenAI-compatible)", response_model=ModelList)
async def models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "citewise"}]}


@router.post("/v1/chat/completions", summary="A cited report as an OpenAI chat completion",
             response_model=ChatCompletion,
             responses={200: {"content": {"text/event-stream": {}}}, 429: {"description": "Queue full"}})
async def chat(body: ChatRequest, request: Request, state: State) -> Any:
    if body.model != MODEL:
        raise NotFoundError(f"model {body.model!r} does not exist; this server offers {MODEL!r}")
    users = [m.text() for m in body.messages if m.role == "user" and m.text().strip()]
    if not users:
        raise InvalidRequestError("no user message with text: the last user message is the question")
    ticket = state.admit()
    events = state.runner.events(ticket, users[-1], Task.ANSWER)
    reply = Reply(f"chatcmpl-{secrets.token_hex(12)}", int(time.time()))
    if body.stream:
        return StreamingResponse(guarded(reply.stream(events), lambda err: sse(err)),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    report = await unless_disconnected(request, final_report(events))
    return reply.whole(report)


class Reply:
    """One completion's id and timestamp, shared by all of its chunks."""

    def __init__(self, completion_id: str, created: int) -> None:
        self.id = completion_id
        self.created = created

    def _base(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": MODEL}

    def whole(self, report: Report) -> dict[str, Any]:
        return {**self._base("chat.completion"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": render_markdown(report)},
                             "finish_reason": "stop"}],
                "usage": usage(report), "citations": citations(report)}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return sse({**self._base("chat.completion.chunk"),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    async def stream(self, events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
        yield self._chunk({"role": "assistant", "content": ""})
        report: Report | None = None
        async for event in events:
            if isinstance(event, ReportReady):
                report = event.report
            elif not isinstance(event, (TokenWritten, Started)):  # raw JSON tokens are no reading for a chat client
                yield comment(f"{event.name}: {_brief(event)}")
        assert report is not None
        for line in render_markdown(report).splitlines(keepends=True):
            yield self._chunk({"content": line})
        yield self._chunk({}, "stop", citations=citations(report), usage=usage(report))
        yield b"data: [DONE]\n\n"


def citations(report: Report) -> list[dict[str, Any]]:
    return [{"number": c.number, "doc_id": c.doc_id, "title": c.title, "source": c.source, "section": c.section,
             "page": c.page, "start": c.start, "end": c.end, "quote": c.quote} for c in report.cited]


def usage(report: Report) -> dict[str, int]:
    prompt, completion = report.tokens.get("prompt", 0), report.tokens.get("completion", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _brief(event: Event) -> str:
    if isinstance(event, Searched):
        return f"{event.query!r} found {event.hits} passages"
    if isinstance(event, CitationVerified):
        return f"[{event.citation.number}] verified in {event.citation.title}"
    if isinstance(event, Queued):
        return f"waiting={event.waiting}, generating={event.generating}"
    return ", ".join(f"{k}={v}" for k, v in event.to_dict().items() if not isinstance(v, (list, dict)))
