"""The evidence ranking `citewise train` learns per index: a logistic model over a candidate sentence's cosine,
token-level match, chunk rank and place in its chunk, fitted on the index's training questions, checked on held-out ones against
the hand-set rule, and used by the research loop only when it was not worse."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.evidence import EvidenceSelector
from retrieval.sentence_ranker import CORROBORATION_FEATURES, FEATURES, SentenceRanker, features, maxsim
from retrieval.training.items import TrainingItem
from retrieval.training.ranker_trainer import MIN_HELD_OUT, Examples, SentenceRankerTrainer, ranking_quality
from tests.fakes import HARBOUR_DOCS as DOCS, HashingEmbedder, HashingTokenEncoder, ListSearch

QUESTION = "When was the old harbour built?"


def separable(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Candidates whose answer has the best token match while its cosine says little (as on squad-wiki)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(float)
    x = np.stack([rng.normal(0.5, 0.1, n), rng.normal(0.4, 0.05, n) + 0.2 * y, rng.random(n), rng.random(n)],
                 axis=1)
    return x, y


@pytest.mark.unit
def test_the_fit_learns_which_feature_finds_the_answer_and_round_trips() -> None:
    x, y = separable(400)
    ranker = SentenceRanker.fit(x, y, questions=40)
    assert ranker.weights[FEATURES.index("maxsim")] > 2 * abs(ranker.weights[FEATURES.index("cosine")])
    test_x, test_y = separable(200, seed=1)
    p = ranker.probabilities(test_x)
    assert p[test_y > 0].mean() > 0.5 > p[test_y == 0].mean()
    again = SentenceRanker.from_json(ranker.to_json())
    assert np.allclose(again.logits(test_x), ranker.logits(test_x)) and again.questions == 40


@pytest.mark.unit
def test_a_ranker_fitted_on_other_features_is_refused() -> None:
    row = SentenceRanker.fit(*separable(50)).to_json()
    with pytest.raises(ValueError, match="features"):
        SentenceRanker.from_json({**row, "features": ["cosine", "bm25", "chunk_prior"]})
    with pytest.raises(ValueError, match="do not match"):
        SentenceRanker.from_json({**row, "weights": [1.0]})


@pytest.mark.unit
def test_maxsim_is_the_share_of_question_words_a_sentence_matches_with_one_hot_tokens() -> None:
    q, a, b = HashingTokenEncoder().token_vectors(["old harbour built", "the harbour was built", "cheese"])
    assert np.allclose(maxsim(q, [a, b]), [2 / 3, 0.0])
    assert features(*(np.array([v]) for v in (0.1, 0.2, 0.3, 0.4))).shape == (1, len(FEATURES))


@pytest.mark.unit
def test_a_ranking_fitted_before_a_feature_existed_reads_only_its_own_columns() -> None:
    """An index trained by an older version keeps its ranking: the stored row names its three features."""
    x, y = separable(400)
    old = SentenceRanker.fit(x, y, questions=40, names=("cosine", "maxsim", "chunk_prior"))
    row = old.to_json()
    assert row["features"] == ["cosine", "maxsim", "chunk_prior"] and len(row["weights"]) == 3
    again = SentenceRanker.from_json(row)
    assert again.names == old.names and np.allclose(again.logits(x), old.logits(x))
    shuffled = x.copy()
    shuffled[:, FEATURES.index("position")] = np.random.default_rng(3).random(len(x))
    assert np.allclose(again.logits(shuffled), old.logits(x))


@pytest.mark.unit
def test_the_fit_learns_where_in_its_chunk_the_answer_stands() -> None:
    """A corpus whose passages state their findings last (abstracts): the place in the chunk is what separates."""
    rng = np.random.default_rng(5)
    n = 600
    y = (rng.random(n) < 0.15).astype(float)
    place = np.where(y > 0, rng.uniform(0.6, 1.0, n), rng.uniform(0.0, 0.9, n))
    x = np.stack([rng.normal(0.5, 0.1, n), rng.normal(0.4, 0.05, n), rng.random(n), place], axis=1)
    ranker = SentenceRanker.fit(x, y, questions=60)
    w = dict(zip(ranker.names, ranker.weights))
    assert w["position"] > 0 and w["position"] > 3 * max(abs(w["cosine"]), abs(w["maxsim"]), abs(w["chunk_prior"]))


@pytest.mark.unit
def test_ranking_quality_reads_the_first_answer_in_each_questions_order() -> None:
    q = ranking_quality([np.array([0.9, 0.1]), np.array([0.2, 0.8, 0.5])], [np.array([1.0, 0.0]), np.array([0, 0, 1.0])])
    assert q == {"first_answers": 0.5, "mrr": 0.75}


class Preferring:
    """A learned ranking (the EvidenceRanking interface) that weighs one feature only."""

    def __init__(self, feature: str, sign: float = 1.0) -> None:
        self.column, self.sign = FEATURES.index(feature), sign
        self.rows: list[np.ndarray] = []

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        self.rows.append(x)
        return 1 / (1 + np.exp(-self.sign * x[:, self.column]))


@pytest.mark.unit
def test_a_learned_ranking_orders_the_evidence_and_without_one_the_rule_applies() -> None:
    hits = ListSearch(DOCS).search("harbour market built cheese Saturdays", 8)
    last_chunk_first = Preferring("chunk_prior", sign=-1.0)
    selector = EvidenceSelector(HashingEmbedder(), 6, 300, tokens=HashingTokenEncoder(), document_margin=None,
                                learned=lambda: last_chunk_first)
    ranked = selector.select([QUESTION], hits)
    lowest = max(selector.candidates(hits), key=lambda c: c[0])[1].chunk.id  # the worst-ranked chunk with sentences
    assert ranked[0].chunk_id == lowest != hits[0].chunk.id and len(last_chunk_first.rows) == 1
    plain = EvidenceSelector(HashingEmbedder(), 6, 300, document_margin=None).select([QUESTION], hits)
    unpublished = EvidenceSelector(HashingEmbedder(), 6, 300, tokens=HashingTokenEncoder(), document_margin=None,
                                   learned=lambda: None).select([QUESTION], hits)
    assert [ev.text for ev in unpublished] == [ev.text for ev in plain] != [ev.text for ev in ranked]


@pytest.mark.unit
def test_the_place_of_a_sentence_in_its_chunk_reaches_the_ranking() -> None:
    """A ranking that prefers the last sentence of a chunk puts each chunk's closing sentence before its opening."""
    hits = [h for h in ListSearch(DOCS).search("harbour built 1820", 8) if "1820" in h.chunk.text][:1]
    selector = EvidenceSelector(HashingEmbedder(), 6, 300, tokens=HashingTokenEncoder(), document_margin=None,
                                learned=lambda: Preferring("position", sign=5.0))
    ranked = selector.select([QUESTION], hits)
    starts = [c[2] for c in selector.candidates(hits)]
    assert len(starts) >= 2 and [ev.start for ev in ranked] == sorted(starts, reverse=True)
    column = Preferring("position").column
    x = selector.weigh([QUESTION], selector.candidates(hits), 1, with_features=True)[3]
    assert x is not None and x[0, column] == 0.0 < x[-1, column] < 1.0


