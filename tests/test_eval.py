"""The evaluation suite: metrics checked by hand, and the real commands end to end on tiny fixtures."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from eval.bench_ingest import spread_sample
from eval.metrics import answer_hit, ir_metrics
from eval.evidence_eval import aggregate_claims, declinable, score_claim
from eval.reports_eval import sentence_hits
from ingest.core.settings import Settings
from tests.support import DEMO, FIXTURES, run_cli


@pytest.mark.unit
def test_ndcg_and_mrr_match_hand_computation() -> None:
    qrels = {"q1": {"a": 1, "c": 1}, "q2": {"x": 1}}
    means, per_query = ir_metrics(qrels, {"q1": ["b", "a", "c"], "q2": []})
    ideal = 1 + 1 / math.log2(3)
    assert math.isclose(per_query["ndcg@10"]["q1"], (1 / math.log2(3) + 1 / math.log2(4)) / ideal)
    assert per_query["mrr@10"]["q1"] == 0.5 and per_query["ndcg@10"]["q2"] == 0.0
    assert means["recall@5"] == 0.5  # q1 finds both, q2 (nothing retrieved) finds none


@pytest.mark.unit
def test_ir_metrics_grade_gain_linearly_count_every_judged_query_and_ignore_the_rest() -> None:
    qrels = {"q1": {"a": 3, "b": 2, "z": 0}, "q2": {"x": 1}}
    run = {"q1": ["z", "a", "b", "a"], "extra": ["a"]}  # q2 missing from the run; "extra" has no judgements
    means, per_query = ir_metrics(qrels, run, ("ndcg@3", "recall@1", "mrr@10"))
    ideal = 3 + 2 / math.log2(3)
    assert math.isclose(per_query["ndcg@3"]["q1"], (3 / math.log2(3) + 2 / math.log2(4)) / ideal)
    assert per_query["recall@1"]["q1"] == 0.0 and per_query["mrr@10"]["q1"] == 0.5  # a grade-0 doc is not relevant
    assert set(per_query["ndcg@3"]) == {"q1", "q2"} and per_query["ndcg@3"]["q2"] == 0.0
    assert math.isclose(means["mrr@10"], 0.25)
    with pytest.raises(ValueError, match="map@10"):
        ir_metrics(qrels, run, ("map@10",))


@pytest.mark.unit
def test_answer_hit_ignores_case_and_whitespace() -> None:
    assert answer_hit(["The  Normans\nwere  in FRANCE."], ["in France"])
    assert not answer_hit(["Normandy"], ["France"])
    assert not answer_hit(["anything"], [])


def test_eval_retrieval_end_to_end_is_deterministic_and_resumable(tmp_path: Path) -> None:
    args = ["eval", "retrieval", "--dataset", str(FIXTURES / "beir-tiny"), "--split", "test",
            "--systems", "bm25,bm25-plain,dense,hybrid,fused,fused+late@2", "--out", str(tmp_path), "--quiet"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.endswith("retrieval-beir-tiny")]
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["metrics"]) == {"bm25", "bm25-plain", "dense", "hybrid", "fused", "fused+late"}
    assert results["metrics"]["fused+late"]["queries"] == 2 < results["metrics"]["fused"]["queries"]
    assert results["subset"]["queries"] == 2 and set(results["subset"]["metrics"]) == set(results["metrics"])
    for metrics in results["metrics"].values():
        assert {"ndcg@10", "recall@5", "recall@20", "recall@100", "mrr@10", "fail@20", "latency_p95_ms"} <= set(metrics)
    assert results["metrics"]["hybrid"]["ndcg@10"] > 0.7  # easy, hand-written queries
    assert results["environment"]["models"]["embedder"] and results["environment"]["packages"]["faiss-cpu"]
    assert results["environment"]["machine"]["cores"] >= 1 and results["environment"]["git_commit"]
    assert (run_dir / "recall_at_k.png").stat().st_size > 1000 and (run_dir / "latency.png").exists()
    assert "| hybrid |" in (run_dir / "report.md").read_text()
    assert "| hybrid |" in first.stdout

    # Resume: rows already written are not recomputed, and the numbers stay the same.
    rows_before = (run_dir / "rows.jsonl").read_text()
    again = run_cli(*args[:-1], "--resume", str(run_dir), "--quiet")
    assert again.returncode == 0, again.stderr
    assert (run_dir / "rows.jsonl").read_text() == rows_before
    assert json.loads((run_dir / "results.json").read_text())["metrics"]["dense"]["ndcg@10"] == \
        results["metrics"]["dense"]["ndcg@10"]

    # A fresh run reuses the cached index and gives identical quality numbers.
    second = run_cli(*args)
    assert second.returncode == 0
    runs = sorted(p for p in tmp_path.iterdir() if p.name.endswith("retrieval-beir-tiny"))
    other = json.loads((runs[-1] / "results.json").read_text()) if runs[-1] != run_dir else results
    for system in results["metrics"]:
        assert other["metrics"][system]["ndcg@10"] == results["metrics"][system]["ndcg@10"]
    compared = run_cli("eval", "compare", str(run_dir), str(runs[-1]))
    assert compared.returncode == 0 and "| hybrid | ndcg@10 |" in compared.stdout


def test_eval_answers_end_to_end(tmp_path: Path) -> None:
    result = run_cli("eval", "answers", "--dataset", str(FIXTURES / "squad-tiny"), "--systems", "bm25,dense,hybrid",
                     "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.endswith("answers-squad-tiny")]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["questions_answerable"] == 3 and results["questions_unanswerable"] == 1
    assert results["metrics"]["hybrid"]["answer_hit@5"] == 1.0  # one short document: every answer is found
    assert (run_dir / "answer_hit_at_k.png").exists()


def _labelled_squad_folder(tmp_path: Path) -> Path:
    """A squad-wiki folder of 8 answerable questions and one that is not, on squad-tiny's documents."""
    data = tmp_path / "squad"
    shutil.copytree(FIXTURES / "squad-tiny" / "docs", data / "docs")
    md = (data / "docs" / "Lighthouses.md").read_text()
    asked = [("When was the first lighthouse built?", "1821"), ("Who built the first lighthouse?", "the harbour board"),
             ("Until when did the lighthouse burn whale oil?", "1877"), ("How many steps did keepers climb?", "112"),
             ("What did the clockwork turn every evening?", "the lens"), ("When was the light automated?", "1989"),
             ("Where did the last keeper move?", "the mainland"), ("In which season did the last keeper leave?",
                                                                   "spring")]
    rows = [{"id": f"a{i}", "question": q, "doc": "Lighthouses.md", "paragraph": 0, "answerable": True,
             "answers": [{"text": a, "start": md.index(a)}]} for i, (q, a) in enumerate(asked)]
    rows += [{"id": "u0", "question": "What colour was the lighthouse painted?", "doc": "Lighthouses.md",
              "paragraph": 0, "answerable": False, "answers": []}]
    (data / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def test_eval_answers_ranks_each_fold_with_a_scorer_trained_on_the_other_folds(tmp_path: Path) -> None:
    """--train-folds 2 on a squad-wiki folder: every answerable question is ranked by fused+trained with the
    scorer of the fold it is not in, trained on the other fold's labelled questions only."""
    data = _labelled_squad_folder(tmp_path)
    env = {"CITEWISE_TRAIN__MIN_HELD_OUT_AUC": "0", "CITEWISE_TRAIN__EPOCHS": "1", "CITEWISE_TRAIN__MAX_LENGTH": "64",
           "CITEWISE_TRAIN__BATCH_SIZE": "8", "CITEWISE_TRAIN__HARD_NEGATIVES": "2"}
    done = run_cli("eval", "answers", "--dataset", str(data), "--systems", "fused,fused+trained", "--train-folds", "2",
                   "--out", str(tmp_path / "runs"), "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.name.endswith("answers-squad")]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["metrics"]["fused+trained"]["queries"] == results["metrics"]["fused"]["queries"] == 8
    training = results["training"]
    assert training["folds"] == 2 and set(training["scorers"]) == {"fold-0", "fold-1"}
    for scorer in training["scorers"].values():  # 9 questions in two folds: trained on the other fold only
        assert scorer["data"]["labels"]["queries"] in (4, 5)
    assert "2-fold" in (run_dir / "report.md").read_text()
    both = run_cli("eval", "answers", "--dataset", str(data), "--systems", "fused+trained", "--train-folds", "2",
                   "--train", "synthetic", "--out", str(tmp_path / "runs"))
    assert both.returncode == 2 and "not both" in both.stderr


def test_bad_dataset_path_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("eval", "retrieval", "--dataset", str(tmp_path), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "not a BEIR dataset" in result.stderr and "corpus.jsonl" in result.stderr


def test_eval_reports_side_by_side_with_the_stuffed_baseline(tmp_path: Path) -> None:
    """Both systems on real claims files with the real fast model as writer (small budgets)."""
    env = {"CITEWISE_MODELS__WRITER": "qwen2.5-coder-0.5b-instruct", "CITEWISE_RESEARCH__WRITER_MAX_TOKENS": "120",
           "CITEWISE_RESEARCH__MAX_ROUNDS": "1"}
    done = run_cli("eval", "reports", "--dataset", str(FIXTURES / "claims-tiny"), "--systems",
                   "citewise,stuffed@1,citewise-located@1",
                   "--off-topic", str(FIXTURES / "squad-tiny"), "--off-topic-limit", "1",
                   "--out", str(tmp_path), "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    [run] = [p for p in tmp_path.iterdir() if "-reports-" in p.name]
    results = json.loads((run / "results.json").read_text())
    for name, n in (("citewise", 2), ("stuffed", 1)):
        m = results["metrics"][name]
        assert m["claims"] == n
        assert 0.0 <= m["doc_citation_precision"] <= 1.0 and m["seconds_p50"] > 0
    assert results["metrics"]["citewise"]["non_verbatim_quote_rate"] == 0.0
    # A lighthouse question asked of an index of coffee and glacier abstracts: nothing there bears on it.
    assert results["off_topic"]["items"] == 1
    assert all(results["metrics"][name]["off_topic"] == 1 for name in ("citewise", "stuffed"))
    assert results["metrics"]["citewise"]["declined_off_topic"] == 1.0
    assert "| citewise |" in (run / "report.md").read_text()
    # the baseline capped at one claim is paired with citewise on that claim only (and the off-topic item)
    paired = results["paired"]
    assert paired["baseline"] == "citewise"
    assert paired["systems"]["stuffed"]["doc_citation_recall"]["items"] == 1
    assert paired["systems"]["stuffed"]["declined_off_topic"]["items"] == 1
    assert "Paired against citewise" in (run / "report.md").read_text()
    # A system differing only in verification judges the draft citewise's writer wrote for the same prompt.
    rows = [json.loads(line) for line in (run / "rows.jsonl").read_text().splitlines()]
    located = [r for r in rows if r["system"] == "citewise-located"]
    written = [r for r in located if r["tokens"]["calls"]]
    assert len(located) == 2 and written, "the claim was declined before writing: nothing shared to check"
    assert all(r.get("write_replayed") for r in written) and not any(r.get("write_replayed") for r in rows
                                                                   if r["system"] != "citewise-located")
    assert results["writes_replayed"] == {"citewise-located": len(written)}
    assert "judge a draft written once" in (run / "report.md").read_text()
    # The drafts are kept with the run: resumed with one more such system, nothing is written again.
    kept = (run / "writes.jsonl").read_text()
    again = run_cli("eval", "reports", "--dataset", str(FIXTURES / "claims-tiny"), "--systems",
                    "citewise,citewise-repoint@1", "--off-topic", str(FIXTURES / "squad-tiny"), "--off-topic-limit", "1",
                    "--resume", str(run), "--out", str(tmp_path), "--quiet", env=env)
    assert again.returncode == 0, again.stderr
    repointed = [r for r in map(json.loads, (run / "rows.jsonl").read_text().splitlines())
                 if r["system"] == "citewise-repoint"]
    assert len(repointed) == 2 and [r for r in repointed if r.get("write_replayed")] == \
        [r for r in repointed if r["tokens"]["calls"]] != []
    assert (run / "writes.jsonl").read_text() == kept


@pytest.mark.unit
def test_sentence_citations_count_recall_and_precision_apart() -> None:
    """Citing every sentence of the gold document finds the rationale but shows mostly other sentences."""
    sentences = {"7": ["Mice were fed a diet.", "Weight fell by a third in treated mice.", "Funding came from X."],
                 "9": ["Unrelated finding about rats."]}
    evidence = {"7": {"sentences": [1], "label": "SUPPORT"}}

    def cite(doc: str, quote: str) -> dict[str, str]:
        return {"doc_source": f"beir://scifact/{doc}", "quote": quote}

    exact = [cite("7", "Weight fell by a third in treated mice."), cite("7", "Weight fell by a third in treated mice.")]
    assert sentence_hits(exact, evidence, sentences) == (1, 1, 1, 1)  # the same quote twice is one quote
    everything = [cite("7", t) for t in sentences["7"]] + [cite("9", sentences["9"][0])]
    assert sentence_hits(everything, evidence, sentences) == (1, 1, 4, 1)
    # The gold sentence's words quoted from another document are not the rationale.
    assert sentence_hits([cite("9", "Weight fell by a third in treated mice.")], evidence, sentences) == (1, 0, 1, 0)
    assert sentence_hits([], evidence, sentences) == (1, 0, 0, 0)


@pytest.mark.unit
def test_evidence_is_scored_in_the_order_the_writer_reads_it() -> None:
    gold = {"7": ["Mice were fed a diet.", "Weight fell by a third in treated mice."], "9": ["Rats slept."]}
    evidence = {"7": {"sentences": [1], "label": "SUPPORT"}}
    def shown(doc: str, text: str) -> dict[str, str]:
        return {"doc_source": f"beir://scifact/{doc}", "quote": text}

    second = score_claim(evidence, gold, [shown("9", "Rats slept."),
                                          shown("7", "Weight fell by a third in treated mice.")])
    assert second == {"gold_sentences": 1, "gold_sentences_shown": 1, "first_gold_rank": 2,
                      "first_document_gold": False, "documents": 2, "gold_documents": 1}
    missed = score_claim(evidence, gold, [shown("7", "Mice were fed a diet.")])
    assert missed["gold_sentences_shown"] == 0 and missed["first_gold_rank"] is None and missed["first_document_gold"]
    rows = [{**second, "sentences": 2, "writes": True, "seconds": 0.2},
            {**missed, "sentences": 1, "writes": False, "seconds": 0.4}]
    m = aggregate_claims(rows)
    assert (m["rationale_recall"], m["first_sentence_gold"], m["rationale_mrr"]) == (0.5, 0.0, 0.25)
    assert (m["first_document_gold"], m["document_precision"], m["declined_before_writing"]) == (0.5, 2 / 3, 0.5)


@pytest.mark.unit
def test_declinable_is_what_the_best_cut_declines_while_costing_a_tenth_of_answerable_questions() -> None:
    answerable = [float(x) for x in range(1, 21)]  # the cut may decline two of twenty: it sits at 3
    assert declinable(answerable, [0.0, 2.9, 3.0, 9.0]) == 0.5
    # a tenth of nine is none: only what scores below every answerable question is declined
    assert declinable(answerable[:9], [0.5, 1.5]) == 0.5
    assert declinable([], [1.0]) is None and declinable([1.0], []) is None


def test_eval_evidence_scores_what_the_writer_would_read_without_writing(tmp_path: Path) -> None:
    """Claims about coffee and glaciers against an index of their two abstracts, and a lighthouse question
    that index cannot answer: the gold abstract comes first, and the off-topic item is declined before writing."""
    done = run_cli("eval", "evidence", "--dataset", str(FIXTURES / "claims-tiny"), "--off-topic",
                   str(FIXTURES / "squad-tiny"), "--off-topic-limit", "1", "--out", str(tmp_path), "--quiet",
                   env={"CITEWISE_RESEARCH__MAX_ROUNDS": "1"})
    assert done.returncode == 0, done.stderr
    [run] = [p for p in tmp_path.iterdir() if "-evidence-" in p.name]
    results = json.loads((run / "results.json").read_text())
    m = results["metrics"]["citewise"]
    assert m["claims"] == 2 and m["first_document_gold"] == 1.0 and m["rationale_recall"] == 1.0
    assert m["declined_before_writing"] == 0.0 and m["declined_off_topic"] == 1.0
    rows = [json.loads(line) for line in (run / "rows.jsonl").read_text().splitlines()]
    assert all(r["evidence"] and r["sentences"] == len(r["evidence"]) for r in rows if not r.get("off_topic"))
    assert "| citewise |" in (run / "report.md").read_text()
    assert results["paired"] == {"baseline": "citewise", "systems": {}}  # one system: nothing to pair
    assert "Paired against" not in (run / "report.md").read_text()
    unknown = run_cli("eval", "evidence", "--dataset", str(FIXTURES / "claims-tiny"), "--systems", "stuffed",
                      "--out", str(tmp_path))
    assert unknown.returncode == 2 and "unknown systems" in unknown.stderr


@pytest.mark.unit
def test_a_spread_sample_of_documents_is_the_same_every_run(tmp_path: Path) -> None:
    """`--docs` picks the same evenly spread files every run, so context modes compare on equal ground."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(10):
        (folder / f"doc{i}.md").write_text(f"# Doc {i}\n\nSome text about topic {i}.\n")
    (folder / "notes.xyz").write_text("not ingestible")
    picked = spread_sample(folder, Settings(), 3)
    assert [p.name for p in picked] == ["doc0.md", "doc3.md", "doc6.md"]
    assert len(spread_sample(folder, Settings(), 50)) == 10


def test_bench_ingest_on_a_spread_sample_of_documents() -> None:
    done = run_cli("eval", "bench-ingest", str(DEMO), "--docs", "2", "--baseline-sample", "0",
                   "--context-mode", "none", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["documents"] == 2 and result["failed"] == 0 and result["chunks"] > 0
    assert [Path(p).name for p in result["sampled_documents"]] == ["pep-0008.rst", "pep-0343.rst"]
    assert result["context_mode"] == "none" and result["baseline"] is None


def test_every_beir_eval_command_takes_a_split(tmp_path: Path) -> None:
    """beir-tiny ships qrels/test.tsv only: without --split the commands name the split they looked for and the
    ones the dataset has, before any index is built or model loaded."""
    beir = str(FIXTURES / "beir-tiny")
    for args in (["reports", "--dataset", beir], ["bench-api", "--dataset", beir], ["retrieval", "--dataset", beir],
                 ["reports", "--dataset", str(FIXTURES / "squad-tiny"), "--off-topic", beir]):
        done = run_cli("eval", *args, "--out", str(tmp_path / "runs"), "--quiet", timeout=120)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.strip() == (f"error: {beir} is not a BEIR dataset with split 'train': qrels/train.tsv is "
                                       "missing (its splits: test; choose one with --split)"), (args, done.stderr)
    squad = run_cli("eval", "reports", "--dataset", str(FIXTURES / "squad-tiny"), "--split", "test",
                    "--out", str(tmp_path / "runs"), "--quiet")
    assert squad.returncode == 2 and "squad-wiki folder" in squad.stderr and "no splits" in squad.stderr
    odd = run_cli("eval", "retrieval", "--dataset", beir, "--split", "../qrels/test", "--out", str(tmp_path / "runs"))
    assert odd.returncode == 2 and "is not a split name" in odd.stderr


def test_eval_reports_reads_the_split_it_is_given(tmp_path: Path) -> None:
    """beir-tiny's test queries carry no gold evidence: the run reads that split and says there is nothing to
    score, before an index is built."""
    done = run_cli("eval", "reports", "--dataset", str(FIXTURES / "beir-tiny"), "--split", "test",
                   "--systems", "citewise", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 2 and "no query of split 'test' has evidence" in done.stderr, done.stderr
    assert not (tmp_path / "indexes").exists()


def test_trained_systems_are_scored_only_on_folds_their_scorer_never_saw(tmp_path: Path) -> None:
    """--train-folds 2 on beir-tiny's 6 queries: each fold's queries are ranked by a scorer trained on the other
    fold's labels only, in the run folder (the cached index gets none); --resume trains nothing again."""
    env = {"CITEWISE_TRAIN__MIN_HELD_OUT_AUC": "0", "CITEWISE_TRAIN__EPOCHS": "1", "CITEWISE_TRAIN__MAX_LENGTH": "64",
           "CITEWISE_TRAIN__BATCH_SIZE": "8", "CITEWISE_TRAIN__HARD_NEGATIVES": "2"}
    args = ["eval", "retrieval", "--dataset", str(FIXTURES / "beir-tiny"), "--split", "test", "--systems",
            "fused,fused+trained,reembedded+fused", "--train-folds", "2", "--out", str(tmp_path), "--quiet"]
    done = run_cli(*args, env=env)
    assert done.returncode == 0, done.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.endswith("retrieval-beir-tiny")]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["metrics"]["fused+trained"]["queries"] == results["metrics"]["fused"]["queries"] == 6
    # The corpus re-embedded once per fold, by that fold's encoder, and searched for that fold's queries only.
    assert results["metrics"]["reembedded+fused"]["queries"] == 6
    assert "trained encoder" in results["systems"]["reembedded+fused"]
    assert "this run trained" in results["systems"]["fused+trained"] and "index's own scorer" not in str(results["systems"])
    vectors = sorted((run_dir / "scorers").glob("fold-*/vectors.npz"))
    assert len(vectors) == 2 and not (np.load(vectors[0])["vectors"] == np.load(vectors[1])["vectors"]).all()
    # the folds' scorers themselves publish none: every other system searches the embedder's vectors
    assert not list((run_dir / "scorers").glob("fold-*/scorer/*/vectors.npz"))
    embedded_at = {p: p.stat().st_mtime for p in vectors}
    training = results["training"]
    assert training["folds"] == 2 and set(training["scorers"]) == {"fold-0", "fold-1"}
    for scorer in training["scorers"].values():
        assert scorer["data"]["labels"]["queries"] == 3  # the other fold's queries, never its own
        assert scorer["meta"]["data"]["items"] == {"qrels": scorer["data"]["labels"]["items"]}
    assert "2-fold" in (run_dir / "report.md").read_text()
    (index,) = (tmp_path / "indexes").iterdir()
    assert not (index / "scorer").exists()
    trained_at = {p: p.stat().st_mtime for p in (run_dir / "scorers").rglob("model-int8.onnx")}
    assert len(trained_at) == 2
    again = run_cli(*args[:-1], "--resume", str(run_dir), "--quiet", env=env)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime for p in (run_dir / "scorers").rglob("model-int8.onnx")} == trained_at
    assert {p: p.stat().st_mtime for p in vectors} == embedded_at


def test_trained_systems_need_a_way_to_train_that_never_sees_the_queries(tmp_path: Path) -> None:
    beir = str(FIXTURES / "beir-tiny")
    both = run_cli("eval", "retrieval", "--dataset", beir, "--split", "test", "--systems", "fused+trained",
                   "--train-folds", "2", "--train", "synthetic", "--out", str(tmp_path))
    assert both.returncode == 2 and "not both" in both.stderr
    mixed = run_cli("eval", "retrieval", "--dataset", beir, "--split", "test", "--systems", "fused+trained",
                    "--train", "labels+synthetic", "--out", str(tmp_path))
    assert mixed.returncode == 2 and "give --train-folds K" in mixed.stderr and "Traceback" not in mixed.stderr
    unknown = run_cli("eval", "reports", "--dataset", beir, "--split", "test", "--systems", "citewise-trained",
                      "--train-folds", "2", "--train", "labels", "--out", str(tmp_path))
    assert unknown.returncode == 2 and "labels+synthetic" in unknown.stderr and "Traceback" not in unknown.stderr
    untrained = run_cli("eval", "retrieval", "--dataset", beir, "--split", "test", "--systems", "reembedded+fused",
                        "--out", str(tmp_path))
    assert untrained.returncode == 2 and "--train-folds" in untrained.stderr and "Traceback" not in untrained.stderr
    bare = run_cli("eval", "reports", "--dataset", beir, "--split", "test", "--systems", "citewise-trained",
                   "--out", str(tmp_path))
    assert bare.returncode == 2 and "--train-folds" in bare.stderr and "Traceback" not in bare.stderr
    reranked = run_cli("eval", "reports", "--dataset", beir, "--split", "test", "--systems", "citewise,citewise-reranked",
                       "--out", str(tmp_path))
    assert reranked.returncode == 2 and "citewise-reranked" in reranked.stderr and "Traceback" not in reranked.stderr


def test_each_trained_report_system_uses_its_folds_scorer_as_its_settings_say(tmp_path: Path) -> None:
    """One question each through citewise-reranked, citewise-scored-evidence, citewise-reembedded and
    citewise-as-trained (a labelled
    squad-wiki folder, two folds): each system's researcher is built from its TRAINED settings over the same fold's
    scorer, trained once on the other fold's labels."""
    env = {"CITEWISE_TRAIN__MIN_HELD_OUT_AUC": "0", "CITEWISE_TRAIN__EPOCHS": "1", "CITEWISE_TRAIN__MAX_LENGTH": "64",
           "CITEWISE_TRAIN__BATCH_SIZE": "8", "CITEWISE_TRAIN__HARD_NEGATIVES": "2",
           "CITEWISE_MODELS__WRITER": "qwen2.5-coder-0.5b-instruct", "CITEWISE_RESEARCH__WRITER_MAX_TOKENS": "64",
           "CITEWISE_RESEARCH__MAX_ROUNDS": "1"}
    done = run_cli("eval", "reports", "--dataset", str(_labelled_squad_folder(tmp_path)), "--systems",
                   "citewise-reranked@1,citewise-scored-evidence@1,citewise-reembedded@1,citewise-as-trained@1",
                   "--train-folds", "2",
                   "--out", str(tmp_path),
                   "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    [run] = [p for p in tmp_path.iterdir() if "-reports-" in p.name]
    results = json.loads((run / "results.json").read_text())
    assert all(results["metrics"][name]["answerable"] + results["metrics"][name]["unanswerable"] == 1
               for name in ("citewise-reranked", "citewise-scored-evidence", "citewise-reembedded",
                            "citewise-as-trained"))
    assert len(results["training"]["scorers"]) == 1  # every system's first claim is in the same fold
    rows = {row["system"]: row for row in map(json.loads, (run / "rows.jsonl").read_text().splitlines())}
    assert rows["citewise-reranked"]["query_id"] == rows["citewise-scored-evidence"]["query_id"]
    # the fold's encoder re-embedded the corpus into the run folder once, for the two systems searching it
    assert [p.parent.name for p in (run / "scorers").glob("*/vectors.npz")] == list(results["training"]["scorers"])
    # The evidence a writer would read, under the same held-out scorers: found in the run folder, not retrained.
    trained_at = {p: p.stat().st_mtime for p in (run / "scorers").rglob("model-int8.onnx")}
    evidence_run = tmp_path / "evidence-run"
    shutil.copytree(run / "scorers", evidence_run / "scorers")
    seen = run_cli("eval", "evidence", "--dataset", str(_labelled_squad_folder(tmp_path / "again")), "--systems",
                   "citewise,citewise-trained", "--train-folds", "2", "--resume", str(evidence_run),
                   "--out", str(tmp_path), "--quiet", env=env)
    assert seen.returncode == 0, seen.stderr
    results = json.loads((evidence_run / "results.json").read_text())
    for name in ("citewise", "citewise-trained"):
        m = results["metrics"][name]
        assert (m["answerable"], m["unanswerable"]) == (8, 1)
        assert m["answer_first"] <= m["answer_shown"] and m["answer_shown"] >= 0.5  # one short document
        assert 0.0 <= m["answerability_auc"] <= 1.0
    # The reports run needed one fold's scorer (its first item); the evidence run reused it and trained the other.
    now = {p.relative_to(evidence_run): p.stat().st_mtime for p in (evidence_run / "scorers").rglob("model-int8.onnx")}
    assert len(now) == 2 and all(now[p.relative_to(run)] == t for p, t in trained_at.items())


def test_the_model_server_system_needs_a_model_server_and_nothing_else_takes_one(tmp_path: Path) -> None:
    beir = str(FIXTURES / "beir-tiny")
    bare = run_cli("eval", "reports", "--dataset", beir, "--split", "test", "--systems", "citewise-server",
                   "--out", str(tmp_path))
    assert bare.returncode == 2 and "--model-server" in bare.stderr and "Traceback" not in bare.stderr
    stray = run_cli("eval", "reports", "--dataset", beir, "--split", "test", "--systems", "citewise",
                    "--model-server", "http://127.0.0.1:9/v1", "--out", str(tmp_path))
    assert stray.returncode == 2 and "applies to it alone" in stray.stderr


@pytest.mark.unit
def test_the_writer_speed_benchmark_changes_one_setting_at_a_time_from_the_shipped_one() -> None:
    from eval.bench_writer import LlamaSetting, settings_to_try

    tried = settings_to_try(2)
    base = LlamaSetting(256, 2, 2)
    assert tried[0] == base and base.repack and not base.flash_attn  # the shipped kernels
    shape = lambda t: (t.n_batch, t.threads, t.threads_batch, (t.flash_attn, t.repack))  # noqa: E731
    assert all(sum(a != b for a, b in zip(shape(t), shape(base))) == 1 for t in tried[1:])
    assert len(set(tried)) == len(tried)
    kernels = [(t.flash_attn, t.repack) for t in tried if t.n_batch == 256]
    assert {(True, False), (True, True), (False, False)} <= set(kernels)  # (True, False): batch-invariant
    assert all(t.threads == t.threads_batch == 1 for t in settings_to_try(1))
    assert settings_to_try(2, "batch") == [base] + [LlamaSetting(b, 2, 2) for b in (64, 128, 512)]
    assert settings_to_try(1, "threads") == [LlamaSetting(256, 1, 1)]


def test_the_writer_speed_benchmark_times_the_real_writer_prompt(built_index: Path, tmp_path: Path) -> None:
    """The 0.5B model as writer, one round, a few tokens, the thread knobs only: every setting reports prefill and
    decode speeds."""
    bad = run_cli("eval", "bench-writer", "--index", str(built_index), "--question", "q", "--vary", "colour",
                  "--out", str(tmp_path))
    assert bad.returncode == 2 and "--vary must be one of all, kernels, batch, threads" in bad.stderr
    done = run_cli("eval", "bench-writer", "--index", str(built_index), "--question", "What does the walrus operator "
                   "do?", "--rounds", "1", "--max-tokens", "4", "--vary", "threads", "--json", "--out", str(tmp_path),
                   env={"CITEWISE_MODELS__WRITER": "qwen2.5-coder-0.5b-instruct"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"] == "qwen2.5-coder-0.5b-instruct" and result["evidence_sentences"] > 0
    rows = result["settings"]
    assert rows[0]["prefill_ratio"] == 1.0 and len(rows) == len({r["name"] for r in rows})
    assert len(rows) == (3 if result["cores"] > 1 else 1) and result["vary"] == "threads"  # the shipped one, then 2
    assert all(r["prompt_tokens"] > 100 and r["prefill_tok_s"] > 0 and r["decode_tok_s"] >= 0 for r in rows)
    (run,) = [p for p in tmp_path.iterdir() if "-bench-writer-" in p.name]
    assert "| n_batch=256 threads=" in (run / "report.md").read_text()


@pytest.mark.unit
def test_publishing_keeps_each_runs_report_under_its_own_name(tmp_path: Path) -> None:
    """Two runs of one kind on one dataset at one commit (a benchmark of two models) get two files; publishing a
    run again replaces its own file."""
    from eval.publish import publish

    runs = []
    for i, model in enumerate(("writer", "fast")):
        run = tmp_path / f"20261205-10000{i}-bench-writer-idx"
        run.mkdir()
        (run / "report.md").write_text(f"# {model}\n")
        (run / "results.json").write_text(json.dumps({"kind": "bench-writer", "dataset": "/tmp/idx",
                                                       "environment": {"git_commit": "abcdef123"}}))
        runs.append(run)
    out = tmp_path / "reports"
    first, second = publish(runs[0], out), publish(runs[1], out)
    assert first.name == "2026-12-05-bench-writer-idx-abcdef1.md" and second.name == "2026-12-05-bench-writer-idx-abcdef1-2.md"
    assert "# writer" in first.read_text() and "# fast" in second.read_text()
    assert publish(runs[0], out, note="again") == first and "again" in first.read_text()
    assert len(list(out.iterdir())) == 2


@pytest.mark.unit
def test_a_resumed_run_says_which_commits_wrote_its_rows(tmp_path: Path) -> None:
    """A report is stamped with the commit that finished the run; rows an earlier commit wrote are counted."""
    from eval.run_folder import RunFolder

    first = RunFolder.new(tmp_path, "reports", "scifact", commit="aaaa1111")
    first.append({"system": "citewise", "query_id": "1"})
    first.write_results({"kind": "reports"}, "# Reports\n")
    assert "resumed" not in json.loads((first.path / "results.json").read_text())
    assert "Resumed" not in (first.path / "report.md").read_text()
    again = RunFolder(first.path, commit="bbbb2222")
    again.append({"system": "citewise", "query_id": "2"})
    again.append({"system": "citewise", "query_id": "3"})
    again.write_results({"kind": "reports"}, "# Reports\n")
    results = json.loads((first.path / "results.json").read_text())
    assert results["resumed"] == {"rows_before": 1, "rows_by_commit": {"bbbb2222": 2, "aaaa1111": 1}}
    assert "rows by commit: bbbb2222 (2), aaaa1111 (1)." in (first.path / "report.md").read_text()
    assert again.done() == {("citewise", "1"), ("citewise", "2"), ("citewise", "3")}
