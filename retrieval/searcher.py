"""The search entry point of the CLI, the HTTP API and the research loop: a pipeline run turned into hits."""

from __future__ import annotations

from ingest.core.embedder import Embedder
from ingest.core.errors import InvalidRequestError
from ingest.core.index import Index
from retrieval.pipeline import PipelineResult, RetrievalPipeline
from retrieval.stages import SearchHit

MODES = ("hybrid", "dense", "bm25")


class Searcher:
    """Searches one index. Built once with a pipeline per mode ("hybrid" is the configured pipeline,
    "dense" and "bm25" one retriever each) and shared by every request, so stage caches live on."""

    def __init__(self, index: Index, embedder: Embedder, pipelines: dict[str, RetrievalPipeline]) -> None:
        missing = [m for m in MODES if m not in pipelines]
        if missing:
            raise ValueError(f"a searcher needs a pipeline for every mode; missing {missing}")
        self.index = index
        self.embedder = embedder
        self.pipelines = pipelines

    @property
    def pipeline(self) -> RetrievalPipeline:
        """The configured pipeline (mode "hybrid")."""
        return self.pipelines["hybrid"]

    def warm_up(self) -> None:
        """Load the embedder and every reranker's model now, so the first search is as fast as the rest."""
        self.embedder.warm_up()
        for pipeline in self.pipelines.values():
            pipeline.warm_up()

    def search(self, query: str, k: int, mode: str = "hybrid") -> list[SearchHit]:
        return self.explain(query, k, mode)[0]

    def explain(self, query: str, k: int, mode: str = "hybrid") -> tuple[list[SearchHit], PipelineResult]:
        """Hits plus the pipeline's per-stage trace (what `citewise search --explain` prints)."""
        if mode not in self.pipelines:
            raise InvalidRequestError(f"search mode must be one of {', '.join(MODES)}, not {mode!r}")
        result = self.pipelines[mode].run(query, k)
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
