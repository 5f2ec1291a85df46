"""The research loop driven by the index's trained scorer: evidence ranked by its probability, searching
stopped and the writer skipped by `research.answer_probability`, citations bounded by
`research.citation_probability`; an index without a scorer takes the cosine path unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from generate.engine import Engine
from generate.events import Event, EvidenceSelected
from generate.gatherer import Gatherer
from generate.researcher import NOT_ANSWERED, Researcher
from generate.verifier import CitationVerifier
from generate.writer import ReportWriter
from ingest.core.settings import ResearchSettings, SearchSettings, Settings
from retrieval.evidence import Evidence, EvidenceSelector
from retrieval.query_writer import QueryWriter
from retrieval.rrf_fusion import RrfFusion
from retrieval.training.pair_builder import PairBuilder, sentence_passage
from retrieval.training.scorer_trainer import ScorerTrainer
from tests.fakes import HARBOUR_DOCS as DOCS, FakeGenerator, HashingEmbedder, ListSearch, Reply, number_of
from tests.support import FAST_TRAINING, make_training_items

QUESTION = "When was the old harbour built?"


class FakeScorer:
    """Probability by the first word of `table` found in the passage (`default` otherwise); records calls."""

    name = "fake-trained"

    def __init__(self, table: dict[str, float] | None = None, default: float = 0.05,
                 answered: Callable[[float], float] | None = None) -> None:
        self.table = table or {}
        self.default = default
        self.answered_by_best = answered or (lambda best: best)
        self.calls: list[tuple[str, list[str]]] = []
        self.warmed = 0

    def warm_up(self) -> None:
        self.warmed += 1

    def probabilities(self, question: str, passages: list[str]) -> np.ndarray:
        self.calls.append((question, list(passages)))
        return np.array([next((p for w, p in self.table.items() if w in passage), self.default)
                         for passage in passages])

    def answered(self, probabilities: list[float]) -> float:
        return self.answered_by_best(max(probabilities, default=0.0))

    def sentence_ranker(self) -> None:
        return None

    def corroboration(self) -> None:
        return None

    def corpus_vectors(self) -> None:
        return None


def build(writer_replies: list[Reply], scorer: FakeScorer | None, planner_replies: list[Reply] | None = None,
          **settings: Any) -> tuple[Researcher, ListSearch, FakeGenerator, FakeGenerator | None]:
    """The real research loop over DOCS as the engine builds it, with `scorer` as the index's trained scorer."""
    search = ListSearch(DOCS)
    embedder = HashingEmbedder()
    s = ResearchSettings(**settings)
    writer = FakeGenerator(writer_replies, name="writer")
    planner_model = None if planner_replies is None else FakeGenerator(planner_replies, name="planner")
    selector = EvidenceSelector(embedder, 6, 300, scorer=scorer, scored_sentences=s.scored_sentences,
                                document_probability=s.answer_probability)
    gatherer = Gatherer(search, selector, None if planner_model is None else QueryWriter(planner_model),
                        RrfFusion(SearchSettings().rrf_k))
    verifier = CitationVerifier(search.document_text, embedder, s.support_similarity, s.relevance_floor,
                                citation_probability=s.citation_probability)
    return Researcher(gatherer, ReportWriter(writer), verifier, s), search, writer, planner_model


def citing(fragment: str, statement: str) -> Reply:
    def reply(messages: list[dict[str, str]]) -> str:
        return json.dumps({"answerable": True, "answer": statement,
                           "statements": [{"text": statement, "evidence": [number_of(messages, fragment)]}]})
    return reply


@pytest.mark.unit
def test_sentences_are_ranked_by_probability_scored_once_for_the_question_alone() -> None:
    search = ListSearch(DOCS)
    hits = search.search("harbour built storm pier", 8)
    scorer = FakeScorer({"Fishing boats": 0.9, "1910": 0.6})
    selector = EvidenceSelector(HashingEmbedder(), 6, 300, scorer=scorer)
    evidence = selector.select([QUESTION, "harbour storm pier"], hits)
    assert [ev.probability for ev in evidence[:3]] == [0.9, 0.6, 0.05]
    assert evidence[0].text.startswith("Fishing boats") and "1910" in evidence[1].text
    # one call, with the question only (not the planner's queries), in the format the scorer was trained on
    [(question, passages)] = scorer.calls
    assert question == QUESTION
    assert sentence_passage("Harbour", "Fishing boats still use the harbour every morning.") in passages
    # similarity is still the cosine to the question, reported as before
    plain = {ev.text: ev.similarity for ev in EvidenceSelector(HashingEmbedder(), 6, 300).select(
        [QUESTION, "harbour storm pier"], hits)}
    assert all(plain[ev.text] == ev.similarity for ev in evidence)


