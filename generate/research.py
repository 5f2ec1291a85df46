"""The research loop: search, read the evidence, decide whether it is enough, search again, write, verify."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

from generate.generator import Completion, Usage
from generate.guard import addresses_the_model, says_evidence_is_silent
from generate.planner import ResearchPlanner
from generate.report import Report, Statement, TraceStep
from generate.settings import ResearchSettings
from generate.verifier import CitationVerifier
from generate.writer import ANSWER_MAX_CHARS, Draft, ReportWriter, grouped
from ingest.errors import ConfigError, InvalidRequestError
from retrieval.evidence import Evidence, EvidenceSelector
from retrieval.hybrid import SearchHit, rrf
from retrieval.pipeline import PipelineResult

#: Called with (event name, details) as the loop runs: progress lines, streamed answer text.
Events = Callable[[str, dict[str, Any]], None]

NOT_ANSWERED = "The indexed documents do not answer this question."
NOT_DECIDED = "The indexed documents do not decide this claim."
#: A claim check's answer line, from the verdict its cited statements carry.
VERDICT_ANSWERS = {"supports": "The cited evidence supports the claim.",
                   "contradicts": "The cited evidence contradicts the claim."}
MAX_QUESTION_CHARS = 2000


class PassageSearch(Protocol):
    """Hits plus the pipeline's stage trace, so a report can time reranking apart from search."""

    def explain(self, query: str, k: int) -> tuple[list[SearchHit], PipelineResult]: ...


@dataclass
class Gathered:
    """What the search rounds found, with their trace and costs, before anything is written."""

    evidence: list[Evidence] = field(default_factory=list)
    stop: str = ""
    trace: list[TraceStep] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    timings: dict[str, float] = field(
        default_factory=lambda: {"plan_s": 0.0, "search_s": 0.0, "rerank_s": 0.0, "select_s": 0.0})


