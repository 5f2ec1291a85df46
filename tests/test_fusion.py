"""Fusion and blending math against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from retrieval.blend import blend_head
from retrieval.rrf_fusion import RrfFusion
from retrieval.score_fusion import ScoreFusion, normalize
from retrieval.stages import Ranked, Ranking

pytestmark = pytest.mark.unit


def rrf(rankings: dict[str, Ranked], k: int) -> Ranked:
    """Plain reciprocal rank fusion of rankings for one query (what the research loop pools with)."""
    return RrfFusion(k).fuse([Ranking(name, 0, items) for name, items in rankings.items()])


def test_rrf_matches_hand_computation() -> None:
    fused = dict(rrf({"dense": [(1, 0.9), (2, 0.8)], "bm25": [(2, 7.0), (3, 5.0)]}, k=60))
    assert fused[2] == 1 / 62 + 1 / 61
    assert fused[1] == 1 / 61
    assert fused[3] == 1 / 62
    assert [cid for cid, _ in rrf({"a": [(1, 1.0), (2, 1.0)], "b": [(2, 1.0), (3, 1.0)]}, 60)] == [2, 1, 3]


def test_weighted_rrf_weights_sources_and_generated_queries() -> None:
    fusion = RrfFusion(k=10, weights={"dense": 2.0}, generated_weight=0.5)
    fused = dict(fusion.fuse([Ranking("dense", 0, [(1, 0.0)]), Ranking("bm25", 0, [(2, 0.0)]),
                              Ranking("bm25", 1, [(1, 0.0)])]))
    assert math.isclose(fused[1], 2 / 11 + 0.5 / 11)
    assert math.isclose(fused[2], 1 / 11)


def test_normalize_z_and_minmax() -> None:
    z = normalize([(1, 3.0), (2, 1.0)], "z")
    assert z == {1: 1.0, 2: -1.0}
    assert normalize([(1, 5.0), (2, 3.0), (3, 1.0)], "minmax") == {1: 1.0, 2: 0.5, 3: 0.0}
    assert normalize([(1, 2.0), (2, 2.0)], "z") == {1: 0.0, 2: 0.0}


def test_score_fusion_uses_score_gaps_and_floors_missing_candidates() -> None:
    # BM25 is sure about 10 (far ahead); dense barely prefers 20. Rank fusion calls it a tie.
    dense = Ranking("dense", 0, [(20, 0.61), (10, 0.60), (30, 0.10)])
    bm25 = Ranking("bm25", 0, [(10, 30.0), (20, 5.0), (40, 4.0)])
    fused = ScoreFusion(normalization="minmax").fuse([dense, bm25])
    scores = dict(fused)
    assert fused[0][0] == 10
    # minmax: dense {20: 1, 10: 0.98, 30: 0}, bm25 {10: 1, 20: 0.0385, 40: 0}; missing -> floor 0
    assert math.isclose(scores[10], (0.5 / 0.51 + 1.0) / 2)
    assert math.isclose(scores[30], 0.0) and math.isclose(scores[40], 0.0)
    rrf_order = [cid for cid, _ in RrfFusion(60).fuse([dense, bm25])]
    assert rrf_order[:2] == [10, 20] or rrf_order[:2] == [20, 10]


def test_score_fusion_depth_and_zero_weight() -> None:
    only_bm25 = ScoreFusion(weights={"dense": 0.0}).fuse([Ranking("dense", 0, [(1, 1.0), (2, 0.0)]),
                                                           Ranking("bm25", 0, [(2, 9.0), (1, 1.0)])])
    assert [cid for cid, _ in only_bm25] == [2, 1]
    shallow = ScoreFusion(depth=1).fuse([Ranking("bm25", 0, [(1, 9.0), (2, 8.0)])])
    assert [cid for cid, _ in shallow] == [1]


def test_blend_head_reorders_only_scored_prefix() -> None:
    ranked = [(1, 1.0), (2, 0.9), (3, 0.1), (4, 0.05)]
    out = blend_head(ranked, {1: 0.0, 2: 1.0, 3: 0.5}, weight=1.0)
    assert [cid for cid, _ in out] == [2, 3, 1, 4]
    assert out[-1] == (4, 0.05)
    kept = blend_head(ranked, {1: 0.0, 2: 1.0}, weight=0.0)
    assert [cid for cid, _ in kept] == [1, 2, 3, 4]
    half = dict(blend_head(ranked, {1: 0.0, 2: 1.0, 3: 0.5}, weight=0.5))
    # first stage minmax over the head: {1: 1, 2: 0.889, 3: 0}; reranker: {1: 0, 2: 1, 3: 0.5}
    assert math.isclose(half[2], 0.5 * 1.0 + 0.5 * (0.8 / 0.9))
    assert blend_head(ranked, {}, 0.5) == ranked
