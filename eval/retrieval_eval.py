"""`citewise eval retrieval`: every query through each named system in one run, on a BEIR dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from generate.engine import Engine
from ingest.core.settings import Settings
from eval.charts import latency_chart, recall_curve_chart
from eval.datasets import BeirDataset
from eval.environment import environment
from eval.index_cache import prepared_index
from eval.metrics import RETRIEVAL_METRICS, ir_metrics, percentiles
from eval.reembedded import check_reembedded, described, searched_as
from eval.run_folder import RunFolder
from eval.fold_scorers import FoldScorers, TrainMode, check_train_mode, training_lines
from ingest.core.progress import NullProgress, Progress
from retrieval.systems import build_system, describe, split_limit, timed_run

DOC_DEPTH = 100  # documents ranked per query (recall@100 needs 100)
CHUNK_DEPTH = 300  # chunks fetched to fill DOC_DEPTH documents when documents have several chunks


def run_retrieval(dataset_dir: Path, settings: Settings, systems: list[str], split: str = "train",
                  limit: int | None = None, out_root: Path = Path("eval-runs"), resume: Path | None = None,
                  progress: Progress | None = None, train_folds: int | None = None,
                  train: TrainMode | None = None) -> tuple[RunFolder, dict[str, Any]]:
    """Systems naming `trained` use a scorer this run trains: per fold (`train_folds`, each fold's queries
    ranked by the scorer trained on the other folds) or from synthetic data (`train`); never the index's own."""
    progress = progress or NullProgress()
    check_train_mode(train_folds, train)
    check_reembedded([split_limit(spec)[0] for spec in systems], train_folds, train)
    started = time.perf_counter()
    env = environment(settings)  # the commit and packages the run starts with, not ends with
    ds = BeirDataset.load(dataset_dir, split, limit)
    comps = Engine(settings)
    commit = env["git_commit"]
    folder = RunFolder(resume, commit) if resume else RunFolder.new(out_root, "retrieval", ds.name, commit)
    docs = ds.documents()
    index_path = prepared_index(comps, out_root, f"beir-{ds.name}-{ds.fingerprint()}",
                                lambda ix: comps.ingestor(ix, progress).ingest_documents(docs))
    index_seconds = time.perf_counter() - started
    done = folder.done()
    subsets: dict[str, list[str]] = {}
    scorers: FoldScorers | None = None
    with comps.open_index(index_path) as index:
        factory = comps.pipeline_factory(index)
        scorers = FoldScorers(comps, index, settings, folder.path / "scorers", progress)
        for spec in systems:
            name, cap = split_limit(spec)
            subsets[name] = list(ds.queries)[:cap] if cap else list(ds.queries)
            todo = [q for q in subsets[name] if (name, q) not in done]
            progress.stage(name, len(subsets[name]))
            progress.advance(name, len(subsets[name]) - len(todo))
            for factory_for, queries in scorers.parts(name, todo, factory, list(ds.queries), train_folds, train,
                                                      dataset_dir, split):
                retrieval_name, search = searched_as(name, settings.search)
                system = build_system(retrieval_name, factory_for, search, max(search.candidates, CHUNK_DEPTH))
                for qid in queries:
                    ranked, seconds, cpu = timed_run(system, ds.queries[qid], CHUNK_DEPTH)
                    doc_ids = _documents(index, ranked)
                    folder.append({"system": name, "query_id": qid, "docs": doc_ids, "seconds": seconds,
                                   "cpu_seconds": cpu})
                    progress.advance(name)
    rows = list(folder.rows())
    names = list(subsets)
    results = {"systems": {s: described(s, describe, bool(train_folds or train)) for s in names},
               **_summarise(ds, names, rows, subsets)}
    smallest = min(subsets.values(), key=len)
    if len(smallest) < len(ds.queries):
        sub = BeirDataset(ds.name, ds.path, ds.split, ds.corpus, {q: ds.queries[q] for q in smallest},
                          {q: ds.qrels[q] for q in smallest})
        results["subset"] = {"queries": len(smallest),
                             "metrics": _summarise(sub, names, rows, {n: smallest for n in names})["metrics"]}
    trained = scorers.described() if scorers else {}
    results.update({"kind": "retrieval", "dataset": str(dataset_dir), "split": split, "queries": len(ds.queries),
                    "corpus_documents": len(ds.corpus), "index": str(index_path),
                    "index_seconds": round(index_seconds, 1),
                    "wall_seconds": round(time.perf_counter() - started, 1),
                    "training": {"folds": train_folds, "mode": train, "scorers": trained} if trained else None,
                    "environment": env})
    charts = [recall_curve_chart(folder.path, results["recall_curve"]),
              latency_chart(folder.path, {s: [r["seconds"] for r in rows if r["system"] == s] for s in names})]
    results["charts"] = [c.name for c in charts]
    folder.write_results(results, retrieval_report(results))
    return folder, results


