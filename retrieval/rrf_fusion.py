"""Reciprocal rank fusion, optionally weighted per source and for generated queries."""

from __future__ import annotations

from retrieval.stages import Ranked, Ranking


class RrfFusion:
    """Sum of weight / (k + rank): robust to incomparable scores, blind to how far apart they are."""

    name = "rrf"

    def __init__(self, k: int = 60, weights: dict[str, float] | None = None, generated_weight: float = 1.0) -> None:
        self.k = k
        self.weights = weights or {}
        self.generated_weight = generated_weight

    def fuse(self, rankings: list[Ranking]) -> Ranked:
        fused: dict[int, float] = {}
        for r in rankings:
            w = self.weights.get(r.source, 1.0) * (1.0 if r.query_index == 0 else self.generated_weight)
            for rank, (cid, _) in enumerate(r.items, start=1):
                fused[cid] = fused.get(cid, 0.0) + w / (self.k + rank)
        return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