def items() -> list[TrainingItem]:
    asked = [("When was the old harbour built?", "1820"), ("When was the harbour rebuilt?", "1910"),
             ("What destroyed the pier?", "a storm"), ("Who built the old harbour?", "the town council"),
             ("Who uses the harbour every morning?", "Fishing boats"), ("When does the market open?", "on Saturdays"),
             ("Where does the weekly market open?", "in the square"), ("What do farmers sell?", "cheese, bread"),
             ("What sells at the market on Saturdays?", "apples"), ("What opens in the square?", "weekly market"),
             ("What did the storm destroy?", "the pier")]
    return [TrainingItem(q, 0, "harbour", True, "synthetic", answer=a) for q, a in asked] + [
        TrainingItem("When was the harbour painted?", 0, "harbour", False, "synthetic")]


@pytest.mark.unit
def test_the_trainer_labels_candidates_by_the_answer_and_checks_the_fit_on_held_out_questions() -> None:
    selector = EvidenceSelector(HashingEmbedder(), tokens=HashingTokenEncoder())
    trainer = SentenceRankerTrainer(ListSearch(DOCS), selector, chunks_per_query=8, pool_chunks=12)
    every = items()
    held = {it.question for it in every[:MIN_HELD_OUT]}
    ranker, report = trainer.fit(every, held)
    assert ranker is not None and report["held_out_questions"] == MIN_HELD_OUT
    assert report["questions"] == len(every) - 1 - MIN_HELD_OUT  # the near miss has no answer to rank
    assert set(report["held_out"]) == {"learned", "rule"} and isinstance(report["used"], bool) and report["why"]
    assert isinstance(report["corroboration"]["used"], bool) and report["corroboration"]["why"]
    _, few = trainer.fit(every, set())
    assert few["used"] is False and "held-out" in few["why"]