def _documents(index: Any, ranked: list[tuple[int, float]]) -> list[str]:
    """Chunk ranking -> document ranking (a document ranks where its best chunk does)."""
    rows = index.chunks([cid for cid, _ in ranked])
    seen: list[str] = []
    known: set[str] = set()
    for cid, _ in ranked:
        row = rows.get(cid)
        if row is None:
            continue
        doc = BeirDataset.doc_id(row.source)
        if doc not in known:
            known.add(doc)
            seen.append(doc)
            if len(seen) == DOC_DEPTH:
                break
    return seen


def _summarise(ds: BeirDataset, systems: list[str], rows: list[dict[str, Any]],
               subsets: dict[str, list[str]]) -> dict[str, Any]:
    """Metrics per system over the queries it ran on (`subsets`), which the table reports beside them."""
    table: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    curve: dict[str, dict[int, float]] = {}
    ks = (1, 2, 3, 5, 10, 20, 30, 50, 100)
    for name in systems:
        wanted = set(subsets[name]) & set(ds.queries)
        mine = [r for r in rows if r["system"] == name and r["query_id"] in wanted]
        run = {r["query_id"]: r["docs"] for r in mine}
        means, pq = ir_metrics({q: ds.qrels[q] for q in run}, run)
        lat = percentiles([r["seconds"] for r in mine])
        means["fail@20"] = 1.0 - means["recall@20"]
        means["latency_p50_ms"] = lat["p50"] * 1000
        means["latency_p95_ms"] = lat["p95"] * 1000
        # CPU seconds of this process (all its threads): the cost without other processes' contention.
        cpu_rows = [r["cpu_seconds"] for r in mine if "cpu_seconds" in r]
        cpu = percentiles(cpu_rows) if cpu_rows else {"p50": float("nan"), "p95": float("nan")}
        means["cpu_p50_ms"], means["cpu_p95_ms"] = cpu["p50"] * 1000, cpu["p95"] * 1000  # nan: rows predate it
        means["queries"] = len(run)
        table[name] = means
        per_query[name] = {q: {m: pq[m][q] for m in RETRIEVAL_METRICS} for q in run}
        curve_means, _ = ir_metrics(ds.qrels, run, tuple(f"recall@{k}" for k in ks))
        curve[name] = {k: curve_means[f"recall@{k}"] for k in ks}
    return {"metrics": table, "per_query": per_query, "recall_curve": curve}


def retrieval_report(results: dict[str, Any]) -> str:
    lines = [f"# Retrieval: {results['dataset']} ({results['split']} split, {results['queries']} queries, "
             f"{results['corpus_documents']} documents)", "", *_table(results["metrics"])]
    if "subset" in results:
        lines += ["", f"Every system on the first {results['subset']['queries']} queries (by id), the subset "
                      "the capped systems ran on:", "", *_table(results["subset"]["metrics"])]
    lines += ["", *[f"- `{k}`: {v}" for k, v in results["systems"].items()], "",
              *training_lines(results.get("training")),
              f"Index build/reuse: {results['index_seconds']} s; whole run: {results['wall_seconds']} s; "
              f"commit {results['environment']['git_commit']}.", ""]
    lines += [f"![{c}]({c})" for c in results.get("charts", [])]
    return "\n".join(lines) + "\n"


def _table(metrics: dict[str, dict[str, float]]) -> list[str]:
    cols = ["queries", "ndcg@10", "recall@5", "recall@20", "recall@100", "mrr@10", "fail@20", "latency_p50_ms",
            "latency_p95_ms", "cpu_p50_ms", "cpu_p95_ms"]
    lines = ["| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in metrics.items():
        cells = [str(int(m.get(c, 0))) if c == "queries" else "-" if m.get(c, 0) != m.get(c, 0)
                 else f"{m[c]:.1f}" if c.startswith(("latency", "cpu"))
                 else f"{m[c]:.4f}" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