@pytest.mark.unit
def test_the_scorer_reads_only_the_best_sentences_by_similarity() -> None:
    hits = ListSearch(DOCS).search("harbour market built cheese", 8)
    scorer = FakeScorer({"1820": 0.9})
    evidence = EvidenceSelector(HashingEmbedder(), 2, 300, scorer=scorer, scored_sentences=2).select([QUESTION], hits)
    [(_, passages)] = scorer.calls
    by_cosine = EvidenceSelector(HashingEmbedder(), 2, 300).select([QUESTION], hits)
    assert len(passages) == 2 and {p.split("\n", 1)[1] for p in passages} == {ev.text for ev in by_cosine}
    assert all(ev.probability is not None for ev in evidence)


@pytest.mark.unit
def test_another_document_joins_only_with_a_probable_sentence() -> None:
    hits = ListSearch(DOCS).search("harbour market built cheese Saturdays", 8)
    unlikely = EvidenceSelector(HashingEmbedder(), 6, 300, scorer=FakeScorer({"1820": 0.9}, default=0.3),
                                document_probability=0.5, document_margin=None).select([QUESTION], hits)
    assert {ev.doc_id for ev in unlikely} == {"harbour"}
    likely = EvidenceSelector(HashingEmbedder(), 6, 300, scorer=FakeScorer({"1820": 0.9, "Saturdays": 0.7}),
                              document_probability=0.5).select([QUESTION], hits)
    assert {ev.doc_id for ev in likely} == {"harbour", "market"}


@pytest.mark.unit
def test_a_ranker_orders_the_evidence_but_leaves_joining_and_deciding_to_the_cosine() -> None:
    """use_trained_scorer = evidence: the scorer's order, no probabilities on the evidence, documents joining by
    the cosine margin (a scorer that rates every sentence 0.3 would keep the market out as a deciding scorer)."""
    hits = ListSearch(DOCS).search("harbour market built cheese Saturdays", 8)
    ranker = FakeScorer({"Fishing boats": 0.9, "1910": 0.6}, default=0.3)
    ranked = EvidenceSelector(HashingEmbedder(), 6, 300, ranker=ranker, document_margin=None).select([QUESTION], hits)
    assert ranked[0].text.startswith("Fishing boats") and "1910" in ranked[1].text
    assert all(ev.probability is None for ev in ranked) and len(ranker.calls) == 1
    assert {ev.doc_id for ev in ranked} == {"harbour", "market"}
    plain = EvidenceSelector(HashingEmbedder(), 6, 300, document_margin=None).select([QUESTION], hits)
    assert [ev.text for ev in ranked] != [ev.text for ev in plain]


@pytest.mark.unit
def test_with_a_ranker_the_cosine_floor_still_declines() -> None:
    """A ranker rating everything probable does not make the writer write what the relevance floor refuses."""
    search = ListSearch(DOCS)
    embedder = HashingEmbedder()
    s = ResearchSettings(max_rounds=1, relevance_floor=0.99)
    selector = EvidenceSelector(embedder, 6, 300, ranker=FakeScorer(default=0.95))
    writer = FakeGenerator([], name="writer")
    verifier = CitationVerifier(search.document_text, embedder, s.support_similarity, s.relevance_floor)
    report = Researcher(Gatherer(search, selector, None, RrfFusion(SearchSettings().rrf_k)), ReportWriter(writer),
                        verifier, s).run(QUESTION)
    assert writer.calls == [] and not report.answered and "relevance_floor" in report.stop_reason


@pytest.mark.unit
def test_no_sentence_reaching_answer_probability_declines_without_calling_the_writer() -> None:
    """The evidence is close in wording (the cosine floor would let the writer write), but improbable."""
    r, _, writer, _ = build([], FakeScorer(default=0.3), max_rounds=1, relevance_floor=0.0)
    report = r.run(QUESTION)
    assert report.evidence and all(ev.probability == 0.3 for ev in report.evidence)
    assert writer.calls == [] and not report.answered and report.answer == NOT_ANSWERED
    assert "research.answer_probability" in report.stop_reason and "0.5" in report.stop_reason
    assert "relevance_floor" not in report.stop_reason


