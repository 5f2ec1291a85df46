"""What runs inside a Ray worker actor: read (when given a path), parse, chunk, contextualize, embed.

Plain classes, made remote by `ray_executor` (this module never imports ray at import time, so it
is testable without a cluster). A worker parses in its own process under an alarm clock: Ray already
isolates it, and a worker that dies on a file is restarted by Ray while the file fails with a reason.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ingest.core.errors import DocumentError
from ingest.core.executor import FileJob, PreparedDocument
from ingest.core.progress import NullProgress
from ingest.discovery import read_regular_file
from ingest.llm_context import ContextCache
from ingest.pooled_parser import parse_with_alarm
from ingest.preparer import WorkerParts
from ingest.store.docstore import SqliteDocStore

#: Builds a worker's components from the settings it was given, with the llm context cache (or None).
PartsFactory = Callable[[ContextCache | None], WorkerParts]


class ContextLookup:
    """The index's llm context cache as a worker sees it: lookups go to the cache reader on the driver's node,
    sentences written here are kept for the driver to store (it is the one writer of the index)."""

    def __init__(self, lookup: Callable[[list[str]], dict[str, str]]) -> None:
        self.lookup = lookup
        self.written: dict[str, str] = {}  # by this worker, all documents: another chunk may share a prompt
        self.fresh: dict[str, str] = {}  # since the last `take_fresh`

    def cached_contexts(self, keys: list[str]) -> dict[str, str]:
        found = self.lookup([k for k in keys if k not in self.written]) if keys else {}
        found.update({k: self.written[k] for k in keys if k in self.written})
        return found

    def cache_context(self, key: str, context: str, source: str) -> None:
        """Kept with the document prepared now; the driver stores it with that document's source."""
        self.written[key] = context
        self.fresh[key] = context

    def take_fresh(self) -> dict[str, str]:
        fresh, self.fresh = self.fresh, {}
        return fresh


class CacheReader:
    """Runs on the driver's node (where the index is): reads the store's context cache, read-only, while
    the driver writes (SQLite in WAL mode lets readers and the one writer work at once)."""

    def __init__(self, store_path: str) -> None:
        self.store = SqliteDocStore(Path(store_path), writable=False)

    def cached_contexts(self, keys: list[str]) -> dict[str, str]:
        return self.store.cached_contexts(keys)


class PrepareWorker:
    """One worker: its components are built once (models load here), then it prepares one file per call."""

    def __init__(self, parts: PartsFactory, max_file_mb: float, parse_timeout: float,
                 cache_lookup: Callable[[list[str]], dict[str, str]] | None = None) -> None:
        self.cache = ContextLookup(cache_lookup) if cache_lookup is not None else None
        self.parts = parts(self.cache)
        self.max_file_mb = max_file_mb
        self.parse_timeout = parse_timeout
        self.name = f"{_node()}:{os.getpid()}"

    def ready(self) -> str:
        """Load the embedder now, so the first document does not pay for it; answers where this worker runs."""
        self.parts.embedder.warm_up()
        return self.name

    def prepare(self, job: FileJob) -> PreparedDocument:
        prepared = self._prepare(job)
        prepared.worker = self.name
        if self.cache is not None:
            prepared.new_contexts = self.cache.take_fresh()
        return prepared

    def _prepare(self, job: FileJob) -> PreparedDocument:
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        data = job.data
        if data is None:
            try:
                assert job.path is not None
                data = read_regular_file(Path(job.path), job.source, self.max_file_mb)
            except DocumentError as exc:
                return PreparedDocument(job.source, failure=exc.reason, seconds=seconds)
        doc, reason = self._parse(job, data)
        seconds["parse"] = time.perf_counter() - started
        if doc is None:
            return PreparedDocument(job.source, failure=reason or "parse failed", seconds=seconds)
        preparer, progress = self.parts.preparer, NullProgress()
        prepared = preparer.chunk(doc, progress, seconds)
        if prepared.chunked is None:
            return prepared
        return preparer.embed(preparer.contextualize(prepared, progress), self.parts.embedder)

    def _parse(self, job: FileJob, data: bytes) -> tuple[Any, str | None]:
        """Under an alarm clock when Ray runs this on the main thread (it does for a plain actor);
        otherwise the driver's own deadline is what stops a file that never finishes."""
        parser = self.parts.parser
        if threading.current_thread() is threading.main_thread():
            _, doc, reason = parse_with_alarm(parser, (job.source, data, job.fmt), self.parse_timeout)
            return doc, reason
        try:
            return parser.parse(job.source, data, job.fmt), None
        except DocumentError as exc:
            return None, exc.reason
        except Exception as exc:  # a parser bug is this file's failure, not the worker's
            return None, f"parser error: {type(exc).__name__}: {str(exc)[:300]}"


def _node() -> str:
    """The Ray node this worker runs on (two nodes may share a host name), else the host name."""
    try:
        import ray

        if ray.is_initialized():
            return str(ray.get_runtime_context().get_node_id())[:12]
    except ImportError:
        pass
    return os.uname().nodename
