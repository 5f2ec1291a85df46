"""The ingestion pipeline: discover -> read -> parse -> chunk -> context -> embed -> store, in batches.

Each batch of whole documents is stored in one transaction, so an interrupted run keeps what it
finished and a re-run picks up the rest (unchanged files are recognised by content hash).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ingest.chunker import StructureChunker
from ingest.context import StructureContextualizer
from ingest.discovery import discover
from ingest.embedder import Embedder
from ingest.errors import DocumentError
from ingest.parser import Parser
from ingest.progress import NullProgress, Progress
from ingest.settings import IngestSettings
from ingest.store.local_index import LocalIndex
from ingest.types import ChunkedDocument, ParsedDocument


@dataclass
class IngestSummary:
    """What a run did, file by file where something went wrong."""

    files_seen: int = 0
    ingested: int = 0
    unchanged: int = 0
    chunks_added: int = 0
    chunks_reused: int = 0  # vectors taken from identical text already in the index
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

    def __init__(self, index: LocalIndex, parser: Parser, chunker: StructureChunker, embedder: Embedder,
                 contextualizer: StructureContextualizer, settings: IngestSettings,
                 progress: Progress | None = None) -> None:
        self.index = index
        self.parser = parser
        self.chunker = chunker
        self.embedder = embedder
        self.contextualizer = contextualizer
        self.settings = settings
        self.progress = progress or NullProgress()
        self._embed_total = 0

    def ingest_paths(self, paths: list[Path]) -> IngestSummary:
        summary = IngestSummary()
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
        self.progress.stage("embed", 0)

        def fresh() -> Iterable[ParsedDocument]:
            for doc in docs:
                summary.files_seen += 1
                if self.index.store.content_hash(doc.source) == doc.content_hash:
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
            size = path.stat().st_size
            limit = self.settings.max_file_mb * 1024 * 1024
            if size > limit:
                raise DocumentError(source, f"file is {size / 2**20:.1f} MB, over the {self.settings.max_file_mb:g} MB "
                                            "limit (setting ingest.max_file_mb)")
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DocumentError(source, f"cannot read file: {exc.strerror or exc}") from exc
        except DocumentError as exc:
            summary.failed.append({"path": exc.path, "reason": exc.reason})
            return None
        if self.index.store.content_hash(source) == hashlib.sha256(data).hexdigest():
            summary.unchanged += 1
            return None
        return source, data, fmt

    def _ingest(self, docs: Iterable[ParsedDocument], summary: IngestSummary) -> None:
        batch: list[ChunkedDocument] = []
        for doc in docs:
            started = time.perf_counter()
            try:
                chunked = self.chunker.chunk(doc)
                self.contextualizer.contextualize(chunked)
            except DocumentError as exc:
                summary.failed.append({"path": exc.path, "reason": exc.reason})
                continue
            finally:
                summary.timed("chunk", started)
                self.progress.advance("chunk")
            batch.append(chunked)
            if len(batch) >= self.settings.commit_every:
                self._commit(batch, summary)
                batch = []
        if batch:
            self._commit(batch, summary)
        started = time.perf_counter()
        self.index.flush()
        summary.timed("publish", started)

    def _commit(self, batch: list[ChunkedDocument], summary: IngestSummary) -> None:
        texts = [self.contextualizer.embed_text(c) for d in batch for c in d.chunks]
        self._embed_total += len(texts)
        self.progress.stage("embed", self._embed_total)
        started = time.perf_counter()
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        known = self.index.store.vectors_by_key(keys)
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
        summary.chunks_added += self.index.add_documents(rows)
        summary.ingested += len(batch)
        summary.timed("store", started)
        self.progress.log(f"stored {len(batch)} documents ({len(texts)} chunks)")
