"""`citewise eval ...`: benchmarks and quality runs on datasets given by path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import typer
from rich.console import Console

from ingest.core.settings.overrides import check_range, override
from ingest.console.text import line

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate quality and speed on local datasets.")
# Nothing printed here is markup: figures, dataset paths and report files are shown as they are.
out = Console(soft_wrap=True, markup=False, emoji=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)


@eval_app.command("bench-ingest")
def bench_ingest_cmd(
    folder: Path = typer.Argument(..., help="Folder of documents to ingest into a fresh index."),
    baseline_sample: int = typer.Option(1000, min=0, help="Chunks re-embedded with the plain path for the ratio "
                                        "(0: skip that comparison)."),
    rounds: int = typer.Option(3, min=1, help="Alternating plain/citewise rounds on that sample; medians reported."),
    context_mode: str = typer.Option("", "--context-mode", help="none | structure | llm (default: the setting)."),
    docs: int = typer.Option(0, "--docs", min=0, help="Only this many documents, spread evenly over the folder in "
                             "its stable order (the same ones every run); 0: all."),
    executor: str = typer.Option("", "--executor", help="local | ray (default: the setting ingest.executor)."),
    ray_address: str = typer.Option("", "--ray-address", help="The Ray cluster's head HOST:PORT or auto "
                                    "(implies --executor ray; default: the setting)."),
    ray_workers: int = typer.Option(-1, "--ray-workers", help="Ray worker actors (0: one per CPU; default: the "
                                    "setting)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Documents/s, chunks/s, seconds per stage and peak RSS, with the plain embedding path beside it."""
    from ingest.core.settings import load_settings
    from eval.bench_ingest import bench_ingest

    settings = load_settings()
    if context_mode:
        override(settings, "ingest.context_mode", context_mode, "--context-mode")
    if ray_address:
        override(settings, "ingest.ray_address", ray_address, "--ray-address")
        executor = executor or "ray"
    if executor:
        override(settings, "ingest.executor", executor, "--executor")
    if ray_workers >= 0:
        override(settings, "ingest.ray_workers", ray_workers, "--ray-workers")
    if quiet or as_json:
        result = bench_ingest(folder, settings, None, baseline_sample, rounds, docs)
    else:
        from ingest.console.progress_bars import RichProgress

        with RichProgress(err) as progress:
            result = bench_ingest(folder, settings, progress, baseline_sample, rounds, docs)
    if as_json:
        out.print_json(json.dumps(result))
        return
    b = result["baseline"]
    sampled = f" ({len(result['sampled_documents'])} sampled)" if result["sampled_documents"] else ""
    out.print(line(f"ingest {result['folder']}{sampled}: {result['documents']} documents ({result['failed']} failed), "
              f"{result['chunks']} chunks in {result['wall_seconds']} s"))
    out.print(f"  documents/s {result['documents_per_s']}   chunks/s {result['chunks_per_s']}   "
              f"peak RSS {result['peak_rss_mb']} MB (+ each of {result['parse_workers']} parser workers up to "
              f"{result['peak_rss_parser_worker_mb']} MB)", highlight=False)
    out.print("  seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds_per_stage"].items()))
    out.print(f"  context mode {result['context_mode']}: {result['contexts_generated']} contexts generated, "
              f"{len(result['context_failed'])} documents fell back to structure", highlight=False)
    out.print(f"  embedding ({result['backend']}): {result['embed_chunks_per_s']} chunks/s during ingest", highlight=False)
    if result["prepared_by"]:
        nodes = {w.split(":")[0] for w in result["prepared_by"]}
        out.print(f"  executor ray: {len(result['prepared_by'])} workers on {len(nodes)} nodes, started in "
                  f"{result['executor_start_seconds']} s (not in the timing)", highlight=False)
    if b:
        out.print(f"  same {b['sample_chunks']} chunks: plain sentence-transformers {b['plain_chunks_per_s']} chunks/s, "
                  f"citewise {b['optimized_chunks_per_s_same_sample']} chunks/s -> {b['speedup']}x "
                  f"(median of {b['rounds']} alternating rounds: {', '.join(f'{r}x' for r in b['speedup_per_round'])}); "
                  f"cosine to plain min {b['min_cosine_vs_plain']} mean {b['mean_cosine_vs_plain']}", highlight=False)