class Researcher:
    """One question in, one verified report out. Holds no per-question state, so it can be shared."""

    def __init__(self, search: PassageSearch, selector: EvidenceSelector, writer: ReportWriter,
                 verifier: CitationVerifier, planner: ResearchPlanner | None, settings: ResearchSettings,
                 guard: Callable[[str], bool] | None = addresses_the_model) -> None:
        """`guard` drops evidence sentences before the writer reads them; None lets everything through, so
        tests and `eval/injection_eval.py` can show that verification alone keeps instructions uncited."""
        if settings.max_rounds < 1:  # settings built without validation (model_construct) would end in no round
            raise ConfigError(f"research.max_rounds must be at least 1, not {settings.max_rounds}")
        self.search = search
        self.selector = selector
        self.writer = writer
        self.verifier = verifier
        self.planner = planner
        self.settings = settings
        self.guard = guard

    def warm(self) -> float:
        """Load the embedder and the writer now, so a report's timings are its own. Returns seconds."""
        t0 = time.perf_counter()
        self.selector.embedder.embed(["warm up"])
        self.search.explain("warm up", 1)  # loads what the search pipeline needs (late interaction's model)
        self.writer.model.count_tokens("warm up")
        return time.perf_counter() - t0

    def run(self, question: str, events: Events | None = None, task: str = "answer") -> Report:
        """Research `question` ("answer") or a claim ("check": the report carries a verdict)."""
        question = " ".join(question.split())
        if not question:
            raise InvalidRequestError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidRequestError(f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        emit = events or (lambda name, data: None)
        s = self.settings
        started = time.perf_counter()
        found = self.gather(question, emit, started)
        evidence, trace, usage, timings, stop = found.evidence, found.trace, found.usage, found.timings, found.stop
        last_round = trace[-1].round
        # Nothing under the verifier's relevance floor can be cited, so then the writer is not asked.
        floor = self.verifier.relevance_floor
        citable = any(ev.similarity >= floor for ev in evidence)
        if evidence and not citable:
            stop += (f"; no evidence sentence is {floor:g} similar to the question "
                     "(research.relevance_floor), so nothing is written")
        trace.append(TraceStep("stop", last_round, 0.0, {"reason": stop}))

        if citable:
            emit("write", {"evidence": len(evidence), "model": self.writer.model.name})
        draft = self._write(question, evidence if citable else [], task, usage, emit)
        trace.append(TraceStep("write", last_round, round(draft.completion.total_s, 3),
                               {"model": self.writer.model.name, **draft.completion.timings(),
                                "finish_reason": draft.completion.finish_reason, "raw": draft.raw}))
        t0 = time.perf_counter()
        # Statements about the evidence's silence are no findings; an answer that says so answers nothing.
        findings = [(text, ids) for text, ids in draft.statements if not says_evidence_is_silent(text)]
        if task == "answer" and (not findings or says_evidence_is_silent(draft.answer)):
            draft.answerable = False
        checked = self.verifier.verify(findings, evidence, question) if draft.answerable else []
        cited = [st for st in checked if st.status == "cited"]
        unsupported = [st for st in checked if st.status != "cited"]
        if task == "answer":
            answer = _whole_sentences(draft.answer)
            answer_support = self.verifier.answer_support(answer, cited) if draft.answerable and cited else 0.0
            added = self.verifier.answer_adds(answer, cited, evidence, question) if cited else []
            # An answer none of its own citations supports is the model's memory, not the documents, and so
            # is one adding what none of them says: the report then says the documents do not answer;
            # verified statements stay as related findings.
            answered = draft.answerable and bool(cited) and answer_support >= s.support_similarity and not added
        else:  # a verdict is checked through its statements
            answer_support, added = 0.0, []
            answered = draft.answerable and bool(cited)
            answer = VERDICT_ANSWERS.get(draft.verdict or "", "")
        if not answered:
            answer = NOT_ANSWERED if task == "answer" else NOT_DECIDED
        verify_s = time.perf_counter() - t0
        trace.append(TraceStep("verify", last_round, round(verify_s, 3), {
            "statements": len(checked), "cited": len(cited), "unsupported": len(unsupported),
            "answer_support": round(answer_support, 3), "answer_adds": added, "draft_answer": draft.answer,
            "problems": [p for st in unsupported for p in st.problems]}))
        _emit_citations(cited, emit)
        if draft.answerable and not cited:
            unsupported = unsupported or [Statement(text=draft.answer or answer, status="unsupported",
                                                    problems=["no statement with a verified citation"])]
        total = time.perf_counter() - started
        llm = usage.prefill_s + usage.decode_s
        timings.update({"prefill_s": usage.prefill_s, "decode_s": usage.decode_s, "verify_s": verify_s,
                        "llm_s": llm, "other_s": max(0.0, total - llm), "total_s": total})
        return Report(
            question=question, answered=answered, answer=answer,
            verdict=(draft.verdict if answered else "not enough evidence") if task == "check" else None,
            statements=cited, unsupported=unsupported,
            evidence=evidence, trace=trace, stop_reason=stop, timings={k: round(v, 3) for k, v in timings.items()},
            tokens={"prompt": usage.prompt_tokens, "completion": usage.completion_tokens,
                    "cached": usage.cached_tokens, "calls": usage.calls},
            models={"writer": self.writer.model.name,
                    **({"planner": self.planner.model.name} if self.planner else {})},
        )

    def gather(self, question: str, emit: Events, started: float) -> Gathered:
        """Search, select evidence, and search again with planned queries until it is enough or a limit stops it."""
        s = self.settings
        found = Gathered()
        trace, usage, timings = found.trace, found.usage, found.timings
        queries: list[str] = [question]
        pending: list[str] = [question]
        rankings: dict[str, list[tuple[int, float]]] = {}
        hits_by_id: dict[int, SearchHit] = {}
        found_by: dict[int, list[str]] = {}
        evidence: list[Evidence] = []
        stop = ""
        if s.plan == "always" and self.planner:
            pending += self._plan(question, queries, [], 1, trace, usage, timings, emit)
            queries = list(pending)
        for round_no in range(1, s.max_rounds + 1):
            for q in pending:
                t0 = time.perf_counter()
                hits, result = self.search.explain(q, s.chunks_per_query)
                took = time.perf_counter() - t0
                rerank_s = min(took, result.seconds_in("rerank"))
                timings["search_s"] += took - rerank_s  # search_s leaves reranking out; the trace step has both
                timings["rerank_s"] += rerank_s
                rankings[q] = [(h.chunk.id, h.score) for h in hits]
                for h in hits:
                    hits_by_id.setdefault(h.chunk.id, h)
                    found_by.setdefault(h.chunk.id, []).append(q)
                trace.append(TraceStep("search", round_no, round(took, 3), {
                    "query": q, "rerank_s": round(rerank_s, 3),
                    "found": [{"chunk_id": h.chunk.id, "title": h.chunk.title,
                               "section": h.chunk.headings, "score": round(h.score, 4)} for h in hits]}))
                emit("search", {"round": round_no, "query": q, "hits": len(hits)})
            pooled = [hits_by_id[cid] for cid, _ in rrf(rankings, 60)[: s.pool_chunks]]
            t0 = time.perf_counter()
            evidence = self.selector.select(queries, pooled, found_by)
            kept = [ev for ev in evidence if not (self.guard and self.guard(ev.text))]
            dropped = [ev.text for ev in evidence if ev not in kept]
            evidence = grouped(kept)
            took = time.perf_counter() - t0
            timings["select_s"] += took
            best = max((ev.similarity for ev in evidence), default=0.0)
            trace.append(TraceStep("select", round_no, round(took, 3), {
                "chunks": len(pooled), "sentences": len(evidence), "best_similarity": round(best, 3),
                "dropped_as_instructions": dropped}))
            emit("evidence", {"round": round_no, "sentences": len(evidence), "best": best})
            elapsed = time.perf_counter() - started
            if best >= s.enough_similarity:
                stop = f"enough evidence: best sentence similarity {best:.2f} >= {s.enough_similarity}"
            elif round_no == s.max_rounds:
                stop = f"round limit ({s.max_rounds}) reached; best sentence similarity {best:.2f}"
            elif elapsed > s.time_budget_s:
                stop = f"time budget of {s.time_budget_s:.0f} s used"
            elif self.planner is None or s.plan == "never":
                stop = f"planning is off; best sentence similarity {best:.2f}"
            if stop:
                break
            pending = self._plan(question, queries, evidence, round_no + 1, trace, usage, timings, emit)
            if not pending:
                stop = f"the planner found no new queries; best sentence similarity {best:.2f}"
                break
            queries += pending
        found.evidence, found.stop = evidence, stop
        return found

    def _write(self, question: str, evidence: list[Evidence], task: str, usage: Usage, emit: Events) -> Draft:
        """The writer's draft; with no evidence there is nothing to cite and no model call can change that."""
        if not evidence:
            return Draft(answerable=False, answer=NOT_ANSWERED, statements=[], completion=Completion(text=""), raw="")
        draft = self.writer.write(question, evidence, on_text=lambda t: emit("token", {"text": t}), task=task)
        usage.add(draft.completion, self.writer.model.name)
        return draft

    def _plan(self, question: str, queries: list[str], evidence: list[Evidence], round_no: int,
              trace: list[TraceStep], usage: Usage, timings: dict[str, float], emit: Events) -> list[str]:
        assert self.planner is not None
        emit("plan", {"round": round_no})
        t0 = time.perf_counter()
        fresh, completion = self.planner.plan(question, queries, evidence)
        took = time.perf_counter() - t0
        timings["plan_s"] += took
        if completion is not None:
            usage.add(completion, self.planner.model.name)
        trace.append(TraceStep("plan", round_no, round(took, 3), {
            "queries": fresh, "cached": completion is None, **(completion.timings() if completion else {})}))
        return fresh[: self.settings.max_queries]


def _emit_citations(cited: list[Statement], emit: Events) -> None:
    """One event per verified citation, numbered as the report's sources list numbers them."""
    numbers: dict[tuple[str, int, int], int] = {}
    for i, st in enumerate(cited):
        for c in st.citations:
            n = numbers.setdefault((c.doc_id, c.start, c.end), len(numbers) + 1)
            emit("citation", {"number": n, "statement": i, "statement_text": st.text, **asdict(c)})


def _whole_sentences(text: str, limit: int = ANSWER_MAX_CHARS) -> str:
    """Drop a trailing fragment the length limit cut off, when at least one whole sentence remains."""
    text = text.strip()
    if len(text) < limit - 10 or text[-1] in ".!?\"')":
        return text
    end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
    return text[: end + 1] if end > 0 else text + "…"

