"""The gather stage of a report: search, select evidence sentences, and search again with planned queries
until the evidence is close enough to the question (probable enough to answer it, with the index's trained
scorer) or a limit stops it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

from generate.events import EvidenceSelected, OnEvent, Planning, Searched
from generate.report import TraceStep
from generate.writer import grouped
from ingest.core.generator import Usage
from ingest.core.settings import ResearchSettings
from ingest.core.text import normalize_ws
from ingest.core.types import ChunkRow
from retrieval.evidence import Evidence, EvidenceSelector
from retrieval.pipeline import PipelineResult
from retrieval.query_writer import QueryWriter
from retrieval.stages import Fusion, Ranking, SearchHit


class PassageSearch(Protocol):
    """Hits plus the pipeline's stage trace, so a report can time reranking apart from search."""

    def explain(self, query: str, k: int) -> tuple[list[SearchHit], PipelineResult]: ...


@dataclass
class Gathered:
    """What the search rounds found, with their trace and costs, before anything is written."""

    evidence: list[Evidence] = field(default_factory=list)
    #: The queries searched and the evidence's chunks: what reading a cited passage needs after writing.
    queries: list[str] = field(default_factory=list)
    chunks: dict[int, ChunkRow] = field(default_factory=dict)
    stop: str = ""
    trace: list[TraceStep] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    timings: dict[str, float] = field(
        default_factory=lambda: {"plan_s": 0.0, "search_s": 0.0, "rerank_s": 0.0, "select_s": 0.0})