@pytest.mark.unit
def test_every_evidence_sentence_the_labels_name_is_a_positive() -> None:
    selector = EvidenceSelector(HashingEmbedder(), tokens=HashingTokenEncoder())
    trainer = SentenceRankerTrainer(ListSearch(DOCS), selector, chunks_per_query=8, pool_chunks=12)
    question = "What happened to the old harbour?"
    built, rebuilt = "The old harbour was built in 1820 by the town council.", \
        "It was rebuilt in 1910 after a storm destroyed the pier."
    one = TrainingItem(question, 1, "harbour", True, "qrels", sentence=built)
    found = trainer._examples(question, [one])
    assert found is not None and found[1].sum() == 1  # the other sentence of the gold document is left out...
    both = trainer._examples(question, [TrainingItem(question, 1, "harbour", True, "qrels", sentence=built,
                                                     more_evidence=(rebuilt,))])
    assert both is not None and both[1].sum() == 2  # ...unless the labels name it too
    assert len(both[1]) == len(found[1]) + 1
    # The source passage's own sentences are all labelled, for the corroboration model: there the unnamed
    # sibling is a negative, as what it learns is which of a passage's sentences the labels call evidence.
    assert found[3] is not None and list(found[3][1]) == [1.0, 0.0] and found[3][0].shape == (2, len(FEATURES))
    assert both[3] is not None and list(both[3][1]) == [1.0, 1.0]


def passages(n: int, seed: int, evidence_last: bool) -> Examples:
    """Passages of six sentences; with `evidence_last` the last two are evidence (abstracts' findings), else
    only one sentence, anywhere, is (one answer per question), and it is the one closest to the question."""
    rng = np.random.default_rng(seed)
    out = Examples()
    for _ in range(n):
        place = np.linspace(0, 0.9, 6)
        y = np.zeros(6)
        if evidence_last:
            y[-2:] = 1.0
        else:
            y[rng.integers(6)] = 1.0
        cosine = rng.normal(0.5, 0.1, 6) + (0.0 if evidence_last else 0.5 * y)
        x = np.stack([cosine, rng.normal(0.4, 0.05, 6) + 0.05 * y, rng.random(6), place], axis=1)
        out.passage_x.append(x)
        out.passage_labels.append(y)
    return out


@pytest.mark.unit
def test_the_corroboration_model_is_used_only_when_what_it_adds_on_passages_it_was_not_fitted_on_is_evidence() -> None:
    findings_last = SentenceRankerTrainer._corroboration(passages(60, 0, True), passages(20, 1, True))
    assert findings_last["used"] is True and findings_last["features"] == list(CORROBORATION_FEATURES)
    held = findings_last["held_out"]
    assert held["questions"] == 20 and held["would_add"] >= 10 and held["evidence"] >= 0.5 * held["would_add"]
    model = SentenceRanker.from_json(findings_last)
    assert model.probabilities(passages(1, 2, True).passage_x[0])[-1] > 0.5
    one_answer = SentenceRankerTrainer._corroboration(passages(60, 0, False), passages(20, 1, False))
    assert one_answer["used"] is False and one_answer["why"]
    nothing = SentenceRankerTrainer._corroboration(Examples(), Examples())
    assert nothing["used"] is False and "passage" in nothing["why"]
    # The check reads the training passages too, cross-fitted: a small held-out part alone does not decide.
    crossed = findings_last["cross_fitted"]
    assert crossed["questions"] == 60 and crossed["would_add"] >= 30 and crossed["evidence"] >= 0.5 * crossed["would_add"]
    small = SentenceRankerTrainer._corroboration(passages(60, 0, True), passages(2, 1, True))
    assert small["used"] is True and small["held_out"]["questions"] == 2 and "62 passages" in small["why"]
    few = SentenceRankerTrainer._corroboration(passages(3, 0, True), passages(1, 1, True))
    assert few["used"] is False and "fewer than" in few["why"]


