"""Weighted fusion of normalized scores: keeps how far ahead a candidate is, which rank fusion drops.

The defaults (z-scores over each source's top candidates, equal weights) were chosen by a small grid
on the SciFact train split only; docs/retrieval.md says how, and with what it was compared.
"""

from __future__ import annotations

import math

from retrieval.stages import Ranked, Ranking


def normalize(items: Ranked, how: str) -> dict[int, float]:
    """Scores mapped onto a common scale: z-scores, or min-max onto [0, 1]."""
    if not items:
        return {}
    scores = [s for _, s in items]
    if how == "minmax":
        lo, hi = min(scores), max(scores)
        span = hi - lo
        return {cid: (s - lo) / span if span > 0 else 1.0 for cid, s in items}
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return {cid: (s - mean) / std if std > 0 else 0.0 for cid, s in items}


class ScoreFusion:
    """Sum over rankings of weight x normalized score; a candidate missing from a ranking gets that
    ranking's lowest normalized score (it scored below everything the source returned)."""

    name = "score"

    def __init__(self, weights: dict[str, float] | None = None, normalization: str = "z", depth: int = 300,
                 generated_weight: float = 0.5) -> None:
        self.weights = weights or {}
        self.normalization = normalization
        self.depth = depth
        self.generated_weight = generated_weight

    def fuse(self, rankings: list[Ranking]) -> Ranked:
        parts: list[tuple[float, dict[int, float]]] = []
        for r in rankings:
            w = self.weights.get(r.source, 1.0) * (1.0 if r.query_index == 0 else self.generated_weight)
            norm = normalize(r.items[: self.depth], self.normalization)
            if norm and w > 0:
                parts.append((w, norm))
        total = sum(w for w, _ in parts) or 1.0
        floors = [min(norm.values()) for _, norm in parts]
        every = set().union(*(norm.keys() for _, norm in parts)) if parts else set()
        fused = {cid: sum(w * norm.get(cid, floor) for (w, norm), floor in zip(parts, floors)) / total
                 for cid in every}
        return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
