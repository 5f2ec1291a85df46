"""Reranking with the scorer `citewise train` made for this index (`trained` stage)."""

from __future__ import annotations

from typing import Any

from ingest.core.scorer import Scorer
from retrieval.blend import blend_head
from retrieval.stages import Ranked


class TrainedReranker:
    """Scores the head's chunks with the index's own scorer, trained on its corpus.

    Its scores are calibrated probabilities, but blending still min-max normalizes them over the head
    like every other stage, so the blend weight means the same for each.
    """

    name = "trained"

    def __init__(self, scorer: Scorer, top_n: int = 30, blend: float = 0.5) -> None:
        self.scorer = scorer
        self.top_n = top_n
        self.blend = blend

    def warm_up(self) -> None:
        self.scorer.warm_up()

    def rerank(self, query: str, ranked: Ranked, texts: dict[int, str]) -> tuple[Ranked, dict[str, Any]]:
        head = [cid for cid, _ in ranked[: self.top_n] if cid in texts]
        if not head:
            return list(ranked), {"scored": 0}
        probabilities = self.scorer.probabilities(query, [texts[cid] for cid in head])
        scores = {cid: float(p) for cid, p in zip(head, probabilities)}
        return blend_head(ranked, scores, self.blend), {"scored": len(scores), "scores": scores}
