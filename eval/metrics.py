"""IR metrics through ranx (not hand-written formulas), plus answer hits and latency percentiles."""

from __future__ import annotations

import re

import numpy as np

RETRIEVAL_METRICS = ("ndcg@10", "recall@5", "recall@20", "recall@100", "mrr@10")


def ir_metrics(qrels: dict[str, dict[str, int]], run: dict[str, list[str]],
               metrics: tuple[str, ...] = RETRIEVAL_METRICS) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query metrics for a run given as ranked doc ids per query."""
    from ranx import Qrels, Run, evaluate

    scored = {q: ({d: float(len(docs) - i) for i, d in enumerate(docs)} or {"__none__": 0.0})
              for q, docs in run.items()}
    ranx_qrels = Qrels({q: dict(v) for q, v in qrels.items()})
    ranx_run = Run(scored)
    means = evaluate(ranx_qrels, ranx_run, list(metrics), make_comparable=True)
    if isinstance(means, float):
        means = {metrics[0]: means}
    per_query = {m: {q: float(v) for q, v in ranx_run.scores[m].items()} for m in metrics}
    return {m: float(v) for m, v in means.items()}, per_query


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def answer_hit(passages: list[str], answers: list[str]) -> bool:
    """A passage contains a gold answer string, ignoring case and whitespace."""
    golds = [_norm(a) for a in answers if a.strip()]
    return any(g in _norm(p) for p in passages for g in golds)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0}
    arr = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95))}
