"""Reordering the head of a ranking by a reranker's scores, blended with the first-stage score."""

from __future__ import annotations

from retrieval.score_fusion import normalize
from retrieval.stages import Ranked


def blend_head(ranked: Ranked, scores: dict[int, float], weight: float) -> Ranked:
    """The scored candidates (a prefix of `ranked`) reordered by weight x reranker + (1 - weight) x first
    stage, both min-max normalized over that prefix (the head's scores become the blend, in [0, 1]);
    unscored candidates keep their place and first-stage score after them.

    Blending keeps the first stage's evidence: a small model's judgement alone is noisy.
    """
    head = [(cid, s) for cid, s in ranked if cid in scores]
    tail = [(cid, s) for cid, s in ranked if cid not in scores]
    if not head:
        return list(ranked)
    first = normalize(head, "minmax")
    second = normalize([(cid, scores[cid]) for cid, _ in head], "minmax")
    mixed = {cid: weight * second[cid] + (1.0 - weight) * first[cid] for cid, _ in head}
    position = {cid: i for i, (cid, _) in enumerate(head)}
    order = sorted(mixed, key=lambda cid: (-mixed[cid], position[cid]))
    return [(cid, mixed[cid]) for cid in order] + tail
