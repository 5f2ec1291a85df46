"""Ingest benchmark: a folder into a fresh index, then the plain embedding path on the same chunks."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from generate.engine import Engine
from ingest.core.settings import Settings
from ingest.discovery import discover
from ingest.backends.sentence_transformer_embedder import SentenceTransformerEmbedder
from ingest.core.progress import Progress


def peak_rss_mb() -> float:
    """This process's peak resident memory."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_child_rss_mb() -> float:
    """The largest finished child's peak (parser workers are counted once they exit)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def spread_sample(folder: Path, settings: Settings, docs: int) -> list[Path]:
    """`docs` files spread evenly over the folder's ingestible files in their stable order.

    Fixed by position, not drawn at random, so every context mode (and every run) gets the same
    documents, and short and long ones alike.
    """
    found = [f.path for f in discover([folder], settings.ingest.include, settings.ingest.exclude) if f.fmt]
    if docs >= len(found):
        return found
    return [found[(i * len(found)) // docs] for i in range(docs)]


def bench_ingest(folder: Path, settings: Settings, progress: Progress | None = None,
                 baseline_sample: int = 1000, rounds: int = 3, docs: int = 0) -> dict[str, Any]:
    """Returns the figures; the baseline embeds the same chunk texts with stock sentence-transformers.

    `docs` > 0 ingests only that many of the folder's documents (see `spread_sample`), for modes too
    slow to run on a whole corpus; `baseline_sample` 0 skips the plain-embedding comparison.
    """
    paths = spread_sample(folder, settings, docs) if docs else [folder]
    with tempfile.TemporaryDirectory(prefix="citewise-bench-") as tmp:
        settings = settings.model_copy(deep=True)
        settings.index.path = Path(tmp) / "index"
        comps = Engine(settings)
        comps.embedder.embed(["warm up the model before timing"])
        executor_start_s = None
        if settings.ingest.executor == "ray":  # workers start (and load models) before timing, as the embedder
            started = time.perf_counter()
            comps.executor.warm_up()
            executor_start_s = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        with comps.open_index(writable=True) as index:
            ingestor = comps.ingestor(index, progress)
            summary = ingestor.ingest_paths(paths)
            wall = time.perf_counter() - started
            chunk_ids = index.chunk_ids()
            rows = index.chunks(chunk_ids)
            texts = [ingestor.contextualizer.embed_text(rows[i].to_chunk()) for i in chunk_ids]
            stored = index.vectors(chunk_ids)
        comps.close()  # let the parser workers exit so their peak memory is counted; stop cluster workers
        rss = peak_rss_mb()
        child_rss = peak_child_rss_mb()

    n_chunks = summary.chunks_added
    embed_s = summary.seconds.get("embed", 0.0)
    baseline = _baseline(comps, texts, stored, baseline_sample, rounds) if baseline_sample > 0 and texts else None
    return {
        "folder": str(folder),
        "sampled_documents": [str(p) for p in paths] if docs else None,
        "documents": summary.ingested,
        "failed": len(summary.failed),
        "chunks": n_chunks,
        "wall_seconds": round(wall, 2),
        "documents_per_s": round(summary.ingested / wall, 2) if wall else None,
        "chunks_per_s": round(n_chunks / wall, 2) if wall else None,
        "seconds_per_stage": summary.seconds,
        "embed_chunks_per_s": round(n_chunks / embed_s, 2) if embed_s else None,
        "baseline": baseline,
        "backend": comps.embedder.backend,
        "context_mode": settings.ingest.context_mode,
        "contexts_generated": summary.contexts_generated,
        "contexts_skipped": summary.contexts_skipped,
        "context_failed": summary.context_failed,
        "peak_rss_mb": round(rss, 1),
        "peak_rss_parser_worker_mb": round(child_rss, 1),
        "parse_workers": settings.ingest.parse_workers,
        "executor": summary.executor,
        "executor_start_seconds": executor_start_s,
        "prepared_by": summary.prepared_by,
        "failures": summary.failed,
    }


def _baseline(comps: Engine, texts: list[str], stored: np.ndarray, baseline_sample: int,
              rounds: int) -> dict[str, Any]:
    """The same chunk texts through stock sentence-transformers, in rounds alternating with ours."""
    sample_idx = np.random.default_rng(0).permutation(len(texts))[:baseline_sample]
    sample = [texts[i] for i in sample_idx]
    plain = SentenceTransformerEmbedder(comps.embedder.path, comps.embedder.name, backend="plain")
    plain.embed(["warm up"])
    # Alternating rounds: a slow spell on a shared machine then hits both paths, not one.
    plain_runs: list[float] = []
    fast_runs: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        plain_vecs = plain.embed(sample)
        plain_runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        comps.embedder.embed(sample)
        fast_runs.append(time.perf_counter() - t0)
    plain_s = float(np.median(plain_runs))
    fast_sample_s = float(np.median(fast_runs))
    cosine = np.sum(plain_vecs * stored[sample_idx], axis=1)
    return {
        "sample_chunks": len(sample),
        "plain_chunks_per_s": round(len(sample) / plain_s, 2) if plain_s else None,
        "optimized_chunks_per_s_same_sample": round(len(sample) / fast_sample_s, 2) if fast_sample_s else None,
        "speedup": round(plain_s / fast_sample_s, 2) if fast_sample_s else None,
        "rounds": rounds,
        "speedup_per_round": [round(p / f, 2) for p, f in zip(plain_runs, fast_runs) if f],
        "min_cosine_vs_plain": round(float(cosine.min()), 5),
        "mean_cosine_vs_plain": round(float(cosine.mean()), 5),
    }
