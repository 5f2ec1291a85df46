"""Hybrid first stage: dense (FAISS) and BM25 candidates fused with reciprocal rank fusion."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.embedder import Embedder
from ingest.store.docstore import ChunkRow
from ingest.store.local_index import LocalIndex


@dataclass
class SearchHit:
    """One retrieved chunk with the score it ranked by and each retriever's view of it."""

    chunk: ChunkRow
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


def rrf(rankings: dict[str, list[tuple[int, float]]], k: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of 1/(k + rank) over the rankings a chunk appears in."""
    fused: dict[int, float] = {}
    for ranking in rankings.values():
        for rank, (cid, _) in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


class HybridSearcher:
    """Searches one index with one embedder; `mode` picks dense, bm25 or both fused."""

    def __init__(self, index: LocalIndex, embedder: Embedder, candidates: int = 100, rrf_k: int = 60) -> None:
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k

    def rankings(self, query: str, modes: tuple[str, ...] = ("dense", "bm25")) -> dict[str, list[tuple[int, float]]]:
        out: dict[str, list[tuple[int, float]]] = {}
        if "dense" in modes:
            out["dense"] = self.index.search_dense(self.embedder.embed([query]), self.candidates)[0]
        if "bm25" in modes:
            out["bm25"] = self.index.search_bm25(query, self.candidates)
        return out

    def search(self, query: str, k: int, mode: str = "hybrid") -> list[SearchHit]:
        modes = ("dense", "bm25") if mode == "hybrid" else (mode,)
        rankings = self.rankings(query, modes)
        ranked = rrf(rankings, self.rrf_k) if mode == "hybrid" else rankings[mode]
        top = ranked[:k]
        rows = self.index.chunks([cid for cid, _ in top])
        per_ranker = {name: {cid: (r, s) for r, (cid, s) in enumerate(lst, start=1)} for name, lst in rankings.items()}
        hits = []
        for cid, score in top:
            if cid not in rows:
                continue
            ranks = {n: v[cid][0] for n, v in per_ranker.items() if cid in v}
            scores = {n: v[cid][1] for n, v in per_ranker.items() if cid in v}
            hits.append(SearchHit(rows[cid], score, ranks, scores))
        return hits
