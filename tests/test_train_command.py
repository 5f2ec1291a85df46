"""`citewise train` as a user runs it: labels in a BEIR folder over a real index, a scorer published and used
by search, one run per index at a time, and clear refusals."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from retrieval.sentence_ranker import FEATURES
from retrieval.trained_scorer import current_generation
from tests.support import ANSWERABLE, run_cli

pytestmark = pytest.mark.integration

#: The documents of the built index each labelled question is about (file stems are BEIR ids).
ABOUT = ["pep-0572", "pep-0572", "pep-0020", "pep-0257"]
#: The gate stays at its default in the product; a handful of items cannot be held to it.
SMALL = {"CITEWISE_TRAIN__MIN_HELD_OUT_AUC": "0", "CITEWISE_TRAIN__EPOCHS": "1", "CITEWISE_TRAIN__MAX_LENGTH": "64",
         "CITEWISE_TRAIN__BATCH_SIZE": "8", "CITEWISE_TRAIN__HARD_NEGATIVES": "2"}


def beir_labels(folder: Path) -> Path:
    """A BEIR folder whose corpus ids are the index's file stems and whose evidence sentences are verbatim."""
    (folder / "qrels").mkdir(parents=True)
    sentences = {doc: [s for (_, s, _), d in zip(ANSWERABLE, ABOUT) if d == doc] for doc in set(ABOUT)}
    with open(folder / "corpus.jsonl", "w") as fh:
        for doc, sents in sorted(sentences.items()):
            fh.write(json.dumps({"_id": doc, "title": doc, "text": " ".join(sents),
                                 "metadata": {"sentences": sents}}) + "\n")
    with open(folder / "queries.jsonl", "w") as fh, open(folder / "qrels" / "train.tsv", "w") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for n, ((question, sentence, _), doc) in enumerate(zip(ANSWERABLE, ABOUT)):
            evidence = {doc: {"sentences": [sentences[doc].index(sentence)], "label": "SUPPORT"}}
            fh.write(json.dumps({"_id": str(n), "text": question, "metadata": {"evidence": evidence}}) + "\n")
            qrels.write(f"{n}\t{doc}\t1\n")
    return folder


def test_train_on_labels_publishes_a_scorer_that_search_then_uses(index_copy: Path, tmp_path: Path) -> None:
    labels = beir_labels(tmp_path / "labels")
    done = run_cli("train", "--index", str(index_copy), "--qrels", str(labels), "--synthetic", "0", "--budget", "60",
                   "--json", env=SMALL)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["data"]["labels"]["items"] == len(ANSWERABLE)
    assert summary["data"]["labels"]["queries"] == len(ANSWERABLE)
    assert summary["pairs"]["train"]["total"] > 0 and summary["scorer"] == str(current_generation(index_copy))
    on_disk = sum(f.stat().st_size for f in current_generation(index_copy).rglob("*") if f.is_file())
    assert summary["scorer_bytes"] == on_disk > 1_000_000  # an int8 encoder, reported as the replicas will copy it
    ranking = summary["evidence_ranking"]  # fitted on the labels' searches; too few held-out questions to be used
    assert ranking["questions"] + ranking["held_out_questions"] + ranking["no_answer_among_candidates"] == len(ANSWERABLE)
    assert ranking["used"] is False and "held-out" in ranking["why"]
    meta = json.loads((current_generation(index_copy) / "meta.json").read_text())
    assert meta["evidence_ranker"]["used"] is False and meta["evidence_ranker"]["features"] == list(FEATURES)
    assert len(meta["evidence_ranker"]["weights"]) == len(FEATURES)
    corroboration = meta["evidence_ranker"]["corroboration"]  # fitted beside it, checked the same way
    assert corroboration["used"] is False and corroboration["why"]
    # the corpus re-embedded and compared, but one held-out question cannot show the trained vectors rank better
    assert summary["vectors"] == meta["vectors"] and meta["vectors"]["chunks"] > 0
    assert meta["vectors"]["used"] is False and "not enough to tell" in meta["vectors"]["why"]
    found = run_cli("search", "What is the walrus operator?", "--index", str(index_copy), "--system",
                    "fused+trained", "-k", "2", "--json")
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)) == 2


def test_a_second_run_on_the_same_index_is_refused_while_one_runs(index_copy: Path, tmp_path: Path) -> None:
    labels = beir_labels(tmp_path / "labels")
    lock = index_copy / "training" / "train.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running `citewise train` holds
        done = run_cli("train", "--index", str(index_copy), "--qrels", str(labels), "--synthetic", "0", env=SMALL)
    finally:
        os.close(fd)
    assert done.returncode == 2
    assert "another `citewise train` is running" in done.stderr and "Traceback" not in done.stderr
    assert current_generation(index_copy) is None


@pytest.mark.parametrize("args, message", [
    (["--synthetic", "0"], "nothing to train on"),
    (["--qrels", "/nonexistent/labels"], "no such folder"),
    (["--budget", "0"], "--budget"),
    (["--synthetic", "-1"], "--synthetic"),
])
def test_a_run_that_cannot_train_says_why_in_one_line(index_copy: Path, args: list[str], message: str) -> None:
    done = run_cli("train", "--index", str(index_copy), *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert current_generation(index_copy) is None


@pytest.mark.unit
def test_the_summary_shows_the_answerability_against_each_kind_of_negative(capsys: pytest.CaptureFixture[str]) -> None:
    """The pooled answerability mixes near misses with answers taken away; the summary shows both apart."""
    from api.cli.train_command import _print_summary

    held = {"pairs": 536, "auc": 0.858, "accuracy": 0.924, "question_auc": 0.894, "answerability_auc": 0.720,
            "answerability_near_miss_auc": 0.613, "answerability_missing_answer_auc": 0.833}
    data = {"data": {"labels": {"items": 443, "answerable": 222, "unanswerable": 221}},
            "pairs": {"train": {"total": 4702, "positive": 400}, "held_out": {"total": 536}},
            "held_out": held, "seconds": {"train": 530.2}, "scorer": "gen-000001"}
    _print_summary(data)
    text = " ".join(capsys.readouterr().err.split())
    assert "answerability (does any passage answer?): AUC 0.720; against near misses 0.613, " \
           "answer taken away 0.833 alone" in text
    _print_summary({**data, "held_out": {k: v for k, v in held.items() if "answerability" not in k}})
    assert "answerability" not in capsys.readouterr().err
