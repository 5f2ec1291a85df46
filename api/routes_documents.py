"""Documents, ingest jobs and search: everything over the index that needs no language model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.job_store import new_job_id
from api.schemas import SearchRequest, TextUpload
from api.state import AppState
from api.uploads import check_content, safe_name
from ingest.errors import InvalidRequestError, NotFoundError, UnsupportedMediaError

UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "application/json": {"schema": {"type": "object", "required": ["documents"], "additionalProperties": False,
                                     "properties": {"documents": {"type": "array", "minItems": 1, "items": {
                                         "type": "object", "required": ["name", "text"],
                                         "additionalProperties": False,
                                         "properties": {"name": {"type": "string", "minLength": 1},
                                                        "text": {"type": "string", "minLength": 1}}}}}}},
}}}
UPLOAD_DOC = ("Multipart upload (field `files`, one or more) or JSON `{documents: [{name, text}]}`. Every file is "
              "checked first (name, size, format by content); if one fails nothing is kept. Returns 202 with the "
              "ingest job; follow it at `GET /v1/jobs/{id}`. A file with the name of an earlier upload replaces it "
              "once it ingests. A file that ingest refuses is not kept: the job's `result.failed` gives the reason "
              "and `removed: true`, and an earlier upload of that name stays, file and document.")


def documents_router(state: AppState) -> APIRouter:
    router = APIRouter(tags=["documents"])

    @router.post("/v1/search", summary="Ranked passages with scores and sources; no generation")
    async def search(body: SearchRequest) -> dict[str, Any]:
        if not body.query.split():  # refused like a blank report question, not answered with arbitrary hits
            raise InvalidRequestError("the query is empty")

        def work() -> dict[str, Any]:
            hits = state.components.searcher(state.reader()).search(body.query, body.k, body.options.mode)
            return {"query": body.query, "hits": [
                {"rank": r, "score": h.score, "doc_id": h.chunk.doc_id, "title": h.chunk.title,
                 "source": h.chunk.source, "section": h.chunk.headings, "page": h.chunk.page,
                 "start": h.chunk.start, "end": h.chunk.end, "text": h.chunk.text}
                for r, h in enumerate(hits, 1)]}

        return await run_in_threadpool(work)

    @router.get("/v1/documents", summary="Indexed documents")
    async def documents() -> dict[str, Any]:
        docs = await run_in_threadpool(lambda: state.reader().store.documents())
        return {"documents": [d.__dict__ for d in docs]}

    @router.get("/v1/documents/{doc_id}", summary="A document's metadata and stored text (or a slice of it)")
    async def document(doc_id: str, start: int | None = Query(None, ge=0),
                       end: int | None = Query(None, ge=0)) -> dict[str, Any]:
        """`start`/`end` are character offsets, as citations give them: how a reader checks a quote in context."""
        def work() -> dict[str, Any]:
            store = state.reader().store
            doc = store.find_document(doc_id)
            if doc is None:
                raise NotFoundError(f"no document {doc_id!r} in the index")
            text = store.document_text(doc.id) or ""
            s, e = min(start or 0, len(text)), len(text) if end is None else min(end, len(text))
            if s > e:
                raise InvalidRequestError(f"start {s} is after end {e}")
            return {**doc.__dict__, "length": len(text), "start": s, "end": e, "text": text[s:e]}

        return await run_in_threadpool(work)

    @router.delete("/v1/documents/{doc_id}", summary="Remove a document (and its uploaded file)")
    async def delete(doc_id: str) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            state.reader()  # creates the index on a new server, so the answer is a plain 404
            with state.write_lock, state.components.open_index(writable=True) as idx:
                doc = idx.store.find_document(doc_id)
                if doc is None:
                    raise NotFoundError(f"no document {doc_id!r} in the index")
                removed = idx.remove_document(doc.id)
                idx.flush()
            uploads = (state.index_dir / "uploads").resolve()
            source = Path(doc.source).resolve()
            if source.parent == uploads:
                source.unlink(missing_ok=True)
            return {"removed": doc.id, "source": doc.source, "chunks": removed}

        return await run_in_threadpool(work)

    @router.post("/v1/documents", status_code=202, summary="Upload files to ingest", description=UPLOAD_DOC,
                 openapi_extra=UPLOAD_BODY)
    async def upload(request: Request) -> dict[str, Any]:
        job_id = new_job_id()
        staging = state.jobs.staging_dir(job_id)
        try:
            ctype = request.headers.get("content-type", "")
            if ctype.startswith("multipart/form-data"):
                names = await _stage_files(request, staging, state.settings.server.max_upload_files)
            elif ctype.startswith("application/json"):
                names = await _stage_texts(request, staging)
            else:
                raise UnsupportedMediaError(f"content type {ctype or '(none)'!r}: send multipart/form-data with "
                                            "`files`, or application/json `{documents: [{name, text}]}`")
            await run_in_threadpool(lambda: [check_content(staging / n, n) for n in names])
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        job = await run_in_threadpool(state.jobs.submit, job_id, names)
        return {"job": job.to_dict(), "status_url": f"/v1/jobs/{job.id}"}

    @router.get("/v1/jobs", summary="Recent ingest jobs, newest first")
    async def jobs(limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        found = await run_in_threadpool(state.jobs.store.recent, limit)
        return {"jobs": [j.to_dict() for j in found]}

    @router.get("/v1/jobs/{job_id}", summary="An ingest job: state, progress per stage, per-file results")
    async def job(job_id: str) -> dict[str, Any]:
        found = await run_in_threadpool(state.jobs.store.get, job_id)
        if found is None:
            raise NotFoundError(f"no job {job_id!r}")
        return found.to_dict()

    @router.post("/v1/jobs/{job_id}/retry", status_code=202, summary="Run an interrupted or failed job again")
    async def retry(job_id: str) -> dict[str, Any]:
        return (await run_in_threadpool(state.jobs.retry, job_id)).to_dict()

    return router


def _claim(names: list[str], raw: str | None) -> str:
    name = safe_name(raw)
    if name in names:
        raise InvalidRequestError(f"two files in one upload are named {name!r}")
    names.append(name)
    return name


async def _stage_files(request: Request, staging: Path, max_files: int) -> list[str]:
    form = await request.form(max_files=max_files, max_fields=20)
    try:
        files = form.getlist("files") or form.getlist("file")
        if not files:
            raise InvalidRequestError("no files: send them in the multipart field `files`")
        names: list[str] = []
        staging.mkdir(parents=True, exist_ok=True)
        for f in files:
            if not isinstance(f, UploadFile):
                raise InvalidRequestError("the field `files` must carry files, not text")
            name = _claim(names, f.filename)
            with open(staging / name, "wb") as out:
                await run_in_threadpool(shutil.copyfileobj, f.file, out, 1 << 20)
        return names
    finally:
        await form.close()


async def _stage_texts(request: Request, staging: Path) -> list[str]:
    try:
        body = TextUpload.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    names: list[str] = []
    staging.mkdir(parents=True, exist_ok=True)
    for doc in body.documents:
        name = _claim(names, doc.name)
        (staging / name).write_text(doc.text, encoding="utf-8")
    return names
