"""The ingestion pipeline: discover -> read -> parse -> chunk -> context -> embed -> store, in batches.

Parsing, chunking and contexts run in an executor (`ingest.core.executor`): locally by default, or on a
Ray cluster, which embeds there too. This driver keeps what needs the index: discovery, the content-hash
check, committing, re-contextualizing and publishing, so either executor stores the same thing.

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
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ingest.chunker import StructureChunker
from ingest.context import Contextualizer
from ingest.core.embedder import Embedder
from ingest.core.errors import DocumentError
from ingest.core.executor import Executor, FileJob, PreparedDocument
from ingest.core.index import WritableIndex
from ingest.core.progress import NullProgress, Progress
from ingest.core.settings import IngestSettings
from ingest.core.types import ParsedDocument
from ingest.discovery import discover, read_regular_file
from ingest.preparer import DocumentPreparer, embed_key

if TYPE_CHECKING:
    import numpy as np


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
    executor: str = "local"
    prepared_by: dict[str, int] = field(default_factory=dict)  # cluster worker (node:pid) -> documents prepared
    trained_vectors: dict[str, Any] = field(default_factory=dict)  # the trained encoder's vectors stored again
    training_items: dict[str, Any] = field(default_factory=dict)  # training questions about removed chunks dropped

    def timed(self, stage: str, since: float) -> None:
        self.add_seconds(stage, time.perf_counter() - since)

    def add_seconds(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + seconds, 4)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def document_id(source: str) -> str:
    """Stable across re-ingests of the same source, so links and `docs rm` keep working."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


