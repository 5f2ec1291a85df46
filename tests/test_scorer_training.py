"""The index's own scorer: pairs from training items, a short real training run from MiniLM, an int8 model
published atomically beside the index, and the `trained` rerank stage that reads it (without torch)."""

from __future__ import annotations

import json
import resource
import shutil
import signal
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from generate.engine import Engine
from ingest.core.errors import IndexWriteError, ModelUnavailableError
from retrieval.trained_reranker import TrainedReranker
from retrieval.trained_scorer import POINTER, OnnxTrainedScorer, current_generation, scorer_root
from retrieval.training.calibration import Answerability, Platt, answerability_examples, auc, metrics
from retrieval.training.pair_builder import PairBuilder, chunk_passage, sentence_passage
from retrieval.training.pairs import PairSet
from retrieval.training.scorer_publisher import MAX_PROBABILITY_DIFF, ScorerPublisher, drift
from retrieval.training.scorer_trainer import ScorerTrainer
from tests.support import (ANSWERABLE, FAST_TRAINING, NEAR_MISS, engine_over, make_training_items, run_cli,
                           run_probed)

def open_engine(index: Path, shared_models: dict[str, Any], **research: Any) -> Engine:
    return engine_over(index, shared_models, research=research)


#: Three steps of each kind: the cross-encoder's 8-pair batches over the training pairs, the bi-encoder's
#: one question (a positive and a hard negative) per step over the three training questions.
KINDS = {"bi-encoder": FAST_TRAINING.model_copy(update={"scorer": "bi-encoder", "batch_size": 1}),
         "cross-encoder": FAST_TRAINING.model_copy(update={"scorer": "cross-encoder"})}


