"""IR metrics (nDCG, recall and MRR at a cut-off), answer hits and latency percentiles.

Written here rather than called from ranx: ranx compiles numba kernels on first use, which took most of a
minute before the first number, on every fresh environment. The definitions follow ranx's defaults, which
the earlier reports were computed with: the relevance grade as gain, discounted by log2(rank + 1) (Järvelin
and Kekäläinen), against the qrels' ideal ranking; relevance below 1 counts as not relevant; every query of
the qrels counts, one the run lacks scores zero, and run queries without qrels are ignored.
"""

from __future__ import annotations

import math
import re

import numpy as np

RETRIEVAL_METRICS = ("ndcg@10", "recall@5", "recall@20", "recall@100", "mrr@10")


def ir_metrics(qrels: dict[str, dict[str, int]], run: dict[str, list[str]],
               metrics: tuple[str, ...] = RETRIEVAL_METRICS) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query metrics for a run given as ranked doc ids per query (best first)."""
    parsed = [_parse(m) for m in metrics]
    per_query: dict[str, dict[str, float]] = {m: {} for m in metrics}
    for q, judged in qrels.items():
        relevant = {d: r for d, r in judged.items() if r >= 1}
        ranked = list(dict.fromkeys(run.get(q, [])))
        for m, (name, k) in zip(metrics, parsed):
            per_query[m][q] = _score(name, k, relevant, ranked)
    means = {m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query.items()}
    return means, per_query


def _parse(metric: str) -> tuple[str, int]:
    name, _, k = metric.partition("@")
    if name not in ("ndcg", "recall", "mrr") or not k.isdigit() or int(k) < 1:
        raise ValueError(f"unknown metric {metric!r}: ndcg@K, recall@K or mrr@K")
    return name, int(k)


def _score(name: str, k: int, relevant: dict[str, int], ranked: list[str]) -> float:
    if not relevant:
        return 0.0
    top = ranked[:k]
    if name == "recall":
        return sum(d in relevant for d in top) / len(relevant)
    if name == "mrr":
        return next((1.0 / (i + 1) for i, d in enumerate(top) if d in relevant), 0.0)
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(top))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    return dcg / sum(r / math.log2(i + 2) for i, r in enumerate(ideal))


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