@pytest.mark.unit
def test_a_probable_sentence_is_written_and_cited_whatever_the_cosine_floor() -> None:
    statement = "The old harbour was built in 1820 by the town council."
    events: list[Event] = []
    r, _, writer, _ = build([citing("1820", statement)], FakeScorer({"1820": 0.9}), max_rounds=1,
                            relevance_floor=0.99)
    report = r.run(QUESTION, on_event=events.append)
    assert len(writer.calls) == 1 and report.answered
    [st] = report.statements
    assert "1820" in st.citations[0].quote
    [select] = [t for t in report.trace if t.step == "select"]
    assert select.detail["best_probability"] == 0.9 and "best_similarity" in select.detail
    assert [e.probability for e in events if isinstance(e, EvidenceSelected)] == [0.9]
    assert report.to_dict()["evidence"][0]["probability"] == 0.9


@pytest.mark.unit
def test_a_citation_below_citation_probability_does_not_bear_on_the_question() -> None:
    statement = "Fishing boats still use the harbour every morning."
    r, _, writer, _ = build([citing("Fishing boats", statement)], FakeScorer({"1820": 0.9, "Fishing": 0.1}),
                            max_rounds=1, relevance_floor=0.0)
    report = r.run(QUESTION)
    assert writer.calls and not report.statements and not report.answered
    [problem] = report.unsupported[0].problems
    assert "does not bear on the question (probability 0.10 < 0.2" in problem
    assert "research.citation_probability" in problem


@pytest.mark.unit
def test_the_verifier_uses_the_cosine_floor_when_evidence_has_no_probability() -> None:
    v = CitationVerifier(lambda _: None, HashingEmbedder(), relevance_floor=0.35, citation_probability=0.2)
    ev = Evidence(1, 1, "d", "/d.md", "D", [], None, 0, 5, "text.", 1.0, similarity=0.3)
    assert v.irrelevant(ev) == "similarity 0.30 < 0.35"
    ev.probability = 0.25  # a probability, when present, decides instead of the cosine
    assert v.irrelevant(ev) is None


@pytest.mark.unit
def test_searching_stops_on_answer_probability_not_on_similarity() -> None:
    # enough_similarity 0 would stop the cosine loop after round one; improbable evidence searches on
    r, search, _, planner = build([], FakeScorer(default=0.2), planner_replies=[{"queries": ["harbour pier"]}],
                                  enough_similarity=0.0, max_rounds=2)
    report = r.run(QUESTION)
    assert len(search.queries) == 2 and planner is not None and len(planner.calls) == 1
    assert "round limit" in report.stop_reason and "probability 0.20 that the evidence answers" in report.stop_reason
    # a probable sentence stops the search at once, although enough_similarity is out of reach
    r, search, _, planner = build([{"answerable": False, "answer": "No.", "statements": []}],
                                  FakeScorer({"1820": 0.8}), planner_replies=[], enough_similarity=1.0, max_rounds=3)
    report = r.run(QUESTION)
    assert search.queries == [QUESTION] and planner is not None and planner.calls == []
    assert report.stop_reason.startswith("enough evidence: probability 0.80 that the evidence answers >= 0.5 "
                                         "(research.answer_probability)")


@pytest.mark.unit
def test_whether_the_documents_answer_is_the_scorers_answerability_not_one_sentences_probability() -> None:
    """A best sentence at 0.3 says little alone; the scorer's answerability (fitted on questions with and
    without their answer) decides: the writer is asked when it says 0.9, and not when it says 0.1."""
    reply = {"answerable": True, "answer": "Built in 1820.", "statements": []}
    r, _, writer, _ = build([reply], FakeScorer({"1820": 0.3}, answered=lambda best: 0.9), max_rounds=1)
    r.run(QUESTION)
    assert writer.calls
    r, _, writer, _ = build([reply], FakeScorer({"1820": 0.3}, answered=lambda best: 0.1), max_rounds=1)
    report = r.run(QUESTION)
    assert not writer.calls and not report.answered
    assert "probability 0.10 that the evidence answers; under 0.5 (research.answer_probability): the documents do " \
           "not answer it, so nothing is written" in report.stop_reason
    assert report.stop_reason.count("0.10") == 1


