"""Fits the index's evidence ranking (`SentenceRanker`) on its training questions, and beside it the
corroboration model: which other sentences of a passage are evidence too.

Each answerable question is searched as the research loop searches it, its candidate sentences are weighed
by the same `EvidenceSelector` the loop uses (so the features are the ones the ranking will see), and each
candidate is labelled by whether it holds the item's answer or is its evidence sentence. The fit is checked
on the held-out questions against the hand-set rule it would replace, and kept only where it is not worse.

The corroboration model reads only the sentences of the passage around the question's source chunk (what a
report citing it would read, `EvidenceSelector.passages`): there every sentence the labels do not name is a
negative, since what it learns is which sentences of a passage the labels call evidence. It helps where a
report cites a sentence of the right passage that is not the evidence (one sharing the question's words) or
only one of several (SciFact names two or three per claim); whether what it would add is evidence is checked,
on passages it was not fitted on, before it is used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ingest.core.progress import NullProgress, Progress
from ingest.core.text import normalize_ws
from ingest.core.types import ChunkRow
from retrieval.evidence import EvidenceSelector
from retrieval.pipeline import PipelineResult
from retrieval.sentence_ranker import CORROBORATION_FEATURES, FEATURES, SentenceRanker
from retrieval.stages import SearchHit
from retrieval.training.items import TrainingItem

#: Fewer held-out questions than this cannot say whether the learned ranking is better.
MIN_HELD_OUT = 5
#: The corroboration model's check also reads the training questions' passages, each part added to by a model
#: fitted on the others.
CROSS_FITS = 5
#: A corroborating citation is added when the model finds it at least this likely to be evidence too; its check
#: asks that what it would add on passages it was not fitted on be evidence at least this often.
CORROBORATION_CUT = 0.5


class Search(Protocol):
    def explain(self, query: str, k: int) -> tuple[list[SearchHit], PipelineResult]: ...


@dataclass
class Examples:
    """Candidate features and labels of one set of questions, with the hand-set rule's score beside them."""

    x: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    rule: list[np.ndarray] = field(default_factory=list)
    passage_x: list[np.ndarray] = field(default_factory=list)  # the source passage's sentences (corroboration)
    passage_labels: list[np.ndarray] = field(default_factory=list)

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.x), np.concatenate(self.labels)


def _key(text: str) -> str:
    return normalize_ws(text).lower()


