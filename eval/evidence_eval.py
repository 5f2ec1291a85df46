"""`citewise eval evidence`: what the writer would be shown, without writing.

A report can only cite what its evidence holds, and the writer mostly cites the first sentences it
reads, so most of a report's citation quality is decided before the writer is called: which sentences
the research loop selects, in what order, and whether it declines before writing. This runs the
research loop's gather stage alone (search, rerank, selection, planned follow-up queries) for each
system, a fraction of a second per item instead of seconds of writing, so evidence selection can be
compared on hundreds of items in minutes. Same datasets, items, systems and trained scorers as
`citewise eval reports`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from generate.engine import Engine
from generate.events import ignore
from generate.researcher import Researcher
from eval.datasets import BeirDataset, SquadWikiDataset
from eval.environment import environment
from eval.fold_scorers import TrainMode, training_lines
from eval.metrics import percentiles
from eval.paired import paired_intervals, paired_lines
from eval.reports_eval import OFF_TOPIC, _gold_sentences, _off_topic_items, dataset_items, norm, sentence_hits
from eval.run_folder import RunFolder
from eval.trained_researchers import TRAINED, TrainedResearchers, check_trained_options
from ingest.core.errors import InvalidRequestError
from ingest.core.progress import NullProgress, Progress
from ingest.core.settings import Settings
from retrieval.evidence import Evidence
from retrieval.training.calibration import auc

SYSTEMS = {"citewise": "the research loop's evidence: embedder cosine plus chunk rank, cosine thresholds",
           **{name: f"evidence as {name} of `eval reports` selects it" for name in TRAINED}}


def run_evidence(dataset_dir: Path, settings: Settings, systems: list[str], limit: int | None = None,
                 out_root: Path = Path("eval-runs"), resume: Path | None = None,
                 progress: Progress | None = None, off_topic: Path | None = None, off_topic_limit: int = 25,
                 split: str | None = None, off_topic_split: str | None = None, train_folds: int | None = None,
                 train: TrainMode | None = None) -> tuple[RunFolder, dict[str, Any]]:
    """Each item's evidence under each system, scored against the dataset's gold sentences or answers."""
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise InvalidRequestError(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    check_trained_options(systems, train_folds, train)
    progress = progress or NullProgress()
    started = time.perf_counter()
    env = environment(settings)
    comps = Engine(settings)
    foreign = _off_topic_items(off_topic, off_topic_limit, off_topic_split) if off_topic else []
    ds, items, task, index_path = dataset_items(comps, dataset_dir, split, limit, out_root, progress)
    is_beir = isinstance(ds, BeirDataset)
    commit = env["git_commit"]
    folder = RunFolder(resume, commit) if resume else RunFolder.new(out_root, "evidence", ds.name, commit)
    done = folder.done()
    gold = _gold_sentences(ds) if is_beir else {}
    work = [(qid, text) for qid, text in items] + [(qid, text) for qid, text, _ in foreign]
    with comps.open_index(index_path) as index:
        trained = TrainedResearchers(comps, index, settings, folder.path / "scorers", progress, dataset_dir,
                                     split or "train", train_folds, train,
                                     list(ds.queries) if is_beir else [q.id for q in ds.questions])
        warm: set[int] = set()
        for name in systems:
            todo = [(qid, text) for qid, text in work if (name, qid) not in done]
            progress.stage(name, len(work))
            progress.advance(name, len(work) - len(todo))
            for qid, text in todo:
                researcher = trained.for_item(qid, name) if name in TRAINED else comps.researcher(index)
                if id(researcher) not in warm:  # everything the gather stage loads, so timings are its own
                    warm.add(id(researcher))
                    for role, load in researcher.parts().items():
                        if role != "writer":
                            load()
                t0 = time.perf_counter()
                evidence, writes, decision = gathered(researcher, text)
                row: dict[str, Any] = {"system": name, "query_id": qid, "seconds": time.perf_counter() - t0,
                                       "sentences": len(evidence), "writes": writes, "decision_score": decision,
                                       "evidence": [[ev.doc_id, ev.text] for ev in evidence]}
                if qid.startswith(OFF_TOPIC):
                    row["off_topic"] = True
                elif is_beir:
                    row.update(score_claim(ds.query_metadata[qid].get("evidence") or {}, gold,
                                           [{"doc_source": ev.source, "quote": ev.text} for ev in evidence]))
                else:
                    row.update(_score_question(ds, qid, evidence))
                folder.append(row)
                progress.advance(name)
    rows = [r for r in folder.rows() if r["system"] in systems]
    table: dict[str, dict[str, Any]] = {}
    for s in systems:
        mine = [r for r in rows if r["system"] == s]
        own = [r for r in mine if not r.get("off_topic")]
        table[s] = (aggregate_claims if is_beir else _aggregate_questions)(own) if own else {}
        off = [r for r in mine if r.get("off_topic")]
        if off:
            table[s].update({"off_topic": len(off),
                             "declined_off_topic": sum(not r["writes"] for r in off) / len(off)})
    paired = paired_intervals([r for r in rows if not r.get("off_topic")], systems[0], systems[1:],
                              aggregate_claims if is_beir else _aggregate_questions,
                              PAIRED_CLAIMS if is_beir else PAIRED_QUESTIONS)
    scorers = trained.scorers.described()
    results = {"kind": "evidence", "dataset": str(dataset_dir), "split": ds.split if is_beir else None,
               "task": task, "questions": len(items),
               "off_topic": {"dataset": str(off_topic), "items": len(foreign)} if off_topic else None,
               "index": str(index_path), "systems": {s: SYSTEMS[s] for s in systems}, "metrics": table,
               "research": settings.research.model_dump(), "wall_seconds": round(time.perf_counter() - started, 1),
               "training": {"folds": train_folds, "mode": train, "scorers": scorers} if scorers else None,
               "paired": {"baseline": systems[0], "systems": paired}, "environment": env}
    folder.write_results(results, evidence_markdown(results))
    return folder, results


def gathered(researcher: Researcher, text: str) -> tuple[list[Evidence], bool, float]:
    """The evidence the writer would read, whether the writer would be called at all, and the figure that
    decides it (Researcher.decision_figure)."""
    s = researcher.settings
    evidence = researcher.gatherer.gather(text, s, ignore, time.perf_counter()).evidence
    writes = bool(evidence) and researcher.answerable(evidence, s)[0]
    return evidence, writes, float(researcher.decision_figure(evidence))


def score_claim(evidence: dict[str, Any], gold: dict[str, list[str]],
                shown: list[dict[str, str]]) -> dict[str, Any]:
    """How the shown sentences ({doc_source, quote}, in the writer's order) cover a claim's gold rationale,
    matched as report citations are (sentence_hits)."""
    total, found, _, _ = sentence_hits(shown, evidence, gold)
    first = next((i for i, one in enumerate(shown) if sentence_hits([one], evidence, gold)[3]), None)
    docs = list(dict.fromkeys(BeirDataset.doc_id(one["doc_source"]) for one in shown))
    return {"gold_sentences": total, "gold_sentences_shown": found,
            "first_gold_rank": None if first is None else first + 1,
            "first_document_gold": bool(docs) and docs[0] in evidence,
            "documents": len(docs), "gold_documents": sum(1 for d in docs if d in evidence)}


def _score_question(ds: SquadWikiDataset, qid: str, evidence: list[Evidence]) -> dict[str, Any]:
    q = next(q for q in ds.questions if q.id == qid)
    answers = [norm(a) for a in q.answers if norm(a)]
    where = next((i for i, ev in enumerate(evidence) if any(a in norm(ev.text) for a in answers)), None)
    return {"answerable": q.answerable, "answer_rank": None if where is None else where + 1}


#: The quality metrics a paired comparison reads (counts and seconds are not what a default is chosen by).
PAIRED_CLAIMS = ["rationale_recall", "first_sentence_gold", "rationale_mrr", "first_document_gold",
                 "document_precision", "declined_before_writing"]
#: The aim's operating point: the share of answerable questions a decline may cost.
DECLINE_BUDGET = 0.10
DECLINABLE = f"declinable_at_{DECLINE_BUDGET:.2f}"
PAIRED_QUESTIONS = ["answer_shown", "answer_first", "declined_unanswerable", "declined_answerable",
                    "answerability_auc", DECLINABLE]


def aggregate_claims(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Recall of the rationale in the evidence, where its first sentence stands, and the documents shown."""
    n = max(len(rows), 1)
    docs = sum(r["documents"] for r in rows)
    return {"claims": len(rows),
            "rationale_recall": sum(r["gold_sentences_shown"] for r in rows) / max(
                sum(r["gold_sentences"] for r in rows), 1),
            "first_sentence_gold": sum(1 for r in rows if r["first_gold_rank"] == 1) / n,
            "rationale_mrr": sum(1 / r["first_gold_rank"] for r in rows if r["first_gold_rank"]) / n,
            "first_document_gold": sum(1 for r in rows if r["first_document_gold"]) / n,
            "document_precision": sum(r["gold_documents"] for r in rows) / docs if docs else 0.0,
            "sentences_mean": sum(r["sentences"] for r in rows) / n,
            "declined_before_writing": sum(1 for r in rows if not r["writes"]) / n,
            "seconds_p50": percentiles([r["seconds"] for r in rows])["p50"]}


def _aggregate_questions(rows: list[dict[str, Any]]) -> dict[str, float]:
    yes = [r for r in rows if r["answerable"]]
    no = [r for r in rows if not r["answerable"]]
    return {"answerable": len(yes), "unanswerable": len(no),
            "answer_shown": sum(1 for r in yes if r["answer_rank"]) / max(len(yes), 1),
            "answer_first": sum(1 for r in yes if r["answer_rank"] == 1) / max(len(yes), 1),
            "declined_unanswerable": sum(1 for r in no if not r["writes"]) / max(len(no), 1),
            "declined_answerable": sum(1 for r in yes if not r["writes"]) / max(len(yes), 1),
            # Whatever the cut-off: how well the deciding figure puts answerable questions above the others.
            "answerability_auc": auc(np.array([r["decision_score"] for r in rows]),
                                     np.array([1.0 if r["answerable"] else 0.0 for r in rows])),
            DECLINABLE: declinable([r["decision_score"] for r in yes], [r["decision_score"] for r in no]),
            "seconds_p50": percentiles([r["seconds"] for r in rows])["p50"]}


def declinable(answerable: list[float], unanswerable: list[float], budget: float = DECLINE_BUDGET) -> float | None:
    """The share of unanswerable questions scoring below the highest cut that declines at most `budget` of the
    answerable ones: what the deciding figure could reach at the aim's operating point if the cut were chosen on
    these very questions, so an upper bound for any cut set beforehand."""
    if not answerable or not unanswerable:
        return None
    ranked = sorted(answerable)
    allowed = int(budget * len(ranked))  # answerable questions the cut may decline
    # declining every score strictly below the (allowed+1)-th lowest answerable score declines `allowed` of them
    # at most (fewer when it ties with the ones below it)
    cut = ranked[allowed]
    return sum(1 for x in unanswerable if x < cut) / len(unanswerable)


def evidence_markdown(results: dict[str, Any]) -> str:
    metrics = results["metrics"]
    cols = list(dict.fromkeys(c for m in metrics.values() for c in m))
    lines = [f"# Evidence: {results['dataset']} ({results['questions']} {results['task']} items, no writer)", "",
             "| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | " + " | ".join(
            "–" if m.get(c) is None else f"{m[c]:.3f}" if isinstance(m[c], float) else str(m[c]) for c in cols) + " |")
    lines += ["", *[f"- **{s}**: {d}" for s, d in results["systems"].items()], "",
              "declined_before_writing: the research loop found nothing citable and would not call the writer "
              "(a writer may still decline what is shown to it, which this run does not ask). answerability_auc: "
              "how well the figure that decides it (the trained scorer's answerability, or without one the best "
              "sentence's cosine) ranks answerable questions above unanswerable ones, whatever the cut-off. "
              f"{DECLINABLE}: the share of unanswerable questions that figure could decline while declining "
              f"at most {DECLINE_BUDGET:.2f} of the answerable ones, with the cut chosen on these very questions "
              "(an upper bound for a cut set beforehand).", ""]
    lines += training_lines(results.get("training"))
    paired = results.get("paired") or {}
    lines += paired_lines(paired.get("systems") or {}, paired.get("baseline", ""))
    lines += [f"Whole run: {results['wall_seconds']} s; commit {results['environment']['git_commit']}.", ""]
    return "\n".join(lines)