@pytest.mark.unit
def test_the_scorer_is_a_part_to_warm_up() -> None:
    scorer = FakeScorer()
    r, _, _, _ = build([], scorer)
    r.parts()["scorer"]()
    assert scorer.warmed == 1
    assert "scorer" not in build([], None)[0].parts()


# -- real models ----------------------------------------------------------------------------------------

def engine(index: Path, shared_models: dict[str, Any], **research: Any) -> Engine:
    """An engine over `index` whose writer is the 0.5B model, with small budgets."""
    settings = Settings()
    settings.index.path = index
    settings.models.writer = settings.models.fast
    settings.research = settings.research.model_copy(update={"plan": "never", "max_rounds": 1,
                                                             "writer_max_tokens": 96, **research})
    return Engine(settings, embedder=shared_models["embedder"], parser=shared_models["parser"])


def test_an_index_without_a_scorer_selects_the_same_evidence_whatever_the_setting(
        built_index: Path, shared_models: dict[str, Any]) -> None:
    found = []
    for setting in ("auto", "evidence", "never"):
        e = engine(built_index, shared_models, use_trained_scorer=setting)
        with e.open_index() as idx:
            r = e.researcher(idx)
            assert r.gatherer.selector.scorer is None and r.gatherer.selector.ranker is None
            assert "scorer" not in e.warm_up_parts(idx)
            gathered = r.gatherer.gather("What is the walrus operator?", r.settings, lambda _: None, 0.0)
        found.append(([ev.to_dict() for ev in gathered.evidence], gathered.stop))
    assert found[0] == found[1] == found[2] and found[0][0]
    assert all(ev["probability"] is None for ev in found[0][0]) and "similarity" in found[0][1]