@eval_app.command("bench-search")
def bench_search_cmd(
    synthetic: int = typer.Option(..., "--synthetic", min=100, help="Benchmark N synthetic embedding-like vectors."),
    dim: int = typer.Option(384, "--dim", min=2, help="Vector dimensions."),
    queries: int = typer.Option(1000, "--queries", min=10, help="Held-out queries (never in the index)."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="Neighbours per query (recall@k)."),
    index_type: str = typer.Option("auto", "--type", help="auto (what index.dense_index=auto picks) | flat | hnsw | ivfpq (sizing only: "
                                  "citewise does not serve IVF-PQ; its bytes per vector and recall say when one would be needed)"),
    exact_queries: int = typer.Option(200, "--exact-queries", min=10, help="Queries timed on exact search."),
    ef_search: str = typer.Option("", "--ef-search", help="Comma-separated HNSW beam widths also measured "
                                  "on the same graph (the setting index.hnsw_ef_search gives the headline)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
) -> None:
    """Build time, memory, recall@k against exact search and p50/p95 single-query latency, exact beside it."""
    from ingest.core.settings import load_settings
    from eval.bench_search import bench_search
    from ingest.core.errors import InvalidRequestError

    if index_type not in ("auto", "flat", "hnsw", "ivfpq"):
        raise InvalidRequestError(f"--type must be auto, flat, hnsw or ivfpq, not {index_type!r}")
    settings = load_settings()
    try:
        sweep = tuple(int(v) for v in ef_search.split(",") if v.strip())
    except ValueError:
        raise InvalidRequestError(f"--ef-search takes comma-separated integers, not {ef_search!r}") from None
    r = bench_search(synthetic, settings.index, settings.models.threads, dim, queries, k, index_type,
                     min(exact_queries, queries), ef_sweep=sweep)
    if as_json:
        out.print_json(json.dumps(r))
        return
    spec = ", ".join(f"{key}={v}" for key, v in r["index"].items())
    lat, ex, kk = r["latency_ms"], r["exact_latency_ms"], r["k"]
    out.print(f"{r['vectors']} x {r['dim']}-d vectors: {spec} (chosen by {r['chosen_by']}; "
              f"exact_below={r['exact_below']})", highlight=False)
    out.print(f"  data: {r['data']} Query neighbour cosine: top1 {r['query_neighbour_cosine']['top1']}, "
              f"top{r['k']} {r['query_neighbour_cosine'][f'top{kk}']}.", highlight=False)
    out.print(f"  build {r['build_seconds']} s ({r['build_vectors_per_s']} vectors/s); index {r['index_bytes'] / 2**20:.0f} MB "
              f"on disk ({r['vectors_per_gb']:,} vectors per GB), +{r['index_rss_mb']} MB RSS; process RSS {r['rss_mb']} MB, peak {r['peak_rss_mb']} MB",
              highlight=False)
    out.print(f"  recall@{r['k']} vs exact: {r[f'recall_at_{kk}']} over {r['queries']} held-out queries",
              highlight=False)
    out.print(f"  single-query latency: p50 {lat['p50']} ms, p95 {lat['p95']} ms   "
              f"(exact flat: p50 {ex['p50']} ms, p95 {ex['p95']} ms over {ex['queries']} queries)", highlight=False)
    for row in r["ef_search_sweep"]:
        out.print(f"  ef_search {row['ef_search']}: recall@{kk} {row[f'recall_at_{kk}']}, p50 {row['p50']} ms, "
                  f"p95 {row['p95']} ms", highlight=False)
    la = r["load_average"]
    out.print(f"  machine load average {la['start']} at start, {la['end']} at end, on {la['cores']} cores "
              "(other processes inflate the tail latencies)", highlight=False)


@eval_app.command("bench-context")
def bench_context_cmd(
    folder: Path = typer.Argument(..., help="Folder of documents (the first N by path are used)."),
    docs: int = typer.Option(3, "--docs", help="How many documents."),
    max_chunks: int = typer.Option(8, "--max-chunks", help="At most this many chunks per document."),
    out_dir: Path = typer.Option(Path("eval-runs"), "--out", help="Where the run folder goes."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """llm context throughput, step by step: whole document per call, bounded window, window + KV reuse;
    and one call per document (context_scope=document) beside them."""
    from ingest.core.settings import load_settings
    from eval.bench_context import bench_context
    from eval.run_folder import RunFolder

    check_range("--docs", docs, ge=1)
    check_range("--max-chunks", max_chunks, ge=1)
    run = RunFolder.new(out_dir, "bench-context", folder.name)
    with _progress(quiet) as progress:
        result = bench_context(folder, load_settings(), docs, max_chunks, progress, run.append)
    lines = [f"# llm context throughput: {result['documents']} documents, {result['chunks']} chunks of {folder}", "",
             "| path | seconds | chunks/s | prompt tokens | of which cached | generated | prefill s | decode s |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("naive", "window", "optimized", "document"):
        r = result[name]
        lines.append(f"| {name} | {r['seconds']} | {r['chunks_per_s']} | {r['prompt_tokens']} | "
                     f"{r['cached_prompt_tokens']} | {r['generated_tokens']} | {r['prefill_s']} | {r['decode_s']} |")
    lines += ["", f"Speedup over naive: window {result['speedup_window']}x, optimized {result['speedup']}x, "
              f"document scope {result['speedup_document']}x; "
              f"window and optimized wrote identical contexts for "
              f"{result['identical_contexts_window_vs_optimized']}/{result['chunks']} chunks.",
              "", "- naive: whole document in every prompt (up to the context window), KV cache dropped per call",
              "- window: bounded window (document opening, text before the chunk, the chunk), KV cache dropped per call",
              "- optimized: bounded window with the document prefix's KV state reused (context_mode=llm)",
              "- document: one sentence per document from its opening, shared by its chunks (context_scope=document)",
              "", "Examples (optimized):", *[f"- {e!r}" for e in result["examples"]],
              "", "Examples (document scope):", *[f"- {e!r}" for e in result["examples_document"]],
              "", "Examples (naive):", *[f"- {e!r}" for e in result["examples_naive"]], ""]
    run.write_results(result, "\n".join(lines))
    _show(run.path)


@eval_app.command("bench-writer")
def bench_writer_cmd(
    index: Path = typer.Option(..., "--index", help="Index whose search and evidence make the writer prompt."),
    question: str = typer.Option(..., "--question", help="The question the prompt is built for."),
    rounds: int = typer.Option(2, "--rounds", help="Timings per setting (the median is reported)."),
    max_tokens: int = typer.Option(48, "--max-tokens", help="Tokens decoded per timing."),
    vary: str = typer.Option("all", "--vary", help="Which knobs to change from the shipped setting, one at a time: "
                                                   "all, kernels, batch or threads (the shipped setting always runs, "
                                                   "as the baseline)."),
    out_dir: Path = typer.Option(Path("eval-runs"), "--out", help="Where the run folder goes."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """The writer's prefill and decode tokens/s under each llama.cpp n_batch, thread and kernel setting, against the
    shipped one in the same process."""
    from ingest.core.settings import load_settings
    from eval.bench_writer import Vary, bench_writer, writer_report
    from eval.run_folder import RunFolder

    check_range("--rounds", rounds, ge=1)
    check_range("--max-tokens", max_tokens, ge=2)
    if vary not in get_args(Vary):
        from ingest.core.errors import InvalidRequestError

        raise InvalidRequestError(f"--vary must be one of {', '.join(get_args(Vary))}, not {vary!r}")
    result = bench_writer(load_settings(), index, question, rounds, max_tokens, vary)  # type: ignore[arg-type]
    run = RunFolder.new(out_dir, "bench-writer", index.name)
    run.write_results(result, writer_report(result))
    if as_json:
        print(json.dumps(result, indent=1))
    else:
        _show(run.path)


@eval_app.command("bench-training")
def bench_training_cmd(
    index: Path = typer.Option(..., "--index", help="Index whose chunks the questions are written about (copied "
                                                    "first; the index itself is never written)."),
    chunks: int = typer.Option(20, "--chunks", help="Chunks sampled, as `citewise train --synthetic` samples them."),
    model_server: str = typer.Option(None, "--model-server", help="OpenAI API root of a model server serving the "
                                     "data-preparation model (train.data_model): the same chunks through it."),
    out_dir: Path = typer.Option(Path("eval-runs"), "--out", help="Where the run folder goes."),
) -> None:
    """Synthetic training items per second through the embedded data-preparation model, and through a model
    server, with what was kept and dropped."""
    import tempfile

    from ingest.core.settings import load_settings
    from eval.bench_training_data import bench_backends, training_data_report
    from eval.run_folder import RunFolder

    check_range("--chunks", chunks, ge=1)
    with tempfile.TemporaryDirectory(prefix="bench-training-") as work:
        result = bench_backends(index, load_settings(), chunks, Path(work), model_server)
    run = RunFolder.new(out_dir, "bench-training", index.name)
    run.write_results({**result, "kind": "bench-training"}, training_data_report(result))
    _show(run.path)


@eval_app.command("bench-api")
def bench_api_cmd(
    dataset: Path = typer.Option(..., "--dataset", help="BEIR-layout folder (SciFact): its corpus and claims."),
    split: str = typer.Option("train", "--split", help="qrels/<split>.tsv whose claims are asked."),
    reports: int = typer.Option(5, "--reports", min=1, help="Claims checked by each path."),
    searches: int = typer.Option(400, "--searches", min=10, help="Search queries per path."),
    clients: int = typer.Option(8, "--clients", min=1, help="Concurrent HTTP clients for the search load."),
    out_dir: Path = typer.Option(Path("eval-runs"), "--out", help="Where run folders and cached indexes go."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """API overhead over the in-process report path, and /v1/search latency under concurrent clients."""
    from ingest.core.settings import load_settings
    from eval.bench_api import bench_api, bench_api_markdown
    from eval.run_folder import RunFolder

    run = RunFolder.new(out_dir, "bench-api", dataset.name)
    with _progress(quiet) as progress:
        result = bench_api(dataset, load_settings(), out_dir, reports, searches, clients, progress=progress,
                           log=run.append, split=split)
    run.write_results(result, bench_api_markdown(result))
    _show(run.path)


def _systems(value: str) -> list[str]:
    """Comma-separated names; `name@N` runs that system on the first N queries only (slow LLM systems)."""
    from eval.reembedded import PREFIX
    from retrieval.systems import SYSTEMS, split_limit, validate

    names = [s.strip() for s in value.split(",") if s.strip()]
    if not names:
        from ingest.core.errors import InvalidRequestError

        raise InvalidRequestError(f"no systems given; for example {', '.join(SYSTEMS)}")
    validate([split_limit(n)[0].removeprefix(PREFIX) for n in names])
    return names


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    import contextlib

    if quiet:
        return contextlib.nullcontext(None)
    from ingest.console.progress_bars import RichProgress

    return RichProgress(err)


def _show(run_dir: Path) -> None:
    out.print(line((run_dir / "report.md").read_text()))
    out.print(line(f"results: {run_dir}"))


def _limit(limit: int | None) -> int | None:
    """--limit 0 or below would silently mean every query (or slice from the end): refused instead."""
    if limit is not None:
        check_range("--limit", limit, ge=1)
    return limit


LimitOpt = typer.Option(None, "--limit", help="Only the first N queries (by id).")
DatasetOpt = typer.Option(..., "--dataset", help="SciFact (BEIR layout, claims) or squad-wiki folder.")
ItemsSplitOpt = typer.Option(None, "--split", help="qrels/<split>.tsv of a BEIR-layout dataset (default: train); a "
                                              "squad-wiki folder has no splits.")
OffTopicLimitOpt = typer.Option(25, "--off-topic-limit", min=1, help="Off-topic items asked (the first N).")
OffTopicSplitOpt = typer.Option(None, "--off-topic-split", help="qrels/<split>.tsv of a BEIR-layout --off-topic "
                                                                "dataset (default: train).")
OutOpt = typer.Option(Path("eval-runs"), "--out", help="Where run folders and cached indexes go.")
ResumeOpt = typer.Option(None, "--resume", help="Continue an interrupted run folder.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars.")
SplitOpt = typer.Option("train", "--split", help="qrels/<split>.tsv of a BEIR-layout dataset to evaluate.")


TrainFoldsOpt = typer.Option(None, "--train-folds", help="Trained systems (fused+trained, citewise-trained, citewise-reranked, citewise-scored-evidence, citewise-ranked-evidence, citewise-corroborated, citewise-reembedded, citewise-as-trained): "
                             "split the queries into K "
                             "folds, train a scorer on K-1 folds' labels, rank the held-out fold with it; "
                             "metrics pooled over the held-out folds.")
TrainOpt = typer.Option(None, "--train", help="synthetic: trained systems use a scorer trained on "
                        "questions the data-preparation model wrote about the corpus, no labels. "
                        "labels+synthetic (with --train-folds): each fold's scorer is trained on the other folds' "
                        "labels and those questions, written once per run.")


def _train_mode(value: str | None) -> str | None:
    from ingest.core.errors import InvalidRequestError

    if value is None:
        return None
    from eval.fold_scorers import TRAIN_MODES

    if value not in TRAIN_MODES:
        raise InvalidRequestError(f"--train must be one of {', '.join(TRAIN_MODES)}, not {value!r}")
    return value


@eval_app.command("retrieval")
def retrieval_cmd(
    dataset: Path = typer.Option(..., "--dataset", help="BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/)."),
    split: str = SplitOpt,
    limit: int = LimitOpt,
    systems: str = typer.Option("bm25,bm25-plain,dense,hybrid,fused", "--systems",
                                help="Comma-separated systems (see retrieval/systems.py), e.g. fused,fused+llm@100; "
                                     "NAME@N runs NAME on the first N queries only; reembedded+NAME runs NAME over "
                                     "the corpus re-embedded with the run's trained encoder (needs --train-folds "
                                     "or --train)."),
    out_dir: Path = OutOpt,
    resume: Path = ResumeOpt,
    train_folds: int = TrainFoldsOpt,
    train: str = TrainOpt,
    quiet: bool = QuietOpt,
) -> None:
    """nDCG@10, recall@5/20/100, MRR@10, fail@20 and latency per system, side by side in one run."""
    from ingest.core.settings import load_settings
    from eval.retrieval_eval import run_retrieval

    with _progress(quiet) as progress:
        folder, _ = run_retrieval(dataset, load_settings(), _systems(systems), split, _limit(limit), out_dir,
                                  resume, progress, train_folds, _train_mode(train))
    _show(folder.path)


@eval_app.command("answers")
def answers_cmd(
    dataset: Path = typer.Option(..., "--dataset", help="squad-wiki layout: docs/*.md and questions.jsonl."),
    limit: int = LimitOpt,
    systems: str = typer.Option("bm25,dense,hybrid,fused", "--systems",
                                help="Comma-separated systems; NAME@N runs NAME on the first N questions only; "
                                     "reembedded+NAME runs NAME over the corpus re-embedded with the run's trained "
                                     "encoder (needs --train-folds or --train)."),
    context_modes: str = typer.Option(
        "", "--context-modes", help="Comma-separated context modes (none,structure,llm,llm+document, the last "
                                    "being llm at context_scope=document): one cached index each, "
                                    "systems reported as system/mode. Default: the ingest.context_mode setting."),
    out_dir: Path = OutOpt,
    resume: Path = ResumeOpt,
    train_folds: int = TrainFoldsOpt,
    train: str = TrainOpt,
    quiet: bool = QuietOpt,
) -> None:
    """answer-hit@k (a retrieved chunk contains a gold answer) per system, with the system's own chunking."""
    from ingest.core.settings import load_settings
    from eval.answers_eval import run_answers

    modes = [m.strip() for m in context_modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("none", "structure", "llm", "llm+document")]
    if bad:
        from ingest.core.errors import InvalidRequestError

        raise InvalidRequestError(f"unknown context modes {bad}; choose from none, structure, llm, llm+document")
    with _progress(quiet) as progress:
        folder, _ = run_answers(dataset, load_settings(), _systems(systems), _limit(limit), out_dir, resume,
                                progress, modes or None, train_folds, _train_mode(train))
    _show(folder.path)


@eval_app.command("reports")
def reports_cmd(
    dataset: Path = DatasetOpt,
    split: str = ItemsSplitOpt,
    limit: int = LimitOpt,
    systems: str = typer.Option("citewise,stuffed", "--systems", help="citewise, stuffed (the baseline), citewise-no-lookup, citewise-exact, citewise-exact-no-lookup, citewise-passage, citewise-repoint, citewise-located, citewise-numbered, citewise-trained, citewise-reranked, citewise-scored-evidence, citewise-ranked-evidence, citewise-corroborated, citewise-reembedded, citewise-as-trained, citewise-server."),
    model_server: str = typer.Option(None, "--model-server", help="OpenAI API root of a model server serving "
                                     "the same models (e.g. http://127.0.0.1:8080/v1): system citewise-server."),
    off_topic: Path = typer.Option(
        None, "--off-topic", help="Another dataset folder whose questions (or claims) are also asked of this "
                                  "dataset's index, which does not cover them: how often each system declines."),
    off_topic_limit: int = OffTopicLimitOpt,
    off_topic_split: str = OffTopicSplitOpt,
    out_dir: Path = OutOpt,
    resume: Path = ResumeOpt,
    train_folds: int = TrainFoldsOpt,
    train: str = TrainOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Cited reports against the stuffed-prompt baseline with the same writer: citation quality and seconds."""
    from ingest.core.settings import load_settings
    from eval.reports_eval import run_reports

    names = [s.strip() for s in systems.split(",") if s.strip()]
    with _progress(quiet) as progress:
        folder, _ = run_reports(dataset, load_settings(), names, _limit(limit), out_dir, resume, progress,
                                off_topic, off_topic_limit, split, off_topic_split, train_folds,
                                _train_mode(train), model_server)
    _show(folder.path)


@eval_app.command("evidence")
def evidence_cmd(
    dataset: Path = DatasetOpt,
    split: str = ItemsSplitOpt,
    limit: int = LimitOpt,
    systems: str = typer.Option("citewise", "--systems", help="citewise, citewise-trained, citewise-reranked, "
                                                              "citewise-scored-evidence, citewise-ranked-evidence, "
                                                              "citewise-reembedded, citewise-as-trained."),
    off_topic: Path = typer.Option(None, "--off-topic", help="Another dataset folder whose questions are also "
                                   "asked of this index: how often each system declines before writing."),
    off_topic_limit: int = OffTopicLimitOpt,
    off_topic_split: str = OffTopicSplitOpt,
    out_dir: Path = OutOpt,
    resume: Path = ResumeOpt,
    train_folds: int = TrainFoldsOpt,
    train: str = TrainOpt,
    quiet: bool = QuietOpt,
) -> None:
    """The evidence a report's writer would read, without writing: rationale recall and rank, documents shown,
    declines before writing. Seconds per system where reports take an hour."""
    from ingest.core.settings import load_settings
    from eval.evidence_eval import run_evidence

    names = [s.strip() for s in systems.split(",") if s.strip()]
    with _progress(quiet) as progress:
        folder, _ = run_evidence(dataset, load_settings(), names, _limit(limit), out_dir, resume, progress,
                                 off_topic, off_topic_limit, split, off_topic_split, train_folds, _train_mode(train))
    _show(folder.path)


@eval_app.command("compare")
def compare_cmd(run_a: Path = typer.Argument(..., help="Results folder (or results.json) A."),
                run_b: Path = typer.Argument(..., help="Results folder (or results.json) B.")) -> None:
    """Metric differences (B - A) for every system and metric the two runs share."""
    from eval.compare import compare_runs

    out.print(line(compare_runs(run_a, run_b)))


@eval_app.command("guard")
def guard_cmd(
    data: Path = typer.Option(None, "--data", help="JSON lines of phrasings (default: eval/data/injections.jsonl)."),
    corpus: list[Path] = typer.Option(None, "--corpus", help="Folder of real documents (.md, .rst, .txt); the "
                                      "share of their sentences the guard flags is reported too. Repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
) -> None:
    """The injection guard's catch rate and false-positive rate on a set of phrasings, per split."""
    from eval.guard_eval import DEFAULT_SET, corpus_rate, evaluate_guard, guard_lines

    result = evaluate_guard(data or DEFAULT_SET)
    if corpus:
        result["corpus"] = corpus_rate(list(corpus))
    if as_json:
        out.print_json(json.dumps(result))
        return
    out.print("\n".join(guard_lines(result)), highlight=False, markup=False)


@eval_app.command("injection")
def injection_cmd(
    writer: str = typer.Option("fast", "--writer", help="fast | writer (the models of those settings) | obedient "
                               "(a deterministic writer that always carries the injection out)."),
    guard: str = typer.Option("off,on", "--guard", help="Comma-separated: off (verification alone) and/or on."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N injection phrasings."),
    ids: str = typer.Option("", "--ids", help="Comma-separated phrasing ids (e.g. inj-02,inj-45)."),
    docs: Path = typer.Option(None, "--docs", help="Folder of real documents to plant injections beside "
                              "(default: demo/peps)."),
    data: Path = typer.Option(None, "--data", help="JSON lines of phrasings (default: eval/data/injections.jsonl)."),
    benign: bool = typer.Option(True, "--benign/--no-benign", help="Also ask ordinary questions of the documents "
                                "and list the statements the checks refused."),
    out_dir: Path = OutOpt,
    resume: Path = ResumeOpt,
) -> None:
    """Injected instructions that end up in cited statements (must be 0), with the guard off and on."""
    from ingest.core.settings import load_settings
    from eval.guard_eval import DEFAULT_SET
    from eval.injection_eval import DEMO, injection_markdown, run_injection
    from eval.run_folder import RunFolder

    run = RunFolder(resume) if resume else RunFolder.new(out_dir, "injection", writer)
    result = run_injection(load_settings(), writer, tuple(g.strip() for g in guard.split(",") if g.strip()), limit,
                           [i.strip() for i in ids.split(",") if i.strip()] or None, docs or DEMO, data or DEFAULT_SET,
                           out_dir, benign, log=run.append, done=list(run.rows()))
    run.write_results(result, injection_markdown(result))
    _show(run.path)
    if any(s["cited_injected"] or s["answer_injected"] for s in result["summary"].values()):
        raise typer.Exit(1)


@eval_app.command("publish")
def publish_cmd(run: Path = typer.Argument(..., help="An eval run folder (with report.md and results.json)."),
                note: str = typer.Option("", "--note", help="A line on what the run was for or ran beside."),
                to: Path = typer.Option(None, "--to", help="Where the copy goes (default: eval/reports/).")) -> None:
    """Copy a run's report into eval/reports/ as a dated, commit-stamped file headed by its provenance."""
    from eval.publish import REPORTS, publish

    target = publish(run, to or REPORTS, note)
    out.print(line(f"published {target}"))
