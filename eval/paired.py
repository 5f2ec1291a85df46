"""How far apart two systems really are on the same items: a paired bootstrap of each metric's difference.

Systems in one run answer the same items, so their difference is read item by item: resampling items (the
same draw for both systems) and recomputing each metric gives an interval for the difference that knows
most items come out the same either way. A difference of one or two items in sixty then shows as what it
is, an interval around zero, instead of a third decimal to choose a default by.
"""

from __future__ import annotations

import random
from typing import Any, Callable

Rows = list[dict[str, Any]]
Aggregate = Callable[[Rows], dict[str, Any]]

#: Resamples per interval: enough for a stable 2.5th/97.5th percentile of a difference.
RESAMPLES = 2000


def paired_intervals(rows: Rows, baseline: str, others: list[str], aggregate: Aggregate, metrics: list[str],
                     resamples: int = RESAMPLES, seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """For each system in `others`: each metric's difference from `baseline` (other minus baseline) on the
    items both answered, with a 95% bootstrap interval. `aggregate` turns rows into metrics, as the
    evaluation's own table does; a metric it leaves out (or gives as None) is missing from that draw, and a
    metric missing from the observed difference is not reported."""
    by_item: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_item.setdefault(r["query_id"], {})[r["system"]] = r
    rng = random.Random(seed)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for other in others:
        items = sorted(q for q, systems in by_item.items() if baseline in systems and other in systems)
        if not items:
            continue
        pairs = [(by_item[q][baseline], by_item[q][other]) for q in items]
        observed = _differences(pairs, aggregate, metrics)
        draws: dict[str, list[float]] = {m: [] for m in observed}
        for _ in range(resamples):
            sample = [pairs[rng.randrange(len(pairs))] for _ in pairs]
            for m, d in _differences(sample, aggregate, list(observed)).items():
                draws[m].append(d)
        out[other] = {m: {"difference": observed[m], "low": _quantile(draws[m], 0.025),
                          "high": _quantile(draws[m], 0.975), "items": float(len(items))}
                      for m in observed if draws[m]}
    return out


def paired_lines(intervals: dict[str, dict[str, dict[str, float]]], baseline: str) -> list[str]:
    """The intervals as a Markdown table, one row per system and metric. "items paired" counts every item
    both systems answered; a metric over a subset (answerable questions only) resamples the same items."""
    if not intervals:
        return []
    lines = [f"Paired against {baseline} (the same items; difference = system − {baseline}, 95% bootstrap "
             f"interval over items, {RESAMPLES} resamples; an interval holding 0 is no measured difference):", "",
             "| system | metric | items paired | difference | 95% interval |", "|---|---|---|---|---|"]
    for system, metrics in intervals.items():
        for metric, v in metrics.items():
            lines.append(f"| {system} | {metric} | {int(v['items'])} | {v['difference']:+.3f} | "
                         f"{v['low']:+.3f} to {v['high']:+.3f} |")
    return [*lines, ""]


def _differences(pairs: list[tuple[dict[str, Any], dict[str, Any]]], aggregate: Aggregate,
                 metrics: list[str]) -> dict[str, float]:
    a = aggregate([p[0] for p in pairs])
    b = aggregate([p[1] for p in pairs])
    # None: undefined on this draw (an AUC over a resample holding one class only)
    return {m: float(b[m]) - float(a[m]) for m in metrics if a.get(m) is not None and b.get(m) is not None}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
