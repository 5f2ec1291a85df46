"""Preparing documents in this process: parse (through the configured parser), chunk, contextualize.

`LocalExecutor` is the default executor: parsing runs in the parser's worker processes, chunking and
contexts here, and the driver embeds at commit time (reusing vectors the index already holds). A
cluster worker runs the same `DocumentPreparer` steps on its own node, then embeds.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from ingest.chunker import StructureChunker
from ingest.context import Contextualizer
from ingest.core.embedder import Embedder
from ingest.core.errors import DocumentError
from ingest.core.executor import FileJob, PreparedDocument
from ingest.core.index import WritableIndex
from ingest.core.parser import Parser
from ingest.core.progress import NullProgress, Progress
from ingest.core.types import ChunkedDocument, ParsedDocument


def embed_key(text: str) -> str:
    """The key a vector is stored and reused under: the exact text that was embedded."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DocumentPreparer:
    """Chunk and contextualize parsed documents; counts context work across calls for the progress total."""

    def __init__(self, chunker: StructureChunker, contextualizer: Contextualizer) -> None:
        self.chunker = chunker
        self.contextualizer = contextualizer
        self._context_total = 0  # chunks announced to the "context" stage so far (all calls together)

    def chunk(self, doc: ParsedDocument, progress: Progress, seconds: dict[str, float]) -> PreparedDocument:
        """The document chunked (contexts not yet set), or the reason chunking refused it."""
        started = time.perf_counter()
        try:
            chunked = self.chunker.chunk(doc)
        except DocumentError as exc:
            seconds["chunk"] = time.perf_counter() - started
            progress.advance("chunk")
            return PreparedDocument(exc.path, failure=exc.reason, seconds=seconds)
        seconds["chunk"] = time.perf_counter() - started
        progress.advance("chunk")
        return PreparedDocument(doc.source, chunked=chunked, warnings=list(doc.warnings), seconds=seconds)

    def contextualize(self, prepared: PreparedDocument, progress: Progress) -> PreparedDocument:
        """Sets every chunk's context; a document whose llm contexts failed keeps structure context."""
        chunked = prepared.chunked
        assert chunked is not None
        self._context_total += len(chunked.chunks)
        progress.stage("context", self._context_total)
        started = time.perf_counter()
        outcome = self.contextualizer.contextualize(chunked, progress)
        prepared.seconds["context"] = time.perf_counter() - started
        chunked.context_mode = "structure" if outcome.failure else outcome.mode
        prepared.context = outcome
        return prepared

    def embed(self, prepared: PreparedDocument, embedder: Embedder) -> PreparedDocument:
        """Vectors for every chunk's embedded text (context plus chunk), each distinct text embedded once."""
        chunked = prepared.chunked
        assert chunked is not None
        started = time.perf_counter()
        texts = [self.contextualizer.embed_text(c) for c in chunked.chunks]
        keys = [embed_key(t) for t in texts]
        distinct = dict(zip(keys, texts))
        by_key = dict(zip(distinct, embedder.embed(list(distinct.values()))))
        prepared.keys = keys
        prepared.vectors = (np.stack([by_key[k] for k in keys]) if keys
                            else np.zeros((0, embedder.dim), dtype=np.float32))
        prepared.seconds["embed"] = time.perf_counter() - started
        return prepared

    def prepare_parsed(self, docs: Iterable[ParsedDocument], progress: Progress) -> Iterator[PreparedDocument]:
        for doc in docs:
            prepared = self.chunk(doc, progress, {})
            yield prepared if prepared.chunked is None else self.contextualize(prepared, progress)

    def prepare_stored(self, docs: Iterable[ChunkedDocument], progress: Progress) -> Iterator[PreparedDocument]:
        """Stored documents given this mode's contexts, without re-parsing or re-chunking."""
        for chunked in docs:
            yield self.contextualize(PreparedDocument(chunked.doc.source, chunked=chunked), progress)


class LocalExecutor:
    """Parsing in the parser's processes overlapped with chunking and contexts here; the driver embeds."""

    name = "local"

    def __init__(self, parser: Parser, preparer: DocumentPreparer) -> None:
        self.parser = parser
        self.preparer = preparer

    def wants_bytes(self, source: str) -> bool:
        return True

    def use_index(self, index: WritableIndex) -> None:
        self.parser.use_temp_dir(index.temp_path)

    def warm_up(self) -> None:
        """Parser processes start with the first file."""

    def prepare(self, jobs: Iterable[FileJob], progress: Progress | None = None) -> Iterator[PreparedDocument]:
        progress = progress or NullProgress()
        results = self.parser.parse_many((job.source, job.data or b"", job.fmt) for job in jobs)
        while True:
            started = time.perf_counter()
            item = next(results, None)
            seconds = {"parse": time.perf_counter() - started}
            if item is None:
                return
            source, result = item
            progress.advance("parse")
            if isinstance(result, DocumentError):
                yield PreparedDocument(source, failure=result.reason, seconds=seconds)
                continue
            prepared = self.preparer.chunk(result, progress, seconds)
            yield prepared if prepared.chunked is None else self.preparer.contextualize(prepared, progress)

    def close(self) -> None:
        """The parser belongs to the engine, which closes it."""


@dataclass
class WorkerParts:
    """What a worker preparing whole documents on its own node holds, built once: an in-process parser
    (the worker is itself the isolated process), the chunker and contextualizer, and the embedder."""

    parser: Parser
    preparer: DocumentPreparer
    embedder: Embedder
