"""The research loop in three stages: gather evidence, write a draft that cites it, verify every citation."""

from __future__ import annotations

import time
from typing import Callable

from generate.events import CitationVerified, OnEvent, TokenWritten, Writing, ignore
from generate.gatherer import Gatherer
from generate.report import Report, TraceStep
from generate.task import Task
from generate.verifier import NOT_ANSWERED, CitationVerifier
from generate.writer import Draft, ReportWriter
from ingest.core.errors import ConfigError, InvalidRequestError
from ingest.core.generator import Completion
from ingest.core.settings import MAX_QUESTION_CHARS, ResearchOptions, ResearchSettings
from ingest.core.text import normalize_ws
from retrieval.evidence import Evidence


class Researcher:
    """One question in, one verified report out. Built once and shared: it holds no per-question state,
    and a request changes only what `ResearchOptions` allows (already validated against the settings)."""

    def __init__(self, gatherer: Gatherer, writer: ReportWriter, verifier: CitationVerifier,
                 settings: ResearchSettings) -> None:
        if settings.max_rounds < 1:  # settings built without validation (model_construct) would end in no round
            raise ConfigError(f"research.max_rounds must be at least 1, not {settings.max_rounds}")
        self.gatherer = gatherer
        self.writer = writer
        self.verifier = verifier
        self.settings = settings

    def parts(self) -> dict[str, Callable[[], None]]:
        """Each model a report needs, by role, with what loads it: the server reports them in /readyz."""
        search = self.gatherer.search
        parts: dict[str, Callable[[], None]] = {"embedder": self.verifier.embedder.warm_up,
                                                "writer": self.writer.model.warm_up}
        if getattr(search, "warm_up", None) is not None:
            parts["search"] = search.warm_up  # type: ignore[attr-defined]
        scorer = self.gatherer.selector.scorer or self.gatherer.selector.ranker
        if scorer is not None:
            parts["scorer"] = scorer.warm_up
        learned = self.gatherer.selector.learned or self.gatherer.selector.corroboration
        if learned is not None:  # reading it loads the scorer generation it was published with

            def load_ranking() -> None:
                learned()

            parts["evidence ranking"] = load_ranking
        if self.gatherer.planner is not None and self.settings.plan != "never":
            parts["planner"] = self.gatherer.planner.warm_up
        return parts

    def warm_up(self) -> None:
        """Load every model a report uses now, so a report's timings are its own."""
        for load in self.parts().values():
            load()

    def run(self, question: str, task: Task = Task.ANSWER, options: ResearchOptions | None = None,
            on_event: OnEvent = ignore) -> Report:
        """Research `question` (Task.ANSWER) or a claim (Task.CHECK: the report carries a verdict)."""
        question = normalize_ws(question)
        if not question:
            raise InvalidRequestError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidRequestError(f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        s = options.apply(self.settings) if options is not None else self.settings
        started = time.perf_counter()
        found = self.gatherer.gather(question, s, on_event, started)
        evidence, trace, usage, timings, stop = found.evidence, found.trace, found.usage, found.timings, found.stop
        last_round = trace[-1].round
        citable, why_not = self.answerable(evidence, s)
        if evidence and not citable:
            stop += f"; {why_not}, so nothing is written"
        trace.append(TraceStep("stop", last_round, 0.0, {"reason": stop}))

        draft = self._write(question, evidence if citable else [], task, s, on_event)
        if citable:
            usage.add(draft.completion)
        trace.append(TraceStep("write", last_round, round(draft.completion.total_s, 3),
                               {"model": self.writer.model.name, **draft.completion.timings(),
                                "finish_reason": draft.completion.finish_reason, "raw": draft.raw}))
        t0 = time.perf_counter()
        mates: list[Evidence] = []
        if citable and self.verifier.corroboration_probability is not None:
            evidence, mates = self.gatherer.passages(found, {n for _, ids in draft.statements for n in ids})
        verified = self.verifier.verify_draft(draft, evidence, question, task, mates)
        verify_s = time.perf_counter() - t0
        trace.append(TraceStep("verify", last_round, round(verify_s, 3), {
            "statements": verified.checked, "cited": len(verified.cited), "unsupported": len(verified.unsupported),
            "answer_support": round(verified.answer_support, 3), "answer_adds": verified.answer_adds,
            "draft_answer": draft.answer, "problems": [p for st in verified.unsupported for p in st.problems]}))
        report = Report(
            question=question, answered=verified.answered, answer=verified.answer,
            verdict=(draft.verdict if verified.answered else "not enough evidence") if task == Task.CHECK else None,
            statements=verified.cited, unsupported=verified.unsupported, evidence=evidence + verified.added,
            trace=trace,
            stop_reason=stop, timings={}, tokens={"prompt": usage.prompt_tokens, "completion": usage.completion_tokens,
                                                  "cached": usage.cached_tokens, "calls": usage.calls},
            models={"writer": self.writer.model.name,
                    **({"planner": self.gatherer.planner.model.name}
                       if self.gatherer.planner is not None and s.plan != "never" else {})},
        )
        report.number_citations()
        for i, st in enumerate(report.statements):
            for c in st.citations:
                on_event(CitationVerified(statement=i, statement_text=st.text, citation=c))
        total = time.perf_counter() - started
        llm = usage.prefill_s + usage.decode_s
        timings.update({"prefill_s": usage.prefill_s, "decode_s": usage.decode_s, "verify_s": verify_s,
                        "llm_s": llm, "other_s": max(0.0, total - llm), "total_s": total})
        report.timings = {k: round(v, 3) for k, v in timings.items()}
        return report

    def answerable(self, evidence: list[Evidence], s: ResearchSettings) -> tuple[bool, str]:
        """Whether the writer should be asked, and if not why. With the index's trained scorer: only when the
        evidence more probably than not answers the question (the scorer's answerability, calibrated on
        held-out questions with and without their answer); without one, only when a sentence reaches the
        verifier's relevance floor, as nothing under it can be cited."""
        figure = self.decision_figure(evidence)
        if self.gatherer.selector.scorer is not None:
            # The gather stage's stop reason already gives this probability; the reason adds the cut-off only.
            return (figure >= s.answer_probability,
                    f"under {s.answer_probability:g} (research.answer_probability): the documents do not answer it")
        floor = self.verifier.relevance_floor
        return (bool(evidence) and figure >= floor,
                f"no evidence sentence is {floor:g} similar to the question (research.relevance_floor)")

    def decision_figure(self, evidence: list[Evidence]) -> float:
        """What decides whether the writer is asked: the trained scorer's answerability of the evidence, or
        without a scorer the best sentence's cosine to the question."""
        scorer = self.gatherer.selector.scorer
        if scorer is not None:
            return scorer.answered([ev.probability or 0.0 for ev in evidence]) if evidence else 0.0
        return max((ev.similarity for ev in evidence), default=0.0)

    def _write(self, question: str, evidence: list[Evidence], task: Task, s: ResearchSettings, on_event: OnEvent) -> Draft:
        """The writer's draft; with no evidence there is nothing to cite and no model call can change that."""
        if not evidence:
            return Draft(answerable=False, answer=NOT_ANSWERED, statements=[], completion=Completion(text=""), raw="")
        on_event(Writing(evidence=len(evidence), model=self.writer.model.name))
        return self.writer.write(question, evidence, task, max_tokens=s.writer_max_tokens,
                                 max_statements=s.max_statements, on_text=lambda t: on_event(TokenWritten(text=t)))
