"""Late interaction (ColBERT-style MaxSim) over the embedder's own token vectors: no extra model."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from retrieval.blend import blend_head
from retrieval.stages import Ranked


class TokenEncoder(Protocol):
    """Unit-length contextual token vectors per text (one row per word piece)."""

    def token_vectors(self, texts: list[str]) -> list[np.ndarray]: ...


class LateInteractionReranker:
    """Score = mean over query tokens of the best cosine with any passage token.

    A pooled vector averages a passage into one point; MaxSim lets each query term find its own
    match, which helps when a relevant passage is mostly about something else.
    """

    name = "late"

    def __init__(self, encoder: TokenEncoder, top_n: int = 20, blend: float = 0.5) -> None:
        self.encoder = encoder
        self.top_n = top_n
        self.blend = blend

    def warm_up(self) -> None:
        self.encoder.token_vectors(["warm up"])

    def rerank(self, query: str, ranked: Ranked, texts: dict[int, str]) -> tuple[Ranked, dict[str, Any]]:
        head = [cid for cid, _ in ranked[: self.top_n] if cid in texts]
        if not head:
            return list(ranked), {"scored": 0}
        vectors = self.encoder.token_vectors([query, *[texts[cid] for cid in head]])
        q = vectors[0]
        scores = {cid: float((q @ d.T).max(axis=1).mean()) for cid, d in zip(head, vectors[1:])}
        return blend_head(ranked, scores, self.blend), {"scored": len(scores), "maxsim": scores}
