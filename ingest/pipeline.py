"""The ingestion pipeline: discover -> read -> parse -> chunk -> context -> embed -> store, in batches.

Each batch of whole documents (`commit_every` of them, or fewer once `commit_every_s` seconds of work
have gone into it) is stored in one transaction, so an interrupted run keeps what it finished and a
re-run picks up the rest (unchanged files are recognised by content hash). Stored documents whose
contexts were made in another mode are re-contextualized from the store, without re-parsing, at the
end of every run.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ingest.chunker import StructureChunker
from ingest.context import Contextualizer
from ingest.discovery import discover, read_regular_file
from ingest.core.embedder import Embedder
from ingest.core.index import WritableIndex
from ingest.core.errors import DocumentError
from ingest.core.parser import Parser
from ingest.core.progress import NullProgress, Progress
from ingest.core.settings import IngestSettings
from ingest.core.types import ChunkedDocument, ParsedDocument


@dataclass
class IngestSummary:
    """What a run did, file by file where something went wrong."""

    files_seen: int = 0
    ingested: int = 0
    unchanged: int = 0
    chunks_added: int = 0
    chunks_reused: int = 0  # vectors taken from identical text already in the index
    recontextualized: int = 0  # stored documents given contexts of the current mode, without re-parsing
    contexts_generated: int = 0  # llm mode: sentences written by the model in this run
    contexts_cached: int = 0  # llm mode: sentences taken from the store's cache
    contexts_skipped: int = 0  # llm mode: chunks that name their subject kept the structure trail alone
    context_failed: list[dict[str, str]] = field(default_factory=list)  # indexed with structure context
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, stage: str, since: float) -> None:
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - since, 4)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def document_id(source: str) -> str:
    """Stable across re-ingests of the same source, so links and `docs rm` keep working."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


