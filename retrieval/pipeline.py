"""The retrieval pipeline: query analysis -> candidates -> fusion -> rerankers.

Every stage is optional or replaceable (see `PipelineFactory` for how settings choose them) and
records a `StageTrace`, which `citewise search --explain` prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from retrieval.stages import (CandidateSource, Fusion, QueryAnalysis, QueryAnalyzer, Ranked, Ranking, Reranker,
                              StageTrace)

TRACE_ITEMS = 10  # candidates kept per stage in the trace


@dataclass
class PipelineResult:
    """The final ranking (chunk ids, best first), each stage's trace, and the query analysis if any."""

    ranked: Ranked
    trace: list[StageTrace] = field(default_factory=list)
    analysis: QueryAnalysis | None = None
    rankings: list[Ranking] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.trace)

    def seconds_in(self, kind: str) -> float:
        """Seconds spent in one kind of stage ("rerank", ...), so a report can time its stages apart."""
        return sum(t.seconds for t in self.trace if t.kind == kind)


class RetrievalPipeline:
    """Runs the configured stages for one question; holds no per-query state, so it can be shared."""

    def __init__(self, sources: list[CandidateSource], fusion: Fusion,
                 fetch_texts: Callable[[list[int]], dict[int, str]], candidates: int = 100, analyzer: QueryAnalyzer | None = None,
                 rerankers: list[Reranker] | None = None) -> None:
        if not sources:
            raise ValueError("a retrieval pipeline needs at least one candidate source")
        self.sources = sources
        self.fusion = fusion
        self.fetch_texts = fetch_texts
        self.candidates = candidates
        self.analyzer = analyzer
        self.rerankers = rerankers or []

    def warm_up(self) -> None:
        """Load every source's and reranker's model now; the embedder and the query writer are warmed by their
        owner."""
        for source in self.sources:
            source.warm_up()
        for reranker in self.rerankers:
            reranker.warm_up()

    def describe(self) -> str:
        parts = []
        if self.analyzer is not None:
            parts.append("analysis")
        parts.append("+".join(s.name for s in self.sources))
        if len(self.sources) > 1 or self.analyzer is not None:
            parts.append(f"fusion:{self.fusion.name}")
        parts += [r.name for r in self.rerankers]
        return " -> ".join(parts)

    def run(self, question: str, k: int) -> PipelineResult:
        """Rank chunks for `question`; the list holds at least the fused candidates, head first reranked."""
        trace: list[StageTrace] = []
        analysis = None
        queries = [question]
        if self.analyzer is not None:
            t0 = time.perf_counter()
            analysis = self.analyzer.analyze(question)
            queries = analysis.search_queries()
            detail = f"{len(queries) - 1} generated queries" + (" (cached)" if analysis.cached else "")
            trace.append(StageTrace("analysis", detail + (f"; {analysis.error}" if analysis.error else ""),
                                    time.perf_counter() - t0, extra={"queries": queries}, kind="analysis"))
        rankings: list[Ranking] = []
        for source in self.sources:
            t0 = time.perf_counter()
            for i, items in enumerate(source.search(queries, self.candidates)):
                rankings.append(Ranking(source.name, i, items))
            mine = [r for r in rankings if r.source == source.name]
            searched = source.describe()
            detail = f"{len(mine)} queries x {self.candidates} candidates" + (f"; {searched}" if searched else "")
            trace.append(StageTrace(source.name, detail, time.perf_counter() - t0,
                                    mine[0].items[:TRACE_ITEMS] if mine else [], kind="source"))
        t0 = time.perf_counter()
        if len(rankings) == 1:
            ranked = list(rankings[0].items)
        else:
            ranked = self.fusion.fuse(rankings)
            trace.append(StageTrace(f"fusion:{self.fusion.name}", f"{len(rankings)} rankings -> {len(ranked)}",
                                    time.perf_counter() - t0, ranked[:TRACE_ITEMS], kind="fusion"))
        for reranker in self.rerankers:
            t0 = time.perf_counter()
            texts = self.fetch_texts([cid for cid, _ in ranked[: reranker.top_n]])
            ranked, info = reranker.rerank(question, ranked, texts)
            trace.append(StageTrace(reranker.name, f"top {reranker.top_n}: {info.get('scored', 0)} scored",
                                    time.perf_counter() - t0, ranked[:TRACE_ITEMS], info, kind="rerank"))
        return PipelineResult(ranked, trace, analysis, rankings)