class Gatherer:
    """Holds no per-question state, so one instance serves every request.

    `pool` merges the rankings of every query searched so far (reciprocal rank fusion with the
    configured constant); `guard` drops evidence that reads as an instruction to the model before the
    writer sees it (None lets everything through: verification alone must keep instructions uncited).
    """

    def __init__(self, search: PassageSearch, selector: EvidenceSelector, planner: QueryWriter | None,
                 pool: Fusion, guard: Callable[[str], bool] | None = None) -> None:
        self.search = search
        self.selector = selector
        self.planner = planner
        self.pool = pool
        self.guard = guard

    def gather(self, question: str, s: ResearchSettings, on_event: OnEvent, started: float) -> Gathered:
        found = Gathered()
        queries: list[str] = [question]
        pending: list[str] = [question]
        rankings: dict[str, list[tuple[int, float]]] = {}
        hits_by_id: dict[int, SearchHit] = {}
        found_by: dict[int, list[str]] = {}
        evidence: list[Evidence] = []
        planner = self.planner if s.plan != "never" else None
        stop = ""
        if s.plan == "always" and planner:
            pending += self._plan(question, queries, [], 1, s, found, on_event)
            queries = list(pending)
        for round_no in range(1, s.max_rounds + 1):
            for q in pending:
                hits = self._search(q, round_no, s, found, on_event)
                rankings[q] = [(h.chunk.id, h.score) for h in hits]
                for h in hits:
                    hits_by_id.setdefault(h.chunk.id, h)
                    found_by.setdefault(h.chunk.id, []).append(q)
            pooled_ids = self.pool.fuse([Ranking(q, 0, items) for q, items in rankings.items()])
            pooled = [hits_by_id[cid] for cid, _ in pooled_ids[: s.pool_chunks]]
            evidence = self._select(queries, pooled, found_by, round_no, found, on_event)
            enough, best = self._enough(evidence, s)
            if enough:
                stop = f"enough evidence: {best}"
            elif round_no == s.max_rounds:
                stop = f"round limit ({s.max_rounds}) reached; {best}"
            elif time.perf_counter() - started > s.time_budget_s:
                stop = f"time budget of {s.time_budget_s:.0f} s used; {best}"
            elif planner is None:
                stop = f"planning is off; {best}"
            if stop:
                break
            pending = self._plan(question, queries, evidence, round_no + 1, s, found, on_event)
            if not pending:
                stop = f"the planner found no new queries; {best}"
                break
            queries += pending
        found.evidence, found.stop, found.queries = evidence, stop, queries
        found.chunks = {ev.chunk_id: hits_by_id[ev.chunk_id].chunk for ev in evidence}
        return found

    def passages(self, found: Gathered, cited: set[int]) -> tuple[list[Evidence], list[Evidence]]:
        """The evidence with the corroboration model's probabilities on the sentences of the passages `cited`
        (evidence numbers) belong to, and those passages' sentences the writer was not shown ("mates", which the
        guard's test must pass too); the evidence unchanged and no mates without a model. Read after writing,
        so a passage nobody cites costs nothing."""
        chunks = [found.chunks[ev.chunk_id] for ev in found.evidence if ev.number in cited]
        sentences = self.selector.passage_sentences(found.queries, list({c.id: c for c in chunks}.values()))
        if not sentences:
            return found.evidence, []
        likely = {(m.doc_id, m.start, m.end): m.corroboration for m in sentences}
        evidence = [replace(ev, corroboration=likely.get((ev.doc_id, ev.start, ev.end))) for ev in found.evidence]
        seen = {normalize_ws(ev.text).lower() for ev in evidence}
        mates = []
        for m in sentences:
            key = normalize_ws(m.text).lower()
            if key not in seen and not (self.guard and self.guard(m.text)):
                seen.add(key)
                mates.append(m)
        return evidence, mates

    def _enough(self, evidence: list[Evidence], s: ResearchSettings) -> tuple[bool, str]:
        """Whether the evidence is good enough to stop searching, and the best sentence's figure as the stop
        reason words it: the trained scorer's probability that the evidence answers the question when the index
        has one, else the best sentence's cosine."""
        if self.selector.scorer is not None:
            p = self.selector.scorer.answered([ev.probability or 0.0 for ev in evidence])
            enough = p >= s.answer_probability
            return enough, (f"probability {p:.2f} that the evidence answers"
                            + (f" >= {s.answer_probability:g} (research.answer_probability)" if enough else ""))
        best = max((ev.similarity for ev in evidence), default=0.0)
        enough = best >= s.enough_similarity
        return enough, f"best sentence similarity {best:.2f}" + (f" >= {s.enough_similarity}" if enough else "")

    def _search(self, q: str, round_no: int, s: ResearchSettings, found: Gathered,
                on_event: OnEvent) -> list[SearchHit]:
        t0 = time.perf_counter()
        hits, result = self.search.explain(q, s.chunks_per_query)
        took = time.perf_counter() - t0
        rerank_s = min(took, result.seconds_in("rerank"))
        found.timings["search_s"] += took - rerank_s  # search_s leaves reranking out; the trace step has both
        found.timings["rerank_s"] += rerank_s
        found.trace.append(TraceStep("search", round_no, round(took, 3), {
            "query": q, "rerank_s": round(rerank_s, 3),
            "found": [{"chunk_id": h.chunk.id, "title": h.chunk.title,
                       "section": h.chunk.headings, "score": round(h.score, 4)} for h in hits]}))
        on_event(Searched(round=round_no, query=q, hits=len(hits)))
        return hits

    def _select(self, queries: list[str], pooled: list[SearchHit], found_by: dict[int, list[str]], round_no: int,
                found: Gathered, on_event: OnEvent) -> list[Evidence]:
        t0 = time.perf_counter()
        evidence = self.selector.select(queries, pooled, found_by)
        kept = [ev for ev in evidence if not (self.guard and self.guard(ev.text))]
        dropped = [ev.text for ev in evidence if ev not in kept]
        evidence = grouped(kept)
        took = time.perf_counter() - t0
        found.timings["select_s"] += took
        best = max((ev.similarity for ev in evidence), default=0.0)
        detail: dict[str, object] = {"chunks": len(pooled), "sentences": len(evidence),
                                     "best_similarity": round(best, 3)}
        probability = None
        if self.selector.scorer is not None:
            probabilities = [ev.probability or 0.0 for ev in evidence]
            probability = max(probabilities, default=0.0)
            detail["best_probability"] = round(probability, 3)
            detail["answered_probability"] = round(self.selector.scorer.answered(probabilities), 3)
        found.trace.append(TraceStep("select", round_no, round(took, 3),
                                     {**detail, "dropped_as_instructions": dropped}))
        on_event(EvidenceSelected(round=round_no, sentences=len(evidence), best=best, probability=probability))
        return evidence

    def _plan(self, question: str, queries: list[str], evidence: list[Evidence], round_no: int,
              s: ResearchSettings, found: Gathered, on_event: OnEvent) -> list[str]:
        assert self.planner is not None
        on_event(Planning(round=round_no))
        t0 = time.perf_counter()
        fresh, completion = self.planner.follow_up(question, queries, [ev.text for ev in evidence], s.max_queries)
        took = time.perf_counter() - t0
        found.timings["plan_s"] += took
        if completion is not None:
            found.usage.add(completion)
        found.trace.append(TraceStep("plan", round_no, round(took, 3), {
            "queries": fresh, "cached": completion is None, **(completion.timings() if completion else {})}))
        return fresh[: s.max_queries]