class Ingestor:
    """Runs the pipeline into one index; components are passed in, already configured."""

    def __init__(self, index: WritableIndex, parser: Parser, chunker: StructureChunker, embedder: Embedder,
                 contextualizer: Contextualizer, settings: IngestSettings,
                 progress: Progress | None = None) -> None:
        self.index = index
        self.parser = parser
        self.chunker = chunker
        self.embedder = embedder
        self.contextualizer = contextualizer
        self.settings = settings
        self.progress = progress or NullProgress()
        self._embed_total = 0
        self._context_total = 0
        self._contextualized: set[str] = set()  # ids done in this run (a fallback is not retried at once)

    def ingest_paths(self, paths: list[Path]) -> IngestSummary:
        summary = IngestSummary()
        self.parser.use_temp_dir(self.index.temp_path)
        found = list(discover(paths, self.settings.include, self.settings.exclude))
        todo = []
        for item in found:
            if item.reason is not None:
                (summary.failed if item.failed else summary.skipped).append(
                    {"path": str(item.path), "reason": item.reason})
            else:
                todo.append(item)
        summary.files_seen = len(found)
        self.progress.stage("parse", len(todo))
        self.progress.stage("chunk", len(todo))
        self.progress.stage("context", 0)
        self.progress.stage("embed", 0)

        def jobs() -> Iterator[tuple[str, bytes, str]]:
            for item in todo:
                job = self._read(item.path, item.fmt or "text", summary)
                if job is None:
                    self.progress.advance("parse")
                else:
                    yield job

        def parsed() -> Iterator[ParsedDocument]:
            results = self.parser.parse_many(jobs())
            while True:
                started = time.perf_counter()
                item = next(results, None)
                summary.timed("parse", started)
                if item is None:
                    return
                source, result = item
                self.progress.advance("parse")
                if isinstance(result, DocumentError):
                    summary.failed.append({"path": source, "reason": result.reason})
                    continue
                summary.warnings.extend({"path": source, "warning": w} for w in result.warnings)
                yield result

        self._ingest(parsed(), summary)
        return summary

    def ingest_documents(self, docs: list[ParsedDocument]) -> IngestSummary:
        """Ingest already-parsed documents (datasets given as records rather than files)."""
        summary = IngestSummary()
        self.progress.stage("chunk", len(docs))
        self.progress.stage("context", 0)
        self.progress.stage("embed", 0)

        def fresh() -> Iterable[ParsedDocument]:
            for doc in docs:
                summary.files_seen += 1
                if self.index.content_hash(doc.source) == doc.content_hash:
                    summary.unchanged += 1
                    self.progress.advance("chunk")
                else:
                    yield doc

        self._ingest(fresh(), summary)
        return summary

    def _read(self, path: Path, fmt: str, summary: IngestSummary) -> tuple[str, bytes, str] | None:
        """Size limit, read and content-hash check; None when the file is unchanged or unreadable."""
        source = str(path.resolve())
        try:
            data = read_regular_file(path, source, self.settings.max_file_mb)
        except DocumentError as exc:
            summary.failed.append({"path": exc.path, "reason": exc.reason})
            return None
        if self.index.content_hash(source) == hashlib.sha256(data).hexdigest():
            summary.unchanged += 1
            return None
        return source, data, fmt

    def _ingest(self, docs: Iterable[ParsedDocument], summary: IngestSummary) -> None:
        def chunked() -> Iterator[ChunkedDocument]:
            for doc in docs:
                started = time.perf_counter()
                try:
                    result: ChunkedDocument | None = self.chunker.chunk(doc)
                except DocumentError as exc:
                    summary.failed.append({"path": exc.path, "reason": exc.reason})
                    result = None
                summary.timed("chunk", started)
                self.progress.advance("chunk")
                if result is not None:
                    yield result

        self._contextualize_and_store(chunked(), summary, restored=False)
        self._recontextualize(summary)
        started = time.perf_counter()
        self.index.flush()
        summary.timed("publish", started)

    def _recontextualize(self, summary: IngestSummary) -> None:
        """Stored documents whose contexts are of another mode (or fell back) get this mode's contexts."""
        stale = [d for d in self.index.stale_context_documents(self.contextualizer.mode)
                 if d not in self._contextualized]
        if stale:
            self.progress.log(f"re-contextualizing {len(stale)} stored documents for mode {self.contextualizer.mode}")
            self._contextualize_and_store((self.index.load_document(d) for d in stale), summary, restored=True)

    def _contextualize_and_store(self, docs: Iterable[ChunkedDocument], summary: IngestSummary,
                                 restored: bool) -> None:
        batch: list[ChunkedDocument] = []
        total = 0
        batch_started = time.perf_counter()
        for chunked in docs:
            total += len(chunked.chunks)
            self._contextualized.add(document_id(chunked.doc.source))
            self.progress.stage("context", self._context_total + total)
            started = time.perf_counter()
            outcome = self.contextualizer.contextualize(chunked, self.progress)
            summary.timed("context", started)
            summary.contexts_generated += outcome.generated
            summary.contexts_cached += outcome.cached
            summary.contexts_skipped += outcome.skipped
            chunked.context_mode = outcome.mode
            if outcome.failure:
                chunked.context_mode = "structure"
                summary.context_failed.append({"path": chunked.doc.source, "reason": outcome.failure})
            batch.append(chunked)
            if (len(batch) >= self.settings.commit_every
                    or time.perf_counter() - batch_started >= self.settings.commit_every_s):
                self._commit(batch, summary, restored)
                batch = []
                batch_started = time.perf_counter()
        if batch:
            self._commit(batch, summary, restored)
        self._context_total += total

    def _commit(self, batch: list[ChunkedDocument], summary: IngestSummary, restored: bool = False) -> None:
        texts = [self.contextualizer.embed_text(c) for d in batch for c in d.chunks]
        self._embed_total += len(texts)
        self.progress.stage("embed", self._embed_total)
        started = time.perf_counter()
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        known = self.index.vectors_by_key(keys)
        todo = {k: t for k, t in zip(keys, texts) if k not in known}
        fresh = self.embedder.embed(list(todo.values()))
        known.update(zip(todo.keys(), fresh))
        vectors = [known[k] for k in keys]
        summary.chunks_reused += len(texts) - len(todo)
        summary.timed("embed", started)
        self.progress.advance("embed", len(texts))
        started = time.perf_counter()
        rows, offset = [], 0
        for chunked in batch:
            n = len(chunked.chunks)
            rows.append((document_id(chunked.doc.source), chunked, vectors[offset : offset + n],
                         keys[offset : offset + n]))
            offset += n
        added = self.index.add_documents(rows)
        if restored:
            summary.recontextualized += len(batch)
        else:
            summary.chunks_added += added
            summary.ingested += len(batch)
        summary.timed("store", started)
        self.progress.log(f"stored {len(batch)} documents ({len(texts)} chunks)")