@pytest.mark.unit
def test_the_trainer_needs_token_vectors() -> None:
    with pytest.raises(ValueError, match="token encoder"):
        SentenceRankerTrainer(ListSearch(DOCS), EvidenceSelector(HashingEmbedder()), 8, 12)


@pytest.mark.unit
def test_corroboration_reads_the_cited_chunks_passage_across_chunk_boundaries() -> None:
    """A chunk is cut to a size, so a cited sentence's passage takes in the chunks around it of the same document
    and headings: all their sentences come back, unshown, each with its probability read at its place in the
    passage. Another document never joins; without a model, or with a reach of 0, nothing or one chunk does."""
    search = ListSearch(DOCS)
    hits = [h for h in search.search("harbour built 1820", 8) if "1820" in h.chunk.text]
    late = Preferring("position", sign=5.0)
    selector = EvidenceSelector(HashingEmbedder(), 6, 300, tokens=HashingTokenEncoder(), document_margin=None,
                                corroboration=lambda: late, passage_chunks=4,
                                neighbours=lambda ids: {c.id: c for c in search.chunks if c.id in ids})
    chosen = selector.select([QUESTION], hits)
    assert {ev.chunk_id for ev in chosen} == {hits[0].chunk.id} and all(ev.corroboration is None for ev in chosen)
    sentences = selector.passage_sentences([QUESTION], [hits[0].chunk])
    assert [m.text for m in sentences][-1] == "Fishing boats still use the harbour every morning."
    assert {m.chunk_id for m in sentences} == {hits[0].chunk.id, hits[0].chunk.id + 1}
    assert all(not m.shown and m.number == 0 and m.doc_id == "harbour" for m in sentences)
    passage = selector.passages([hits[0].chunk])
    assert len(passage) == 1 and {c.doc_id for c in passage[0]} == {"harbour"} and len(passage[0]) == 3
    place = selector.passage_features([QUESTION], passage)[4][:, FEATURES.index("position")]
    assert list(place) == sorted(place) and place[-1] > place[0] > 0.0  # the first chunk is a heading only
    likely = [m.corroboration for m in sentences]
    assert likely == sorted(likely) and likely[0] < likely[-1]  # read at the place in the passage
    one_chunk = EvidenceSelector(HashingEmbedder(), 6, 300, tokens=HashingTokenEncoder(), document_margin=None,
                                 corroboration=lambda: late)
    assert {m.chunk_id for m in one_chunk.passage_sentences([QUESTION], [hits[0].chunk])} == {hits[0].chunk.id}
    assert EvidenceSelector(HashingEmbedder(), tokens=HashingTokenEncoder()).passage_sentences(
        [QUESTION], [hits[0].chunk]) == []


@pytest.mark.unit
def test_the_corroboration_examples_take_the_source_chunks_whole_passage() -> None:
    search = ListSearch(DOCS)
    selector = EvidenceSelector(HashingEmbedder(), tokens=HashingTokenEncoder(), passage_chunks=4,
                                neighbours=lambda ids: {c.id: c for c in search.chunks if c.id in ids})
    trainer = SentenceRankerTrainer(search, selector, chunks_per_query=8, pool_chunks=12)
    question = "What happened to the old harbour?"
    one = TrainingItem(question, 1, "harbour", True, "qrels",
                       sentence="The old harbour was built in 1820 by the town council.")
    found = trainer._examples(question, [one])
    assert found is not None and found[3] is not None and list(found[3][1]) == [1.0, 0.0, 0.0]
