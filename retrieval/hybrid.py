"""The search entry point used by the CLI and the writer: a pipeline run turned into hits with sources."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.embedder import Embedder
from ingest.store.docstore import ChunkRow
from ingest.store.local_index import LocalIndex
from retrieval.dense_source import DenseSource
from retrieval.bm25_source import Bm25Source
from retrieval.pipeline import PipelineResult, RetrievalPipeline
from retrieval.rrf_fusion import RrfFusion
from retrieval.stages import Ranking


@dataclass
class SearchHit:
    """One retrieved chunk with the score it ranked by and each stage's view of it."""

    chunk: ChunkRow
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


def rrf(rankings: dict[str, list[tuple[int, float]]], k: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of 1/(k + rank) over the rankings a chunk appears in."""
    return RrfFusion(k).fuse([Ranking(name, 0, items) for name, items in rankings.items()])


class HybridSearcher:
    """Searches one index; `mode` "hybrid" runs the configured pipeline, "dense"/"bm25" one retriever."""

    def __init__(self, index: LocalIndex, embedder: Embedder, candidates: int = 100, rrf_k: int = 60,
                 pipeline: RetrievalPipeline | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.pipeline = pipeline or RetrievalPipeline(
            [DenseSource(index, embedder), Bm25Source(index)], RrfFusion(rrf_k), lambda ids: {}, candidates)

    def _pipeline_for(self, mode: str) -> RetrievalPipeline:
        if mode == "hybrid":
            return self.pipeline
        if mode not in ("dense", "bm25"):
            from ingest.errors import InvalidRequestError

            raise InvalidRequestError(f"search mode must be hybrid, dense or bm25, not {mode!r}")
        source = DenseSource(self.index, self.embedder) if mode == "dense" else Bm25Source(self.index)
        return RetrievalPipeline([source], RrfFusion(self.rrf_k), lambda ids: {}, self.candidates)

    def search(self, query: str, k: int, mode: str = "hybrid") -> list[SearchHit]:
        return self.explain(query, k, mode)[0]

    def explain(self, query: str, k: int, mode: str = "hybrid") -> tuple[list[SearchHit], PipelineResult]:
        """Hits plus the pipeline's per-stage trace (what `citewise search --explain` prints)."""
        result = self._pipeline_for(mode).run(query, k)
        top = result.ranked[:k]
        rows = self.index.chunks([cid for cid, _ in top])
        per_source = {r.source: {cid: (rank, s) for rank, (cid, s) in enumerate(r.items, start=1)}
                      for r in result.rankings if r.query_index == 0}
        hits = []
        for cid, score in top:
            if cid not in rows:
                continue
            ranks = {n: v[cid][0] for n, v in per_source.items() if cid in v}
            scores = {n: v[cid][1] for n, v in per_source.items() if cid in v}
            hits.append(SearchHit(rows[cid], score, ranks, scores))
        return hits, result
