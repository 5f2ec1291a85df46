"""Documents: list, read (a slice, to check a quote in context), upload to ingest, remove."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.deps import State
from api.job_store import new_job_id
from api.responses import DocumentList, DocumentOut, DocumentText, JobOut, Removed, UploadAccepted
from api.schemas import TextUpload
from api.uploads import check_content, safe_name
from ingest.core.errors import InvalidRequestError, NotFoundError, UnsupportedMediaError

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


router = APIRouter(tags=["documents"])


@router.get("/v1/documents", summary="Indexed documents", response_model=DocumentList)
async def documents(state: State) -> DocumentList:
    docs = await run_in_threadpool(lambda: state.reader().documents())
    return DocumentList(documents=[DocumentOut(**d.__dict__) for d in docs])


@router.get("/v1/documents/{doc_id}", summary="A document's metadata and stored text (or a slice of it)",
            response_model=DocumentText)
async def document(doc_id: str, state: State, start: int | None = Query(None, ge=0),
                   end: int | None = Query(None, ge=0)) -> DocumentText:
    """`start`/`end` are character offsets, as citations give them: how a reader checks a quote in context."""
    def work() -> DocumentText:
        index = state.reader()
        doc = index.find_document(doc_id)
        if doc is None:
            raise NotFoundError(f"no document {doc_id!r} in the index")
        text = index.document_text(doc.id) or ""
        s, e = min(start or 0, len(text)), len(text) if end is None else min(end, len(text))
        if s > e:
            raise InvalidRequestError(f"start {s} is after end {e}")
        return DocumentText(**doc.__dict__, length=len(text), start=s, end=e, text=text[s:e])

    return await run_in_threadpool(work)


@router.delete("/v1/documents/{doc_id}", summary="Remove a document (and its uploaded file)", response_model=Removed)
async def delete(doc_id: str, state: State) -> Removed:
    state.require_writer("removing a document")

    def work() -> Removed:
        state.reader()  # creates the index on a new server, so the answer is a plain 404
        with state.write_lock, state.engine.open_index(writable=True) as idx:
            doc = idx.find_document(doc_id)
            if doc is None:
                raise NotFoundError(f"no document {doc_id!r} in the index")
            removal = state.engine.remove_document(idx, doc.id, reader=state.reader())
        uploads = (state.index_dir / "uploads").resolve()
        source = Path(doc.source).resolve()
        if source.parent == uploads:
            source.unlink(missing_ok=True)
        return Removed(removed=doc.id, source=doc.source, chunks=removal.chunks, warnings=removal.warnings())

    return await run_in_threadpool(work)


@router.post("/v1/documents", status_code=202, summary="Upload files to ingest", description=UPLOAD_DOC,
             openapi_extra=UPLOAD_BODY, response_model=UploadAccepted)
async def upload(request: Request, state: State) -> UploadAccepted:
    state.require_writer("uploading documents")
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
    return UploadAccepted(job=JobOut(**job.to_dict()), status_url=f"/v1/jobs/{job.id}")


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
