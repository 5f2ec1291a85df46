"""POST /v1/search: ranked passages with their sources; no language model runs."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import State
from api.responses import SearchHitOut, SearchResponse
from api.schemas import SearchRequest
from ingest.core.errors import InvalidRequestError

router = APIRouter(tags=["search"])


@router.post("/v1/search", summary="Ranked passages with scores and sources; no generation",
             response_model=SearchResponse)
async def search(body: SearchRequest, state: State) -> SearchResponse:
    if not body.query.split():  # refused like a blank report question, not answered with arbitrary hits
        raise InvalidRequestError("the query is empty")

    def work() -> SearchResponse:
        hits = state.searcher().search(body.query, body.k, body.options.mode)
        return SearchResponse(query=body.query, hits=[
            SearchHitOut(rank=r, score=h.score, doc_id=h.chunk.doc_id, title=h.chunk.title, source=h.chunk.source,
                         section=h.chunk.headings, page=h.chunk.page, start=h.chunk.start, end=h.chunk.end,
                         text=h.chunk.text)
            for r, h in enumerate(hits, 1)])

    return await run_in_threadpool(work)
