"""Executors: the worker a cluster runs (read, parse under a deadline, chunk, contextualize, embed), driven
here in-process, and the driver's side of the contract (vectors and llm sentences that come back with a
document) checked against a local ingest of the same files. The real Ray cluster is in test_ray_ingest.py."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pytest

from generate.engine import Engine
from ingest.chunker import StructureChunker
from ingest.context import StructureContextualizer
from ingest.core.errors import ConfigError, DocumentError
from ingest.core.executor import FileJob, PreparedDocument
from ingest.core.index import WritableIndex
from ingest.core.progress import Progress
from ingest.core.settings import IngestSettings, Settings
from ingest.core.types import Element, ParsedDocument
from ingest.executors.ray_executor import RayExecutor
from ingest.executors.ray_worker import CacheReader, ContextLookup, PrepareWorker
from ingest.preparer import DocumentPreparer, WorkerParts
from ingest.store.local_index import STORE
from tests.fakes import FakeGenerator, HashingEmbedder
from tests.support import DEMO


class LineParser:
    """Each blank-line-separated paragraph an element; 'HANG' sleeps past any deadline, 'BAD' is refused."""

    def parse(self, source: str, data: bytes, fmt: str) -> ParsedDocument:
        if data.startswith(b"HANG"):
            time.sleep(5)
        if data.startswith(b"BAD"):
            raise DocumentError(source, "bad bytes")
        paragraphs = [p.strip() for p in data.decode().split("\n\n") if p.strip()]
        elements = [Element(p.lstrip("# "), "Title", depth=0) if p.startswith("#") else Element(p, "NarrativeText")
                    for p in paragraphs]
        return ParsedDocument(source, paragraphs[0].lstrip("# ") if paragraphs else "", elements, fmt,
                              hashlib.sha256(data).hexdigest())

    def use_temp_dir(self, path: Path) -> None:
        pass

    def parse_many(self, jobs: Iterable[tuple[str, bytes, str]]) -> Iterator[tuple[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def fake_parts(cache: Any) -> WorkerParts:
    embedder = HashingEmbedder()
    contextualizer = StructureContextualizer("structure", embedder, embedder.max_tokens)
    return WorkerParts(LineParser(), DocumentPreparer(StructureChunker(embedder, 40), contextualizer), embedder)


@pytest.mark.unit
def test_a_worker_reads_paths_under_the_size_cap_and_turns_failures_into_reasons(tmp_path: Path) -> None:
    worker = PrepareWorker(fake_parts, max_file_mb=0.001, parse_timeout=0.5)
    doc = tmp_path / "a.md"
    doc.write_text("# Alpacas\n\nThey hum to talk with the herd.\n")
    big = tmp_path / "big.md"
    big.write_text("x" * 2000)
    by_path = worker.prepare(FileJob(str(doc), "md", "", path=str(doc)))
    by_bytes = worker.prepare(FileJob("sent.md", "md", "", data=doc.read_bytes()))
    assert by_path.failure is None and by_path.chunked is not None
    assert by_path.chunked.chunks[0].context == "Alpacas" and by_path.chunked.context_mode == "structure"
    assert by_path.keys is not None and by_path.vectors is not None and by_path.vectors.shape == (1, 256)
    assert by_path.keys == by_bytes.keys and np.array_equal(by_path.vectors, by_bytes.vectors)
    assert set(by_path.seconds) == {"parse", "chunk", "context", "embed"} and by_path.worker
    over = worker.prepare(FileJob(str(big), "md", "", path=str(big)))
    assert over.chunked is None and "over the 0.001 MB limit" in (over.failure or "")
    missing = worker.prepare(FileJob(str(tmp_path / "gone.md"), "md", "", path=str(tmp_path / "gone.md")))
    assert "cannot read file" in (missing.failure or "")
    assert worker.prepare(FileJob("b.md", "md", "", data=b"BAD")).failure == "bad bytes"
    started = time.monotonic()
    hung = worker.prepare(FileJob("h.md", "md", "", data=b"HANG"))
    assert "parser timed out after 0.5 s" in (hung.failure or "") and time.monotonic() - started < 4


@pytest.mark.unit
def test_worker_context_cache_asks_the_driver_once_and_hands_new_sentences_back() -> None:
    asked: list[list[str]] = []
    stored = {"k1": "from the index"}

    def lookup(keys: list[str]) -> dict[str, str]:
        asked.append(keys)
        return {k: stored[k] for k in keys if k in stored}

    cache = ContextLookup(lookup)
    assert cache.cached_contexts(["k1", "k2"]) == {"k1": "from the index"}
    cache.cache_context("k2", "written here", "a.md")
    assert cache.cached_contexts(["k1", "k2"]) == {"k1": "from the index", "k2": "written here"}
    assert asked == [["k1", "k2"], ["k1"]]  # what this worker wrote is not asked for again
    assert cache.take_fresh() == {"k2": "written here"} and cache.take_fresh() == {}


@pytest.mark.unit
def test_the_ray_executor_sends_bytes_except_under_shared_paths_and_needs_no_cluster_for_nothing(
        tmp_path: Path) -> None:
    settings = IngestSettings(executor="ray", ray_shared_paths=[str(tmp_path / "shared")])
    executor = RayExecutor(fake_parts, settings)
    assert not executor.wants_bytes(str(tmp_path / "shared" / "a.md"))
    assert executor.wants_bytes(str(tmp_path / "sharedness" / "a.md"))
    assert executor.wants_bytes("/elsewhere/a.md")
    assert list(executor.prepare([])) == [] and executor._ray is None  # no work: Ray is never started


@pytest.mark.unit
def test_the_ray_executor_without_ray_installed_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is not installed
    executor = RayExecutor(fake_parts, IngestSettings(executor="ray"))
    with pytest.raises(ConfigError, match=r"Ray is not installed: pip install 'citewise\[ray\]'"):
        list(executor.prepare([FileJob("a.md", "md", "", data=b"# A")]))


class InProcessCluster:
    """The ray executor's contract without Ray: a PrepareWorker per call site, results in input order, llm
    lookups through the same read-only cache reader the cluster runs on the driver's node."""

    name = "in-process"

    def __init__(self, engine: Engine, shared: Path) -> None:
        self.engine = engine
        self.shared = shared.resolve()
        self.worker: PrepareWorker | None = None

    def wants_bytes(self, source: str) -> bool:
        return not Path(source).is_relative_to(self.shared)

    def use_index(self, index: WritableIndex) -> None:
        reader = CacheReader(str(index.path / STORE))
        s = self.engine.settings.ingest
        self.worker = PrepareWorker(self.engine.worker_parts, s.max_file_mb, s.parse_timeout_s, reader.cached_contexts)

    def prepare(self, jobs: Iterable[FileJob], progress: Progress | None = None) -> Iterator[PreparedDocument]:
        assert self.worker is not None
        for job in jobs:
            yield self.worker.prepare(job)

    def close(self) -> None:
        pass