class Ingestor:
    """Runs the pipeline into one index; components are passed in, already configured."""

    def __init__(self, index: WritableIndex, preparer: DocumentPreparer, executor: Executor, embedder: Embedder,
                 settings: IngestSettings, progress: Progress | None = None) -> None:
        self.index = index
        self.preparer = preparer
        self.executor = executor
        self.embedder = embedder
        self.settings = settings
        self.progress = progress or NullProgress()
        self._embed_total = 0
        self._contextualized: set[str] = set()  # ids done in this run (a fallback is not retried at once)

    @property
    def contextualizer(self) -> Contextualizer:
        return self.preparer.contextualizer

    @property
    def chunker(self) -> StructureChunker:
        return self.preparer.chunker

    def ingest_paths(self, paths: list[Path]) -> IngestSummary:
        summary = IngestSummary(executor=self.executor.name)
        self.executor.use_index(self.index)
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

        def jobs() -> Iterator[FileJob]:
            for item in todo:
                job = self._read(item.path, item.fmt or "text", summary)
                if job is None:
                    self.progress.advance("parse")
                else:
                    yield job

        self._ingest(self.executor.prepare(jobs(), self.progress), summary)
        return summary

    def ingest_documents(self, docs: list[ParsedDocument]) -> IngestSummary:
        """Ingest already-parsed documents (datasets given as records rather than files), in this process."""
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

        self._ingest(self.preparer.prepare_parsed(fresh(), self.progress), summary)
        return summary

    def _read(self, path: Path, fmt: str, summary: IngestSummary) -> FileJob | None:
        """Size limit, read and content-hash check; None when the file is unchanged or unreadable.

        The driver reads every file, even one its executor's workers will read themselves: the hash
        decides what is skipped before any work is dispatched.
        """
        source = str(path.resolve())
        try:
            data = read_regular_file(path, source, self.settings.max_file_mb)
        except DocumentError as exc:
            summary.failed.append({"path": exc.path, "reason": exc.reason})
            return None
        digest = hashlib.sha256(data).hexdigest()
        if self.index.content_hash(source) == digest:
            summary.unchanged += 1
            return None
        if self.executor.wants_bytes(source):
            return FileJob(source, fmt, digest, data=data)
        return FileJob(source, fmt, digest, path=source)

    def _ingest(self, docs: Iterable[PreparedDocument], summary: IngestSummary) -> None:
        self._store(docs, summary, restored=False)
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
            docs = self.preparer.prepare_stored((self.index.load_document(d) for d in stale), self.progress)
            self._store(docs, summary, restored=True)

    def _store(self, docs: Iterable[PreparedDocument], summary: IngestSummary, restored: bool) -> None:
        """Commit prepared documents in batches of whole documents; failures are recorded, never stored."""
        batch: list[PreparedDocument] = []
        batch_started = time.perf_counter()
        for prepared in docs:
            for stage, seconds in prepared.seconds.items():
                summary.add_seconds(stage, seconds)
            if prepared.worker:
                summary.prepared_by[prepared.worker] = summary.prepared_by.get(prepared.worker, 0) + 1
            if prepared.chunked is None:
                summary.failed.append({"path": prepared.source, "reason": prepared.failure or "not prepared"})
                continue
            summary.warnings.extend({"path": prepared.source, "warning": w} for w in prepared.warnings)
            self._contextualized.add(document_id(prepared.chunked.doc.source))
            outcome = prepared.context
            if outcome is not None:
                summary.contexts_generated += outcome.generated
                summary.contexts_cached += outcome.cached
                summary.contexts_skipped += outcome.skipped
                if outcome.failure:
                    summary.context_failed.append({"path": prepared.chunked.doc.source, "reason": outcome.failure})
            for key, sentence in prepared.new_contexts.items():
                self.index.cache_context(key, sentence, prepared.chunked.doc.source)
            batch.append(prepared)
            if (len(batch) >= self.settings.commit_every
                    or time.perf_counter() - batch_started >= self.settings.commit_every_s):
                self._commit(batch, summary, restored)
                batch = []
                batch_started = time.perf_counter()
        if batch:
            self._commit(batch, summary, restored)

    def _commit(self, batch: list[PreparedDocument], summary: IngestSummary, restored: bool = False) -> None:
        """Vectors the index already holds for the same text are reused; the rest come with the document
        (prepared on a cluster) or are embedded here."""
        chunked = [p.chunked for p in batch if p.chunked is not None]
        keys: list[str] = []
        texts: dict[str, str] = {}
        brought: dict[str, np.ndarray] = {}
        for prepared, doc in zip(batch, chunked):
            if prepared.keys is not None and prepared.vectors is not None:
                keys.extend(prepared.keys)
                brought.update(zip(prepared.keys, prepared.vectors))
                continue
            doc_texts = [self.contextualizer.embed_text(c) for c in doc.chunks]
            doc_keys = [embed_key(t) for t in doc_texts]
            keys.extend(doc_keys)
            texts.update(zip(doc_keys, doc_texts))
        self._embed_total += len(keys)
        self.progress.stage("embed", self._embed_total)
        started = time.perf_counter()
        known = self.index.vectors_by_key(keys)
        todo = {k: texts[k] for k in keys if k not in known and k not in brought}
        remote = {k for k in keys if k in brought and k not in known}  # embedded where prepared
        summary.chunks_reused += len(keys) - len(todo) - len(remote)
        fresh = self.embedder.embed(list(todo.values())) if todo else []
        known.update(zip(todo.keys(), fresh))
        vectors = [known[k] if k in known else brought[k] for k in keys]
        summary.timed("embed", started)
        self.progress.advance("embed", len(keys))
        started = time.perf_counter()
        rows, offset = [], 0
        for doc in chunked:
            n = len(doc.chunks)
            rows.append((document_id(doc.doc.source), doc, vectors[offset : offset + n], keys[offset : offset + n]))
            offset += n
        added = self.index.add_documents(rows)
        if restored:
            summary.recontextualized += len(batch)
        else:
            summary.chunks_added += added
            summary.ingested += len(batch)
        summary.timed("store", started)
        self.progress.log(f"stored {len(batch)} documents ({len(keys)} chunks)")