@pytest.fixture(scope="module", params=list(KINDS))
def trained(request: pytest.FixtureRequest, built_index: Path, shared_models: dict[str, Any],
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the built index with a scorer trained for three steps and published; the fp32 model kept aside."""
    settings = KINDS[request.param]
    base = tmp_path_factory.mktemp("trained")
    index = base / "index"
    shutil.copytree(built_index, index)
    with open_engine(index, shared_models).open_index() as idx:
        rows = idx.chunks(idx.chunk_ids())
        pairs = PairBuilder(idx, seed=13).build(make_training_items(rows))
    trainer = ScorerTrainer(index, settings)
    model, stats = trainer.train(pairs)
    model.save(base / "fp32")
    fp32_logits = model.logits(pairs.held_out)
    folder = trainer.run(pairs)  # reuses the finished run above instead of training again
    return {"index": index, "pairs": pairs, "rows": rows, "stats": stats, "folder": folder, "fp32": base / "fp32",
            "fp32_logits": fp32_logits, "settings": settings}


def test_pairs_hold_evidence_and_negatives_at_sentence_and_chunk_level(trained: dict[str, Any]) -> None:
    pairs: PairSet = trained["pairs"]
    everything = pairs.train + pairs.held_out
    assert 16 <= len(pairs.train) <= 40
    for question, sentence, answer in ANSWERABLE:
        mine = [p for p in everything if p.question == question]
        source = next(r for r in trained["rows"].values() if sentence in r.text)
        positives = {(p.level, p.passage) for p in mine if p.label == 1.0}
        assert positives == {("sentence", sentence_passage(source.title, sentence)), ("chunk", chunk_passage(source))}
        siblings = [p for p in mine if p.kind == "sibling"]
        assert all(p.level == "sentence" and answer not in p.passage and p.label == 0.0 for p in siblings)
        if "walrus" in answer:  # its chunk has three other sentences, all of them picked
            assert len(siblings) == 3
        assert {p.level for p in mine if p.kind == "hard"} == {"sentence", "chunk"}
    near = [p for p in everything if p.question == NEAR_MISS[0][0]]
    assert {p.level for p in near} == {"sentence", "chunk"} and all(p.label == 0.0 for p in near)
    # whole questions are held out, with an answer among them to calibrate on
    assert not {p.question for p in pairs.train} & {p.question for p in pairs.held_out}
    assert {p.label for p in pairs.held_out} == {0.0, 1.0}
    assert pairs.counts()["items"] == {"synthetic": len(ANSWERABLE) + len(NEAR_MISS)}


def test_pairs_are_the_same_for_the_same_seed(trained: dict[str, Any], shared_models: dict[str, Any]) -> None:
    with open_engine(trained["index"], shared_models).open_index() as idx:
        items = make_training_items(trained["rows"])
        again = PairBuilder(idx, seed=13).build(list(reversed(items)))
        other = PairBuilder(idx, seed=14).build(items)
    assert sorted(map(repr, again.train)) == sorted(map(repr, trained["pairs"].train))
    assert PairBuilder(idx, seed=13).build(items).data_hash == trained["pairs"].data_hash
    assert other.data_hash != trained["pairs"].data_hash


def test_training_publishes_a_calibrated_int8_scorer_close_to_fp32(trained: dict[str, Any]) -> None:
    index, folder = trained["index"], trained["folder"]
    assert trained["stats"]["finished"] and trained["stats"]["steps"] == 3
    assert current_generation(index) == folder and folder.name == "gen-000001"
    assert not (index / "training" / "run").exists()  # a finished, published run leaves nothing behind
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["data_hash"] == trained["pairs"].data_hash and meta["training"]["steps"] == 3
    assert meta["kind"] == trained["settings"].scorer
    assert meta["data"]["train"]["total"] == len(trained["pairs"].train)
    assert set(meta["held_out"]) == {"fp32", "int8"}
    scorer = OnnxTrainedScorer.find(index)
    assert scorer is not None
    held = trained["pairs"].held_out
    calibration = Platt.from_json(meta["calibration"])
    got = np.array([scorer.probabilities(p.question, [p.passage])[0] for p in held])
    want = calibration.probabilities(trained["fp32_logits"])
    assert np.all((got >= 0) & (got <= 1))
    assert np.max(np.abs(got - want)) <= MAX_PROBABILITY_DIFF
    batch = scorer.probabilities(held[0].question, [p.passage for p in held if p.question == held[0].question])
    assert batch[0] == pytest.approx(got[0], abs=1e-6)  # a pair's score does not depend on its neighbours
    # whether the evidence answers at all: fitted beside the passage calibration whenever that learned anything
    assert ("answerability" in meta) == (meta["calibration"]["a"] > 0)
    if "answerability" in meta:
        fitted = Answerability.from_json(meta["answerability"])
        assert scorer.answered([0.1, 0.7]) == pytest.approx(fitted.probability([0.7]))
        assert meta["held_out"]["fp32"]["answerability_auc"] == meta["answerability"]["auc"]


def test_a_run_stopped_by_its_budget_continues_where_it_stopped(trained: dict[str, Any], tmp_path: Path) -> None:
    pairs = trained["pairs"]
    settings = trained["settings"]
    _, first = ScorerTrainer(tmp_path, settings.model_copy(update={"budget_s": 1e-3})).train(pairs)
    assert first["steps"] == 1 and first["stopped_by_budget"] and not first["finished"]
    assert (tmp_path / "training" / "run" / "checkpoint.pt").is_file()
    trainer = ScorerTrainer(tmp_path, settings)
    model, second = trainer.train(pairs)
    assert second["resumed_from_step"] == 1 and second["steps"] == 3 and second["finished"]
    assert not (tmp_path / "training" / "run" / "checkpoint.pt").exists()  # the saved model is all it keeps
    # the same model as the run that was never interrupted (data order, dropout and optimizer state resumed)
    assert np.allclose(model.logits(pairs.held_out), trained["fp32_logits"], atol=1e-4)


@pytest.fixture
def file_size_limit() -> Iterator[None]:
    """Writes beyond 1 MB fail with EFBIG (as on a full disk), for this test only."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def republish(trained: dict[str, Any]) -> Path:
    held = trained["pairs"].held_out
    labels = np.array([p.label for p in held])
    meta = json.loads((trained["folder"] / "meta.json").read_text())
    probabilities = Platt.from_json(meta["calibration"]).probabilities(trained["fp32_logits"])
    return ScorerPublisher(trained["index"]).publish(trained["fp32"], [(p.question, p.passage) for p in held],
                                                     labels, probabilities, meta)


def test_a_failed_publish_leaves_the_previous_scorer_in_place(trained: dict[str, Any],
                                                              file_size_limit: None) -> None:
    index = trained["index"]
    pointer = (scorer_root(index) / POINTER).read_text()
    with pytest.raises(IndexWriteError, match="the previous scorer \\(gen-000001\\) stays in use"):
        republish(trained)
    assert (scorer_root(index) / POINTER).read_text() == pointer
    assert sorted(p.name for p in scorer_root(index).iterdir()) == [POINTER, "gen-000001"]


def test_a_new_generation_is_followed_by_readers_and_the_previous_one_kept(trained: dict[str, Any]) -> None:
    index = trained["index"]
    reader = OnnxTrainedScorer.find(index)
    assert reader is not None and reader.meta["generation"] == "gen-000001"
    folder = republish(trained)
    assert folder.name == "gen-000002" and current_generation(index) == folder
    assert reader.meta["generation"] == "gen-000002"
    assert (scorer_root(index) / "gen-000001" / "model-int8.onnx").is_file()


def test_a_scorer_whose_int8_model_drifts_is_published_at_full_precision(trained: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    """A confident model's steep calibration turns int8 noise into probability moves the check refuses; the same
    model as fp32 ONNX keeps the trained scores, so it is published instead of nothing."""
    index = tmp_path / "index"
    shutil.copytree(trained["index"], index)
    held = trained["pairs"].held_out
    logits = np.asarray(trained["fp32_logits"], dtype=np.float64)
    steep = Platt(10.0 / float(logits.std()), -10.0 * float(logits.mean()) / float(logits.std()))
    meta = {**json.loads((trained["folder"] / "meta.json").read_text()), "calibration": steep.to_json()}
    want = steep.probabilities(logits)
    folder = ScorerPublisher(index, max_difference=1e-3).publish(
        trained["fp32"], [(p.question, p.passage) for p in held], np.array([p.label for p in held]), want, meta)
    served = json.loads((folder / "meta.json").read_text())["held_out"]["int8"]
    assert served["precision"] == "fp32" and "the int8 scorer drifted" in served["int8_refused"], served
    assert sorted(f.name for f in folder.glob("*.onnx")) == ["model-fp32.onnx"]
    scorer = OnnxTrainedScorer.find(index)
    assert scorer is not None and current_generation(index) == folder
    got = np.array([scorer.probabilities(p.question, [p.passage])[0] for p in held])
    assert np.max(np.abs(got - want)) <= 1e-3
    with pytest.raises(ModelUnavailableError, match="the fp32 ONNX scorer drifted"):  # and nothing worse
        ScorerPublisher(index, max_difference=0.0).publish(
            trained["fp32"], [(p.question, p.passage) for p in held], np.array([p.label for p in held]), want, meta)
    assert current_generation(index) == folder


@pytest.mark.unit
def test_the_publish_check_allows_a_few_pairs_to_move_far_but_not_many_nor_the_ranking() -> None:
    """A confident classifier's int8 noise moves a pair or two near its cut far; a broken export moves many."""
    quiet = np.full(400, 0.005)
    assert drift(quiet, auc_lost=0.0) is None
    assert drift(np.concatenate([quiet, [0.4, 0.45]]), auc_lost=0.0) is None  # 2 of 402: within a hundredth
    many = drift(np.concatenate([quiet, np.full(10, 0.4)]), auc_lost=0.0)
    assert many is not None and "10 moved by more than 0.25" in many
    assert drift(np.full(400, 0.08), auc_lost=0.0) is not None  # every pair a little: the mean
    assert drift(quiet, auc_lost=0.02) is not None  # the order changed
    assert drift(np.array([0.01] * 20 + [0.3]), auc_lost=0.0) is not None  # under a hundred pairs: none may


class Fixed:
    """A scorer with fixed probabilities by passage text (a deterministic fake)."""

    name = "fixed"

    def __init__(self, by_text: dict[str, float]) -> None:
        self.by_text = by_text

    def warm_up(self) -> None:
        pass

    def probabilities(self, question: str, passages: list[str]) -> np.ndarray:
        return np.array([self.by_text[p] for p in passages])

    def answered(self, probabilities: list[float]) -> float:
        return max(probabilities, default=0.0)

    def sentence_ranker(self) -> None:
        return None

    def corroboration(self) -> None:
        return None

    def corpus_vectors(self) -> None:
        return None


@pytest.mark.unit
def test_the_trained_stage_reorders_the_head_by_the_scorer() -> None:
    reranker = TrainedReranker(Fixed({"a": 0.1, "b": 0.9, "c": 0.5}), top_n=3, blend=1.0)
    ranked, info = reranker.rerank("q", [(1, 3.0), (2, 2.0), (3, 1.0), (4, 0.5)], {1: "a", 2: "b", 3: "c"})
    assert [cid for cid, _ in ranked] == [2, 3, 1, 4] and info["scored"] == 3


def test_search_with_the_trained_stage_reranks_without_torch(trained: dict[str, Any], tmp_path: Path) -> None:
    done, imported = run_probed(tmp_path, "search", "What is the walrus operator?", "--index", str(trained["index"]),
                                "--system", "fused+trained", "-k", "3", "--json", "--explain")
    stages = {s["stage"]: s for s in json.loads(done.stdout)["stages"]}
    assert stages["trained"]["extra"]["scored"] == 30
    assert "onnxruntime" in imported and "torch" not in imported, imported


def test_the_trained_stage_on_an_index_without_a_scorer_says_how_to_make_one(
        index_copy: Path, shared_models: dict[str, Any]) -> None:
    done = run_cli("search", "walrus", "--index", str(index_copy), "--system", "fused+trained")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"citewise train --index {index_copy}" in done.stderr
    engine = open_engine(index_copy, shared_models, rerank=["trained"])
    with engine.open_index() as idx, pytest.raises(ModelUnavailableError, match="has no trained scorer"):
        engine.researcher(idx)


@pytest.mark.unit
def test_calibration_does_not_depend_on_where_the_scores_sit() -> None:
    """A bi-encoder's scaled cosines sit far from zero; the fit must give what it gives for centred scores."""
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.2).astype(float)
    centred = rng.normal(0, 1, 400) + 1.5 * labels
    for shift, scale in ((0.0, 1.0), (15.0, 2.0), (-40.0, 0.1)):
        fit = Platt.fit(centred * scale + shift, labels)
        assert np.allclose(fit.probabilities(centred * scale + shift), Platt.fit(centred, labels).probabilities(centred),
                           atol=1e-5)
    assert Platt.fit(-centred, labels).a == 0  # worse than chance: the base rate, not an upside-down ranking


@pytest.mark.unit
def test_calibration_converges_with_few_positives_and_scores_far_apart() -> None:
    """Few answering pairs among many, and a few scores far out: a full Newton step there overshot to slopes
    of 1e10, which made every probability 0 or 1 and a model that ranks well read as chance (AUC 0.5).
    The fit must reach the smoothed log loss's minimum, where its gradient vanishes."""
    rng = np.random.default_rng(0)
    for case in range(300):
        npos, nneg = int(rng.integers(3, 40)), int(rng.integers(50, 400))
        scores = np.concatenate([rng.normal(rng.uniform(0, 3), rng.uniform(0.05, 2), npos),
                                 rng.normal(0, rng.uniform(0.05, 2), nneg)])
        scores[:3] += rng.uniform(5, 30) * (case % 3 == 0)
        labels = np.concatenate([np.ones(npos), np.zeros(nneg)])
        fit = Platt.fit(scores, labels)
        p = fit.probabilities(scores).astype(np.float64)
        t = np.where(labels > 0.5, (npos + 1.0) / (npos + 2.0), 1.0 / (nneg + 2.0))
        assert np.isfinite(fit.a) and 0 <= fit.a < 100, (case, fit)
        assert abs(np.sum(p - t)) < 1e-3 * len(p), (case, fit)
        if fit.a > 0:  # (a = 0: a falling slope, which the fit replaces by the base rate)
            assert abs(np.sum((p - t) * scores)) < 1e-3 * len(p), (case, fit)
            assert auc(p, labels) == pytest.approx(auc(scores, labels))  # calibration keeps the ranking


@pytest.mark.unit
def test_the_gate_reads_how_each_question_s_passages_are_ordered() -> None:
    # each question's answer outranks its own non-answers, though not the other question's non-answers
    scores = np.array([0.9, 0.8, 0.3, 0.2])
    labels = np.array([1.0, 0.0, 1.0, 0.0])
    held = metrics(scores, labels, ["a", "a", "b", "b"])
    assert held["question_auc"] == 1.0 and held["auc"] == 0.75


@pytest.mark.unit
def test_answerability_compares_the_best_passage_with_and_without_the_answer() -> None:
    # question a: answer 2.0 among 0.5 and 1.0; b: answer 1.5 beside 1.8 (the search's best is wrong); n: near miss
    scores = np.array([2.0, 0.5, 1.0, 1.5, 1.8, 0.7, 0.2])
    labels = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    x, t = answerability_examples(scores, labels, ["a", "a", "a", "b", "b", "n", "n"])
    assert sorted(zip(x.tolist(), t.tolist())) == [(0.7, 0.0), (1.0, 0.0), (1.8, 0.0), (1.8, 1.0), (2.0, 1.0)]
    # Each kind of negative apart: the near miss (0.7) is below both answers; the answers taken away (1.0, 1.8)
    # are below a's 2.0, and b's 1.8 ties its own 1.8 and beats a's 1.0.
    fitted = Answerability.fit(scores, labels, ["a", "a", "a", "b", "b", "n", "n"])
    assert fitted is not None and fitted.near_miss_auc == 1.0 and fitted.missing_answer_auc == 0.875
    assert fitted.auc == pytest.approx(5.5 / 6)


@pytest.mark.unit
def test_answerability_is_fitted_on_held_out_questions_and_read_from_the_best_probability() -> None:
    rng = np.random.default_rng(1)
    questions, logits, labels = [], [], []
    for q in range(60):  # each answerable question: its answer scores higher than its 5 non-answers, noisily
        logits += [rng.normal(1.5, 1.0)] + list(rng.normal(-1.5, 1.0, 5))
        labels += [1.0] + [0.0] * 5
        questions += [f"q{q}"] * 6
    fitted = Answerability.fit(np.array(logits), np.array(labels), questions)
    assert fitted is not None and fitted.questions == 60 and fitted.auc is not None and fitted.auc > 0.8
    assert fitted.near_miss_auc is None and fitted.missing_answer_auc == fitted.auc  # no near misses held out
    assert fitted.probability([0.05, 0.95]) > 0.8 > 0.2 > fitted.probability([0.05, 0.1])
    assert fitted.probability([]) == 0.0
    assert Answerability.from_json(fitted.to_json()) == fitted
    # near misses only: nothing to tell apart, so no answerability (the reader keeps the passage probabilities)
    assert Answerability.fit(np.array([0.1, 0.4]), np.array([0.0, 0.0]), ["n", "n"]) is None