def snapshot(path: Path) -> dict[str, Any]:
    """An index's documents, chunks and vectors by (source, ordinal), read without loading a model."""
    with Engine(Settings()).open_index(path) as index:
        ids = index.chunk_ids()
        rows = index.chunks(ids)
        vectors = index.vectors(ids)
        docs = {d.source: (d.content_hash, d.n_chunks, d.n_chars) for d in index.documents()}
    chunks = {(r.source, r.ordinal): (r.start, r.end, r.text, r.context, tuple(r.headings)) for r in rows.values()}
    by_chunk = {(rows[i].source, rows[i].ordinal): v for i, v in zip(ids, vectors)}
    return {"docs": docs, "chunks": chunks, "vectors": by_chunk}


def assert_same_index(a: dict[str, Any], b: dict[str, Any], min_cosine: float = 0.999) -> None:
    """Same documents, chunks (offsets, text, context); vectors equal within int8 noise."""
    assert a["docs"] == b["docs"]
    assert a["chunks"] == b["chunks"]
    cosines = [float(np.dot(a["vectors"][k], b["vectors"][k])) for k in a["vectors"]]
    assert min(cosines) > min_cosine, min(cosines)


def _folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "shared").mkdir(parents=True)
    for name in ("pep-0020.rst", "pep-0257.rst"):
        (docs / name).write_bytes((DEMO / name).read_bytes())
    (docs / "shared" / "w.md").write_text("# William the Conqueror\n\nWilliam was the first Norman king of England."
                                          "\n\n## Succession\n\nHe was succeeded by his son in 1087.\n")
    (docs / "shared" / "broken.txt").write_bytes(b"\x00\x01binary")
    return docs


