"""The HTTP API: report requests, search and document management over one index directory.

Models and the read-side index are loaded once and shared. Blocking work (models, disk) runs in
worker threads, never on the event loop; llama.cpp calls are serialised by the generator's lock,
and writes to the index by one lock here (plus the index's own file lock against other processes).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Literal

from fastapi import FastAPI, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.components import Components
from api.errors import install_error_handlers
from api.settings import Settings
from generate.research import MAX_QUESTION_CHARS
from ingest.errors import InvalidRequestError, NotFoundError
from ingest.store.local_index import LocalIndex

STATIC = Path(__file__).parent / "static"


class ReportRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    check: bool = Field(default=False, description="Treat the question as a claim and give a verdict.")


class AppState:
    """Shared components plus a read-side index that catches up with writes by generation."""

    def __init__(self, settings: Settings, components: Components | None = None) -> None:
        self.settings = settings
        self.components = components or Components(settings)
        self._reader: LocalIndex | None = None
        self._read_lock = threading.Lock()
        self.write_lock = threading.Lock()

    def reader(self) -> LocalIndex:
        with self._read_lock:
            if self._reader is None:
                self._reader = self.components.open_index()
            return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def create_app(settings: Settings, components: Components | None = None) -> FastAPI:
    state = AppState(settings, components)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="citewise", version="0.1.0", lifespan=lifespan,
                  description="Local RAG whose every citation is a verified verbatim quote.")
    app.state.citewise = state
    install_error_handlers(app)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "index": str(settings.index.path)}

    @app.post("/v1/reports")
    async def report(body: ReportRequest) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            researcher = state.components.researcher(state.reader())
            return researcher.run(body.question, task="check" if body.check else "answer").to_dict()

        return await run_in_threadpool(work)

    @app.get("/v1/search")
    async def search(q: str = Query(min_length=1, max_length=MAX_QUESTION_CHARS), k: int = Query(5, ge=1, le=100),
                     mode: Literal["hybrid", "dense", "bm25"] = "hybrid") -> dict[str, Any]:
        def work() -> dict[str, Any]:
            hits = state.components.searcher(state.reader()).search(q, k, mode)
            return {"query": q, "hits": [
                {"rank": r, "score": h.score, "doc_id": h.chunk.doc_id, "title": h.chunk.title,
                 "source": h.chunk.source, "section": h.chunk.headings, "page": h.chunk.page,
                 "start": h.chunk.start, "end": h.chunk.end, "text": h.chunk.text}
                for r, h in enumerate(hits, 1)]}

        return await run_in_threadpool(work)

    @app.get("/v1/documents")
    async def documents() -> dict[str, Any]:
        docs = await run_in_threadpool(lambda: state.reader().store.documents())
        return {"documents": [d.__dict__ for d in docs]}

    @app.get("/v1/documents/{doc_id}")
    async def document(doc_id: str, start: int | None = Query(None, ge=0),
                       end: int | None = Query(None, ge=0)) -> dict[str, Any]:
        """A document's stored text (or a slice of it): how a reader checks a quote in context."""
        def work() -> dict[str, Any]:
            store = state.reader().store
            doc = store.find_document(doc_id)
            if doc is None:
                raise NotFoundError(f"no document {doc_id!r} in {settings.index.path}")
            text = store.document_text(doc.id) or ""
            s, e = start or 0, len(text) if end is None else min(end, len(text))
            if s > e:
                raise InvalidRequestError(f"start {s} is after end {e}")
            return {**doc.__dict__, "start": s, "end": e, "text": text[s:e]}

        return await run_in_threadpool(work)

    @app.delete("/v1/documents/{doc_id}")
    async def delete(doc_id: str) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            with state.write_lock, state.components.open_index(writable=True) as idx:
                doc = idx.store.find_document(doc_id)
                if doc is None:
                    raise NotFoundError(f"no document {doc_id!r} in {idx.path}")
                removed = idx.remove_document(doc.id)
                idx.flush()
            return {"removed": doc.id, "source": doc.source, "chunks": removed}

        return await run_in_threadpool(work)

    @app.post("/v1/documents")
    async def upload(files: list[UploadFile] = File(...)) -> dict[str, Any]:
        """Store uploaded files under the index's `uploads/` folder (their source path) and ingest them."""
        uploads = Path(settings.index.path) / "uploads"
        saved: list[Path] = []
        with tempfile.TemporaryDirectory() as tmp:
            for f in files:
                name = Path(f.filename or "").name
                if not name or name.startswith("."):
                    raise InvalidRequestError(f"uploaded file name {f.filename!r} is not usable")
                staged = Path(tmp) / name
                with open(staged, "wb") as out:
                    await run_in_threadpool(shutil.copyfileobj, f.file, out)
                saved.append(staged)

            def work() -> dict[str, Any]:
                with state.write_lock:
                    uploads.mkdir(parents=True, exist_ok=True)
                    final = []
                    for staged in saved:
                        target = uploads / staged.name
                        shutil.move(str(staged), target)
                        final.append(target)
                    with state.components.open_index(writable=True) as idx:
                        summary = state.components.ingestor(idx).ingest_paths(final)
                return summary.to_dict()

            return await run_in_threadpool(work)

    return app