def test_a_report_over_an_index_with_a_trained_scorer_carries_its_probabilities(
        built_index: Path, shared_models: dict[str, Any], tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    with engine(index, shared_models).open_index() as idx:
        pairs = PairBuilder(idx, seed=13).build(make_training_items(idx.chunks(idx.chunk_ids())))
    ScorerTrainer(index, FAST_TRAINING).run(pairs)

    e = engine(index, shared_models, use_trained_scorer="auto")
    with e.open_index() as idx:
        r = e.researcher(idx)
        assert r.gatherer.selector.scorer is e.pipeline_factory(idx).trained_scorer()  # one shared instance
        assert "scorer" in e.warm_up_parts(idx)
        report = r.run("What is the informal name of the := operator?")
    assert report.evidence and all(ev.probability is not None and 0 <= ev.probability <= 1
                                   for ev in report.evidence)
    best = max(ev.probability or 0.0 for ev in report.evidence)
    assert report.evidence[0].probability == best  # grouped by document, the best one's best sentence first
    [select] = [t for t in report.trace if t.step == "select"]
    assert select.detail["best_probability"] == round(best, 3)
    wrote = any(t.step == "write" and t.detail.get("raw") for t in report.trace)
    assert wrote == (best >= 0.5)  # the writer is asked only when a sentence is probable
    if not wrote:
        assert "research.answer_probability" in report.stop_reason and not report.answered

    # a three-step scorer is rarely sure of anything: with no bound, the 0.5B writer writes from scored evidence
    eager = engine(index, shared_models, use_trained_scorer="auto", answer_probability=0.0, citation_probability=0.0)
    with eager.open_index() as idx:
        report = eager.researcher(idx).run("What is the informal name of the := operator?")
    [write] = [t for t in report.trace if t.step == "write"]
    assert write.detail["raw"] and write.detail["model"] == Settings().models.fast
    assert "research.answer_probability" in report.stop_reason  # enough evidence, by probability
    shown = {ev.number: ev for ev in report.evidence}
    assert all(shown[c.evidence].probability is not None for st in report.statements for c in st.citations)

    default = engine(index, shared_models)  # the cosine path unless research.use_trained_scorer = "auto"
    with default.open_index() as idx:
        assert default.researcher(idx).gatherer.selector.scorer is None

    ranked = engine(index, shared_models, use_trained_scorer="evidence")  # it orders evidence, the cosine decides
    with ranked.open_index() as idx:
        r = ranked.researcher(idx)
        assert r.gatherer.selector.scorer is None
        assert r.gatherer.selector.ranker is ranked.pipeline_factory(idx).trained_scorer()
        assert "scorer" in ranked.warm_up_parts(idx)
        gathered = r.gatherer.gather("What is the informal name of the := operator?", r.settings, lambda _: None, 0.0)
    assert gathered.evidence and all(ev.probability is None for ev in gathered.evidence)
    assert "similarity" in gathered.stop


def test_an_evidence_ranking_trained_on_the_index_orders_its_evidence_when_published(
        built_index: Path, shared_models: dict[str, Any], tmp_path: Path) -> None:
    """The real path: the ranking fitted on the index's items (its searches, int8 token vectors), published with
    a scorer, read by the research loop; 'rule' leaves it unread. A handful of items cannot be held to the gate
    (too few held-out questions), so the test publishes the fit as used."""
    from retrieval.sentence_ranker import CORROBORATION_FEATURES, SentenceRanker
    from retrieval.training.training_run import TrainingRun

    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    e = engine(index, shared_models)
    with e.open_index() as idx:
        items = make_training_items(idx.chunks(idx.chunk_ids()))
        pairs = PairBuilder(idx, seed=13).build(items)
        run = TrainingRun(idx, e.pipeline_factory(idx), FAST_TRAINING, e.settings.search, research=e.settings.research)
        ranking = run.evidence_ranking(items, held_out=set())
    assert ranking["questions"] >= 3 and ranking["used"] is False and "held-out" in ranking["why"]
    assert ranking["corroboration"]["used"] is False and ranking["corroboration"]["why"]
    # A corroboration model that finds every sentence likely evidence: what the loop does with one, not its fit.
    every = SentenceRanker((0.0, 0.0, 0.0), 4.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 3, names=CORROBORATION_FEATURES)
    ScorerTrainer(index, FAST_TRAINING).run(pairs, {"evidence_ranker": {
        **ranking, "used": True, "corroboration": {**every.to_json(), "used": True}}})

    learned = engine(index, shared_models)
    with learned.open_index() as idx:
        r = learned.researcher(idx)
        ranker = r.gatherer.selector.learned() if r.gatherer.selector.learned else None
        assert isinstance(ranker, SentenceRanker) and "evidence ranking" in learned.warm_up_parts(idx)
        gathered = r.gatherer.gather("What is the informal name of the := operator?", r.settings, lambda _: None, 0.0)
        assert gathered.evidence and all(ev.probability is None for ev in gathered.evidence)
        # A cited sentence's passage is read after writing: the evidence gets the model's probabilities, and the
        # passage's sentences the budgets left out come along, unshown, for the verifier to corroborate with.
        first = gathered.evidence[0]
        evidence, mates = r.gatherer.passages(gathered, {first.number})
        assert [ev.text for ev in evidence] == [ev.text for ev in gathered.evidence]
        assert all(ev.corroboration is not None and ev.corroboration > 0.98
                   for ev in evidence if (ev.doc_id, ev.headings) == (first.doc_id, first.headings))
        shown_texts = {ev.text for ev in gathered.evidence}
        assert mates and all(not m.shown and m.number == 0 and m.text not in shown_texts
                             and m.corroboration is not None for m in mates)
        # ...from the cited sentence's passage: its chunk and those around it of the same document and headings.
        reach = learned.settings.research.corroboration_chunks
        assert all(m.doc_id == first.doc_id and m.headings == first.headings
                   and abs(m.chunk_id - first.chunk_id) <= reach for m in mates)
        assert r.gatherer.passages(gathered, set()) == (gathered.evidence, [])
        assert r.verifier.corroboration_probability == 0.5
    rule = engine(index, shared_models, evidence_ranking="rule", corroboration="never")
    with rule.open_index() as idx:
        r = rule.researcher(idx)
        assert r.gatherer.selector.learned is None and r.gatherer.selector.corroboration is None
        assert r.verifier.corroboration_probability is None
        gathered = r.gatherer.gather("What is the informal name of the := operator?", r.settings, lambda _: None, 0.0)
        assert gathered.evidence and all(ev.corroboration is None for ev in gathered.evidence)
        assert r.gatherer.passages(gathered, {ev.number for ev in gathered.evidence}) == (gathered.evidence, [])
