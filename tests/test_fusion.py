"""Reciprocal rank fusion against a hand-computed case."""

from retrieval.hybrid import rrf


def test_rrf_matches_hand_computation() -> None:
    fused = dict(rrf({"dense": [(1, 0.9), (2, 0.8)], "bm25": [(2, 7.0), (3, 5.0)]}, k=60))
    assert fused[2] == 1 / 62 + 1 / 61
    assert fused[1] == 1 / 61
    assert fused[3] == 1 / 62
    assert [cid for cid, _ in rrf({"a": [(1, 1.0), (2, 1.0)], "b": [(2, 1.0), (3, 1.0)]}, 60)] == [2, 1, 3]