def ranking_quality(scores: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
    """Share of questions whose best-scored candidate answers (what the writer reads first), and the mean
    reciprocal rank of the first that does."""
    first = [float(y[int(np.argmax(s))] > 0.5) for s, y in zip(scores, labels)]
    rr = [1.0 / (1 + int(np.argmax(y[np.argsort(-s, kind="stable")] > 0.5))) for s, y in zip(scores, labels)]
    return {"first_answers": float(np.mean(first)) if first else 0.0, "mrr": float(np.mean(rr)) if rr else 0.0}


class SentenceRankerTrainer:
    """`fit(items, held_out)`: the learned ranking and what the held-out questions measured of it."""

    def __init__(self, search: Search, selector: EvidenceSelector, chunks_per_query: int, pool_chunks: int,
                 progress: Progress | None = None) -> None:
        if selector.tokens is None:
            raise ValueError("the evidence ranking's features need the selector's token encoder")
        self.search = search
        self.selector = selector
        self.chunks_per_query = chunks_per_query
        self.pool_chunks = pool_chunks
        self.progress = progress or NullProgress()

    def fit(self, items: list[TrainingItem], held_out: set[str]) -> tuple[SentenceRanker | None, dict[str, Any]]:
        started = time.perf_counter()
        by_question: dict[str, list[TrainingItem]] = {}
        for it in items:
            if it.answerable:
                by_question.setdefault(it.question, []).append(it)
        train, test = Examples(), Examples()
        skipped = 0
        self.progress.stage("evidence ranking", len(by_question))
        for question, its in by_question.items():
            found = self._examples(question, its)
            into = test if question in held_out else train
            if found is None:
                skipped += 1
            else:
                into.x.append(found[0])
                into.labels.append(found[1])
                into.rule.append(found[2])
                if found[3] is not None:
                    into.passage_x.append(found[3][0])
                    into.passage_labels.append(found[3][1])
            self.progress.advance("evidence ranking")
        report: dict[str, Any] = {"questions": len(train.x), "held_out_questions": len(test.x),
                                  "no_answer_among_candidates": skipped,
                                  "corroboration": self._corroboration(train, test)}
        if not train.x or not any(y.any() for y in train.labels):
            return None, {**report, "used": False, "why": "no training question has its answer among the candidates"}
        x, y = train.stacked()
        ranker = SentenceRanker.fit(x, y, questions=len(train.x))
        if len(test.x) >= MIN_HELD_OUT:
            learned = ranking_quality([ranker.logits(x) for x in test.x], test.labels)
            rule = ranking_quality(test.rule, test.labels)
            used = learned["first_answers"] >= rule["first_answers"]
            report.update({"held_out": {"learned": learned, "rule": rule}, "used": used,
                           "why": "ranked the held-out questions' answers first at least as often as the rule"
                           if used else "ranked the held-out questions' answers first less often than the rule"})
        else:
            report.update({"used": False, "why": f"fewer than {MIN_HELD_OUT} held-out questions to check it on"})
        report["seconds"] = round(time.perf_counter() - started, 1)
        return ranker, report

    @staticmethod
    def _corroboration(train: Examples, test: Examples) -> dict[str, Any]:
        """The corroboration model (weights, and what it would add on passages it was not fitted on): used when
        what it adds there is evidence at least CORROBORATION_CUT of the time, so that a corroborating citation
        is more likely rationale than not. In each such passage the report is taken to cite the sentence closest
        to the question (the writer mostly cites the first evidence sentence it reads, and within one passage
        the loop's order is that cosine), and the model adds the others it finds likely evidence.

        The passages checked are the held-out questions' and, cross-fitted CROSS_FITS ways, the training
        questions' own (each part added to by a model fitted on the other parts): a tenth of the questions gives
        a handful of additions, on which the decision would flip with one sentence."""
        if not train.passage_x or not any(y.any() for y in train.passage_labels):
            return {"used": False, "why": "no training question's passage holds its evidence"}
        x, y = np.concatenate(train.passage_x), np.concatenate(train.passage_labels)
        model = SentenceRanker.fit(x, y, questions=len(train.passage_x), names=CORROBORATION_FEATURES)
        out: dict[str, Any] = {**model.to_json(), "cut": CORROBORATION_CUT}
        held = _additions(model, test.passage_x, test.passage_labels)
        n = len(train.passage_x)
        crossed = [0, 0]
        if n >= CROSS_FITS:
            for k in range(CROSS_FITS):
                fit = [i for i in range(n) if i % CROSS_FITS != k]
                if not any(train.passage_labels[i].any() for i in fit):
                    continue
                part = SentenceRanker.fit(np.concatenate([train.passage_x[i] for i in fit]),
                                          np.concatenate([train.passage_labels[i] for i in fit]),
                                          questions=len(fit), names=CORROBORATION_FEATURES)
                rest = [i for i in range(n) if i % CROSS_FITS == k]
                a, e = _additions(part, [train.passage_x[i] for i in rest], [train.passage_labels[i] for i in rest])
                crossed = [crossed[0] + a, crossed[1] + e]
        checked = len(test.passage_x) + (n if n >= CROSS_FITS else 0)
        out["held_out"] = {"questions": len(test.passage_x), "would_add": held[0], "evidence": held[1]}
        out["cross_fitted"] = {"questions": n if n >= CROSS_FITS else 0, "parts": CROSS_FITS,
                               "would_add": crossed[0], "evidence": crossed[1]}
        if checked < MIN_HELD_OUT:
            return {**out, "used": False, "why": f"fewer than {MIN_HELD_OUT} passages it was not fitted on to check it on"}
        added, evidence = held[0] + crossed[0], held[1] + crossed[1]
        used = added > 0 and evidence >= CORROBORATION_CUT * added
        why = (f"on {checked} passages it was not fitted on it added no sentence" if not added else
               f"on {checked} passages it was not fitted on (held-out and cross-fitted training questions' "
               f"passages) {evidence} of the {added} sentences it would add are evidence")
        return {**out, "used": used, "why": why}

    def _examples(self, question: str, items: list[TrainingItem]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None] | None:
        """Features, labels and rule scores of the question's distinct candidate sentences; None when none holds
        its answer (nothing to rank). Every evidence sentence the labels name is a positive; a labelled item's
        other sentences of its gold document are left out, as labels may miss some evidence (no negatives).
        Last, the features and labels of the source passage's sentences alone (all labelled), when its chunk is
        among the candidates with at least two sentences and one of them evidence."""
        hits, _ = self.search.explain(question, self.chunks_per_query)
        hits = hits[: self.pool_chunks]
        cands, seen = [], set()
        for c in self.selector.candidates(hits):
            _, hit, s, e = c
            key = _key(hit.chunk.text[s - hit.chunk.start:e - hit.chunk.start])
            if key not in seen:
                seen.add(key)
                cands.append(c)
        if not cands:
            return None
        texts, _, rule, x = self.selector.weigh([question], cands, len(hits), with_features=True)
        assert x is not None
        answers = [_key(it.answer) for it in items if it.answer]
        sentences = [_key(t) for it in items for t in (it.sentence, *it.more_evidence) if t]
        partial_docs = {it.doc_id for it in items if it.origin == "qrels"}
        sources = {it.chunk_id for it in items}
        every, keep = [], []
        for (_, hit, _, _), text in zip(cands, texts):
            positive = _holds(text, answers, sentences)
            every.append(1.0 if positive else 0.0)
            keep.append(positive or hit.chunk.doc_id not in partial_docs)
        mask, labelled = np.array(keep), np.array(every)
        y = labelled[mask]
        if not y.any():
            return None
        return x[mask], y, rule[mask], self._passage(question, [hit.chunk for _, hit, _, _ in cands
                                                               if hit.chunk.id in sources], answers, sentences)

    def _passage(self, question: str, chunks: list[ChunkRow], answers: list[str], sentences: list[str]
                 ) -> tuple[np.ndarray, np.ndarray] | None:
        """Features and labels of every sentence of the source chunks' passages (as the research loop reads a
        cited sentence's passage), when there are at least two and one of them is evidence."""
        if not chunks:
            return None
        passages = self.selector.passages(list({c.id: c for c in chunks}.values()))
        _, texts, _, _, x = self.selector.passage_features([question], passages)
        y = np.array([1.0 if _holds(t, answers, sentences) else 0.0 for t in texts])
        return (x, y) if len(y) >= 2 and y.any() else None


def _holds(text: str, answers: list[str], sentences: list[str]) -> bool:
    """Whether a candidate holds one of the item's answers or is one of its evidence sentences (keys, `_key`)."""
    t = _key(text)
    return any(a and a in t for a in answers) or any(s and (s in t or t in s) for s in sentences)


def _additions(model: SentenceRanker, xs: list[np.ndarray], ys: list[np.ndarray]) -> tuple[int, int]:
    """(sentences the model would add beside the one closest to the question, how many of them are evidence)."""
    added = evidence = 0
    for px, py in zip(xs, ys):
        p = model.probabilities(px)
        cited = int(np.argmax(px[:, FEATURES.index("cosine")]))
        extra = [i for i in range(len(p)) if i != cited and p[i] >= CORROBORATION_CUT]
        added += len(extra)
        evidence += int(sum(py[i] > 0.5 for i in extra))
    return added, evidence
