"""The FAISS type follows collection size, is recorded in the manifest, reopens as recorded, and an HNSW
index (which cannot delete) never returns removed chunks. Real LocalIndex on disk; vectors are synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import pytest

from ingest.core.settings import IndexSettings
from ingest.core.types import Chunk, ChunkedDocument, ParsedDocument
from ingest.store.bm25_index import Bm25Analyzer
from ingest.store.local_index import LocalIndex
from tests.support import run_cli

DIM = 16
EMBEDDER = {"name": "synthetic", "dim": DIM, "max_seq_length": 256}
CHUNKS_PER_DOC = 10


def _doc(name: str, rng: np.random.Generator) -> tuple[str, ChunkedDocument, np.ndarray, list[str]]:
    texts = [f"{name} passage {i} about topic {name}" for i in range(CHUNKS_PER_DOC)]
    text = "\n".join(texts)
    chunks, start = [], 0
    for i, t in enumerate(texts):
        chunks.append(Chunk(ordinal=i, start=start, end=start + len(t), text=t, headings=[], page=None,
                            page_end=None, n_tokens=len(t.split())))
        start += len(t) + 1
    parsed = ParsedDocument(source=f"/docs/{name}.txt", title=name, elements=[], format="text",
                            content_hash=f"hash-{name}-{rng.integers(1 << 30)}")
    vectors = rng.standard_normal((CHUNKS_PER_DOC, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return name, ChunkedDocument(doc=parsed, text=text, chunks=chunks), vectors, [f"{name}-{i}" for i in range(10)]


def _open(path: Path, writable: bool = True, **settings: object) -> LocalIndex:
    return LocalIndex(path, EMBEDDER, Bm25Analyzer(), writable=writable, index_settings=IndexSettings(**settings),
                      threads=1)


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


@pytest.mark.unit
def test_auto_switches_to_hnsw_at_the_threshold_and_reopens_as_recorded(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "index"
    small = {"exact_below": 60, "hnsw_m": 8, "hnsw_ef_construction": 20, "hnsw_ef_search": 40}
    with _open(path, **small) as index:
        index.add_documents([_doc(f"d{i}", rng) for i in range(5)])  # 50 chunks: below the threshold
        index.flush()
        assert _manifest(path)["dense_index"] == {"kind": "flat"}
        assert index.stats()["dense_index"]["kind"] == "flat"
        index.add_documents([_doc("d5", rng), _doc("d6", rng)])  # 70 chunks
        index.flush()
        assert _manifest(path)["dense_index"] == {"kind": "hnsw", "m": 8, "ef_construction": 20, "ef_search": 40}
        assert index.stats()["dense_index"] == {"kind": "hnsw", "m": 8, "ef_construction": 20, "ef_search": 40,
                                                "vectors": 70, "removed": 0}
        ids = np.array(index.chunk_ids())
        stored = index.vectors(ids.tolist())

    # A reader uses what the manifest says, whatever its own settings would choose.
    with _open(path, writable=False, dense_index="flat") as reader:
        assert reader.faiss.spec.kind == "hnsw"
        hits = reader.search_dense(stored[:20], 1)
        assert sum(h[0][0] == i for h, i in zip(hits, ids[:20])) >= 19
        assert sorted(reader.faiss.ids().tolist()) == ids.tolist()

    # Shrinking below half the threshold returns a writer to exact search; in between it stays HNSW.
    with _open(path, **small) as index:
        for name in ("d0", "d1", "d2"):
            index.remove_document(name)
        assert index.faiss.spec.kind == "hnsw" and len(index.faiss) == 40
        index.remove_document("d3")
        index.remove_document("d4")
        assert index.faiss.spec.kind == "flat" and len(index.faiss) == 20
        index.flush()
    assert _manifest(path)["dense_index"] == {"kind": "flat"}


@pytest.mark.unit
def test_removed_documents_never_come_back_from_hnsw(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "index"
    keep_tombstones = {"dense_index": "hnsw", "hnsw_m": 8, "hnsw_ef_construction": 20, "hnsw_ef_search": 16,
                       "rebuild_removed_fraction": 0.9}
    docs = [_doc(f"d{i}", rng) for i in range(8)]
    with _open(path, **keep_tombstones) as index:
        index.add_documents(docs)
        index.flush()
        gone = {cid for cid, row in index.chunks(index.chunk_ids()).items() if row.doc_id == "d3"}
        index.remove_document("d3")
        assert index.faiss.removed == CHUNKS_PER_DOC  # tombstoned, not rebuilt
        queries = docs[3][2]  # the removed chunks' own vectors: each is its own nearest neighbour
        for hits in index.search_dense(queries, 10):
            assert len(hits) == 10 and not gone & {cid for cid, _ in hits}
        # a changed version of another document replaces its chunks (new ids); the old ones stay out
        old = set(index.faiss.ids().tolist())
        index.add_documents([_doc("d5", rng)])
        index.flush()
        replaced = old - set(index.faiss.ids().tolist())
        assert len(replaced) == CHUNKS_PER_DOC

    # The saved graph still holds the removed vectors; a reader tombstones them again from the store.
    with _open(path, writable=False) as reader:
        assert reader.faiss.removed == 2 * CHUNKS_PER_DOC
        for hits in reader.search_dense(np.vstack([queries, docs[5][2]]), 10):
            assert len(hits) == 10 and not (gone | replaced) & {cid for cid, _ in hits}

    # Past the configured fraction a writer rebuilds the graph from the store: no tombstones left.
    with _open(path, **dict(keep_tombstones, rebuild_removed_fraction=0.25)) as index:
        index.remove_document("d0")
        assert index.faiss.removed == 0 and len(index.faiss) == 60
        assert not (gone | replaced) & set(index.faiss.ids().tolist())
        index.flush()


def test_bench_search_runs_end_to_end() -> None:
    proc = run_cli("eval", "bench-search", "--synthetic", "20000", "--queries", "100", "--exact-queries", "20",
                   "--json", env={"CITEWISE_INDEX__EXACT_BELOW": "10000", "CITEWISE_INDEX__HNSW_EF_CONSTRUCTION": "32",
                                  "CITEWISE_INDEX__HNSW_EF_SEARCH": "128",
                                  "CITEWISE_MODELS__THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["vectors"] == 20000 and result["chosen_by"] == "auto"
    assert result["index"] == {"kind": "hnsw", "m": 32, "ef_construction": 32, "ef_search": 128}
    assert result["recall_at_10"] >= 0.9
    assert result["latency_ms"]["queries"] == 100 and result["exact_latency_ms"]["queries"] == 20
    assert result["index_bytes"] > 20000 * 384 * 4
    assert "Gaussian mixture" in result["data"]


def test_bench_search_sizes_an_ivf_pq_index_against_exact_search() -> None:
    proc = run_cli("eval", "bench-search", "--synthetic", "5000", "--queries", "50", "--exact-queries", "10",
                   "--type", "ivfpq", "--json", env={"CITEWISE_MODELS__THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["index"]["kind"] == "ivfpq" and result["chosen_by"] == "--type"
    # 64-byte codes and an id each: far smaller than the 1,536 bytes of a float32 vector
    assert result["index_bytes"] < 5000 * 384 * 4 / 5
    assert result["vectors_per_gb"] > 5 * 2**30 // (384 * 4)
    assert 0.2 <= result["recall_at_10"] <= 1.0