def test_documents_prepared_by_workers_store_what_a_local_ingest_stores(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    docs = _folder(tmp_path)
    local = make_engine()
    with local.open_index(writable=True) as index:
        expected = local.ingestor(index).ingest_paths([docs])
    local_index = snapshot(tmp_path / "index")
    (tmp_path / "index").rename(tmp_path / "local-index")
    engine = make_engine()
    engine = Engine(engine.settings, embedder=engine.embedder, parser=engine.parser,
                    executor=InProcessCluster(engine, docs / "shared"))
    with engine.open_index(writable=True) as index:
        summary = engine.ingestor(index).ingest_paths([docs])
    assert summary.ingested == expected.ingested == 3 and summary.chunks_added == expected.chunks_added
    assert summary.failed == expected.failed and "binary content" in summary.failed[0]["reason"]
    assert summary.executor == "in-process" and sum(summary.prepared_by.values()) == 4  # the failed file too
    assert_same_index(snapshot(tmp_path / "index"), local_index)
    with engine.open_index(writable=True) as index:
        again = engine.ingestor(index).ingest_paths([docs])
    assert again.unchanged == 3 and again.ingested == 0 and sum(again.prepared_by.values()) == 1  # the failed file


def test_llm_sentences_written_by_workers_are_cached_by_the_driver(tmp_path: Path,
                                                                   make_engine: Callable[..., Engine]) -> None:
    docs = _folder(tmp_path)
    fake = FakeGenerator(reply=lambda m: f"About {m[-1]['content'].split()[1]}.", name="fake-fast")
    local = make_engine(fake, context_mode="llm")
    with local.open_index(writable=True) as index:
        local.ingestor(index).ingest_paths([docs])
    local_index = snapshot(tmp_path / "index")
    calls = len(fake.calls)
    (tmp_path / "index").rename(tmp_path / "local-index")

    def remote() -> Any:
        base = make_engine(fake, context_mode="llm")
        engine = Engine(base.settings, embedder=base.embedder, parser=base.parser, fast_model=fake,
                        executor=InProcessCluster(base, docs / "shared"))
        with engine.open_index(writable=True) as index:
            return engine.ingestor(index).ingest_paths([docs]), engine

    summary, engine = remote()
    assert summary.contexts_generated == calls and len(fake.calls) == 2 * calls
    assert_same_index(snapshot(tmp_path / "index"), local_index)
    with engine.open_index() as index:  # each kept with the document it was written for, so `docs rm` finds it
        sources = {d.source for d in index.documents()}
        cached = list(index.store.conn.execute("SELECT source FROM context_cache"))
    assert len(cached) == calls and {source for (source,) in cached} <= sources
    with (docs / "pep-0257.rst").open("a") as fh:  # a new last paragraph: the other chunks' prompts are unchanged
        fh.write("\nA closing remark on docstrings, added later.\n")
    edited, _ = remote()
    assert edited.ingested == 1 and edited.contexts_cached > 0 and edited.contexts_generated <= 2
    assert len(fake.calls) == 2 * calls + edited.contexts_generated  # cached sentences came from the index
