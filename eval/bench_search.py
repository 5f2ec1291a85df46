"""Dense index benchmark: build time, memory, recall@k against exact search and single-query latency."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench_ingest import peak_rss_mb
from eval.synthetic_vectors import DESCRIPTION, SyntheticVectors
from ingest.core.settings import IndexSettings
from ingest.store.dense_spec import DenseSpec
from ingest.store.faiss_index import FaissIndex


def rss_mb() -> float:
    """This process's resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def _single_query_ms(index: FaissIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One query per call, as a user's search runs: (ids per query, milliseconds per query)."""
    for q in queries[:5]:
        index.search(q[None], k)  # warm caches and the OpenMP pool before timing
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    times = np.zeros(len(queries))
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        _, found = index.search(q[None], k)
        times[i] = (time.perf_counter() - t0) * 1000
        ids[i, : found.shape[1]] = found[0]
    return ids, times


class IvfPqSizing:
    """An IVF-PQ index over the same vectors, built by the benchmark only: citewise does not serve one, but
    its bytes per vector and recall say when an index would need it (docs/deployment.md)."""

    def __init__(self, dim: int, vectors: np.ndarray, ids: np.ndarray, code_bytes: int = 64,
                 nprobe: int = 32) -> None:
        import faiss

        self.nlist = max(16, min(4096, int(4 * np.sqrt(len(vectors)))))
        self.code_bytes = code_bytes
        self.index = faiss.index_factory(dim, f"IVF{self.nlist},PQ{code_bytes}", faiss.METRIC_INNER_PRODUCT)
        # Polysemous training reorders each sub-quantizer's codes so Hamming distance can pre-filter
        # candidates, which inner-product search never uses; it took over 90% of the build.
        faiss.downcast_index(faiss.extract_index_ivf(self.index)).do_polysemous_training = False
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), min(len(vectors), 64 * self.nlist), replace=False)]
        self.index.train(sample)
        self.index.add_with_ids(vectors, ids)
        self.index.nprobe = nprobe

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(queries, k)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "ivfpq", "nlist": self.nlist, "pq_bytes": self.code_bytes, "nprobe": self.index.nprobe}


def _percentiles(ms: np.ndarray) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 3), "p95": round(float(np.percentile(ms, 95)), 3),
            "mean": round(float(ms.mean()), 3), "queries": len(ms)}


def bench_search(n: int, settings: IndexSettings, threads: int = 0, dim: int = 384, n_queries: int = 1000,
                 k: int = 10, kind: str | None = None, exact_queries: int = 200, seed: int = 0,
                 ef_sweep: tuple[int, ...] = ()) -> dict[str, Any]:
    """Builds the index `auto` picks for n vectors (or `kind`) beside an exact flat index over the same vectors;
    recall is measured on held-out queries, exact latency on the first `exact_queries` of them."""
    load_start = os.getloadavg()[0]
    spec = DenseSpec.choose(settings, n) if kind in (None, "auto") else (
        DenseSpec.hnsw(settings) if kind == "hnsw" else DenseSpec())  # ivfpq: built apart, compared to flat
    rss_start = rss_mb()
    t0 = time.perf_counter()
    data = SyntheticVectors(n, dim, seed)
    vectors = data.corpus()
    queries = data.queries(n_queries)
    generate_s = time.perf_counter() - t0
    ids = np.arange(n, dtype=np.int64)

    rss_before = rss_mb()
    t0 = time.perf_counter()
    index: Any = IvfPqSizing(dim, vectors, ids) if kind == "ivfpq" else FaissIndex.build(dim, spec, ids, vectors,
                                                                                         threads)
    build_s = time.perf_counter() - t0
    rss_index = rss_mb() - rss_before
    with tempfile.TemporaryDirectory(prefix="citewise-bench-search-") as tmp:
        index.save(Path(tmp) / "index.faiss")
        index_bytes = (Path(tmp) / "index.faiss").stat().st_size
    if spec.kind == "hnsw":  # never for ivfpq, whose spec is the flat one it is compared with
        index.ef_search = settings.hnsw_ef_search

    exact = index if spec.kind == "flat" and kind != "ivfpq" else FaissIndex.build(dim, DenseSpec(), ids, vectors, threads)
    del vectors
    t0 = time.perf_counter()
    truth_scores, truth = exact.search(queries, k)  # one batched exact pass: the ground truth
    truth_s = time.perf_counter() - t0

    def recall_of(found: np.ndarray) -> float:
        return float(np.mean([len(set(f[f >= 0]) & set(t)) / k for f, t in zip(found, truth)]))

    found, ms = _single_query_ms(index, queries, k)
    recall = recall_of(found)
    sweep = []
    for ef in ef_sweep if spec.kind == "hnsw" else ():  # other beam widths on the same graph
        index.ef_search = ef
        ef_found, ef_ms = _single_query_ms(index, queries, k)
        sweep.append({"ef_search": ef, f"recall_at_{k}": round(recall_of(ef_found), 4), **_percentiles(ef_ms)})
    _, exact_ms = _single_query_ms(exact, queries[:exact_queries], k)
    return {
        "vectors": n, "dim": dim, "k": k, "queries": n_queries, "data": DESCRIPTION,
        "index": index.to_dict() if kind == "ivfpq" else
        spec.to_dict() | ({"ef_search": settings.hnsw_ef_search} if spec.kind == "hnsw" else {}),
        "chosen_by": "auto" if kind in (None, "auto") else "--type",
        "exact_below": settings.exact_below,
        "threads": threads,
        "generate_seconds": round(generate_s, 2),
        "build_seconds": round(build_s, 2),
        "build_vectors_per_s": round(n / build_s, 1) if build_s else None,
        "index_bytes": index_bytes,
        "vectors_per_gb": int(n * 2**30 / index_bytes),
        "index_rss_mb": round(rss_index, 1),
        "rss_mb": round(rss_mb(), 1),
        "rss_at_start_mb": round(rss_start, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        f"recall_at_{k}": round(float(recall), 4),
        "latency_ms": _percentiles(ms),
        "ef_search_sweep": sweep,
        "exact_latency_ms": _percentiles(exact_ms),
        "exact_batch_seconds": round(truth_s, 2),
        "load_average": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2),
                         "cores": os.cpu_count()},
        "query_neighbour_cosine": {"top1": round(float(truth_scores[:, 0].mean()), 3),
                                   f"top{k}": round(float(truth_scores[:, -1].mean()), 3)},
    }
