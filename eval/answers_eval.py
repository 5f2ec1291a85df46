"""`citewise eval answers`: answer-hit@k of retrieved chunks on squad-wiki, per system, in one run.

With several context modes, one cached index is built per mode and systems are reported as
`system/mode`; `NAME@N` runs a slow system on the first N answerable questions only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from generate.engine import Engine
from ingest.core.settings import Settings
from eval.charts import latency_chart, recall_curve_chart
from eval.datasets import SquadWikiDataset
from eval.environment import environment
from eval.fold_scorers import FoldScorers, TrainMode, check_train_mode, training_lines
from eval.index_cache import prepared_index
from eval.metrics import answer_hit, percentiles
from eval.reembedded import check_reembedded, described, searched_as
from eval.run_folder import RunFolder
from ingest.core.errors import ConfigError
from ingest.core.progress import NullProgress, Progress
from retrieval.systems import build_system, describe, split_limit, timed_run

KS = (1, 3, 5, 10, 20)


def run_answers(dataset_dir: Path, settings: Settings, systems: list[str], limit: int | None = None,
                out_root: Path = Path("eval-runs"), resume: Path | None = None,
                progress: Progress | None = None, context_modes: list[str] | None = None,
                train_folds: int | None = None, train: TrainMode | None = None) -> tuple[RunFolder, dict[str, Any]]:
    """Systems naming `trained` (fused+trained) use a scorer this run trains, never the index's own: per fold of
    the questions (`train_folds`: a fold's questions ranked by the scorer trained on the others' labels) or on
    synthetic questions about the articles alone (`train`)."""
    check_train_mode(train_folds, train)
    if train_folds and context_modes and len(context_modes) > 1:
        raise ConfigError("--train-folds trains on one index: give one context mode")
    check_reembedded([split_limit(spec)[0] for spec in systems], train_folds, train)
    progress = progress or NullProgress()
    started = time.perf_counter()
    env = environment(settings)  # the commit and packages the run starts with, not ends with
    ds = SquadWikiDataset.load(dataset_dir, limit)
    # Folds over every question of the dataset (as `eval reports` splits them), whatever --limit asks.
    fold_ids = [q.id for q in SquadWikiDataset.load(dataset_dir).questions]
    commit = env["git_commit"]
    folder = RunFolder(resume, commit) if resume else RunFolder.new(out_root, "answers", ds.name, commit)
    answerable = [q for q in ds.questions if q.answerable]
    done = folder.done()
    specs = [split_limit(s) for s in systems]
    ids: dict[str, set[str]] = {}
    descriptions: dict[str, str] = {}
    indexes: dict[str, Any] = {}
    trained: dict[str, Any] = {}
    for mode in context_modes or [settings.ingest.context_mode]:
        mode_settings = settings.model_copy(deep=True)
        # "llm+document" is llm mode at document scope (the mode string such an index records)
        mode_settings.ingest.context_mode = mode.split("+")[0]  # type: ignore[assignment]
        if context_modes and mode.startswith("llm"):
            mode_settings.ingest.context_scope = "document" if mode == "llm+document" else "chunk"
        comps = Engine(mode_settings)
        t0 = time.perf_counter()
        index_path = prepared_index(comps, out_root, f"squad-{ds.name}-{ds.fingerprint()}",
                                    lambda ix: comps.ingestor(ix, progress).ingest_paths([ds.docs_dir]))
        indexes[mode] = {"path": str(index_path), "prepare_seconds": round(time.perf_counter() - t0, 1),
                         "build": _build_record(index_path)}
        with comps.open_index(index_path) as index:
            factory = comps.pipeline_factory(index)
            scorers = FoldScorers(comps, index, mode_settings, folder.path / "scorers" / mode, progress)
            for name, cap in specs:
                label = f"{name}/{mode}" if context_modes else name
                descriptions[label] = described(name, describe, bool(train_folds or train)) + (f", context mode {mode}" if context_modes else "")
                mine = answerable[:cap] if cap else answerable
                ids[label] = {q.id for q in mine}
                by_id = {q.id: q for q in mine if (label, q.id) not in done}
                progress.stage(label, len(mine))
                progress.advance(label, len(mine) - len(by_id))
                for factory_for, qids in scorers.parts(name, list(by_id), factory, fold_ids, train_folds, train,
                                                       dataset_dir, "train"):
                    retrieval_name, search = searched_as(name, mode_settings.search)
                    system = build_system(retrieval_name, factory_for, search, max(search.candidates, max(KS)))
                    for qid in qids:
                        q = by_id[qid]
                        ranked, seconds, _ = timed_run(system, q.question, max(KS))
                        rows = index.chunks([cid for cid, _ in ranked])
                        texts = [rows[cid].text for cid, _ in ranked if cid in rows]
                        first = next((i + 1 for i, t in enumerate(texts) if answer_hit([t], q.answers)), None)
                        folder.append({"system": label, "query_id": q.id, "first_hit_rank": first,
                                       "seconds": seconds})
                        progress.advance(label)
            trained.update({f"{mode}/{k}" if context_modes else k: v for k, v in scorers.described().items()})
    labels = list(ids)
    rows_all = [r for r in folder.rows() if r["system"] in ids]
    table = _metrics(rows_all, ids)
    smallest = min(ids.values(), key=len)
    results: dict[str, Any] = {
        "kind": "answers", "dataset": str(dataset_dir), "questions_answerable": len(answerable),
        "questions_unanswerable": len(ds.questions) - len(answerable), "indexes": indexes,
        "systems": descriptions, "metrics": table,
        "wall_seconds": round(time.perf_counter() - started, 1), "environment": env,
        "training": {"folds": train_folds, "mode": train, "scorers": trained} if trained else None,
    }
    if len(smallest) < len(answerable):
        results["subset"] = {"queries": len(smallest), "metrics": _metrics(rows_all, {n: smallest for n in ids})}
    curve = {s: {k: table[s][f"answer_hit@{k}"] for k in KS} for s in labels}
    charts = [recall_curve_chart(folder.path, curve, "answer_hit_at_k.png", "answer-hit@k"),
              latency_chart(folder.path, {s: [r["seconds"] for r in rows_all if r["system"] == s] for s in labels})]
    results["charts"] = [c.name for c in charts]
    folder.write_results(results, answers_report(results))
    return folder, results


def _metrics(rows: list[dict[str, Any]], ids: dict[str, set[str]]) -> dict[str, dict[str, float]]:
    """answer-hit@k, fail@20 and latency per system over the questions it ran on (`ids`)."""
    table: dict[str, dict[str, float]] = {}
    for name, wanted in ids.items():
        mine = [r for r in rows if r["system"] == name and r["query_id"] in wanted]
        n = max(len(mine), 1)
        m = {f"answer_hit@{k}": sum(1 for r in mine if r["first_hit_rank"] and r["first_hit_rank"] <= k) / n
             for k in KS}
        m["fail@20"] = 1.0 - m["answer_hit@20"]
        lat = percentiles([r["seconds"] for r in mine])
        m["latency_p50_ms"], m["latency_p95_ms"] = lat["p50"] * 1000, lat["p95"] * 1000
        m["queries"] = len(mine)
        table[name] = m
    return table


def _build_record(index_path: Path) -> dict[str, Any]:
    """How the cached index was built (its ingest summary: seconds per stage, contexts, failures)."""
    marker = index_path / "eval-complete"
    if not marker.exists():
        return {}
    try:
        data = json.loads(marker.read_text() or "{}")
    except json.JSONDecodeError:
        return {}
    return {k: data.get(k) for k in ("seconds", "chunks_added", "contexts_generated", "contexts_cached",
                                     "contexts_skipped", "context_failed")}


def answers_report(results: dict[str, Any]) -> str:
    lines = [f"# Answer hits: {results['dataset']} ({results['questions_answerable']} answerable questions)", "",
             *_table(results["metrics"]), "", *training_lines(results.get("training"))]
    if "subset" in results:
        lines += ["", f"Every system on the first {results['subset']['queries']} questions, the subset the capped "
                      "systems ran on:", "", *_table(results["subset"]["metrics"])]
    lines += [""]
    for mode, info in results.get("indexes", {}).items():
        build = info.get("build") or {}
        failed = len(build.get("context_failed") or [])
        lines.append(f"- index for context mode `{mode}`: {build.get('chunks_added')} chunks, build seconds per "
                     f"stage {build.get('seconds')}, contexts generated {build.get('contexts_generated')}, "
                     f"context failures {failed}; prepared in {info['prepare_seconds']} s this run")
    lines += ["", f"Whole run: {results['wall_seconds']} s; commit {results['environment']['git_commit']}.", ""]
    lines += [f"![{c}]({c})" for c in results.get("charts", [])]
    return "\n".join(lines) + "\n"


def _table(metrics: dict[str, dict[str, float]]) -> list[str]:
    cols = ["queries"] + [f"answer_hit@{k}" for k in KS] + ["fail@20", "latency_p50_ms", "latency_p95_ms"]
    lines = ["| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | " + " | ".join(
            str(int(m[c])) if c == "queries" else f"{m[c]:.1f}" if c.startswith("latency") else f"{m[c]:.4f}"
            for c in cols) + " |")
    return lines
