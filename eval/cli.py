"""`citewise eval ...`: benchmarks and quality runs on datasets given by path."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate quality and speed on local datasets.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@eval_app.command("bench-ingest")
def bench_ingest_cmd(
    folder: Path = typer.Argument(..., help="Folder of documents to ingest into a fresh index."),
    baseline_sample: int = typer.Option(1000, help="Chunks re-embedded with the plain path for the ratio."),
    context_mode: str = typer.Option("", "--context-mode", help="none | structure | llm (default: the setting)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Documents/s, chunks/s, seconds per stage and peak RSS, with the plain embedding path beside it."""
    from api.settings import load_settings
    from eval.bench_ingest import bench_ingest

    settings = load_settings()
    if context_mode:
        if context_mode not in ("none", "structure", "llm"):
            from ingest.errors import InvalidRequestError

            raise InvalidRequestError(f"--context-mode must be none, structure or llm, not {context_mode!r}")
        settings.ingest.context_mode = context_mode  # type: ignore[assignment]
    if quiet or as_json:
        result = bench_ingest(folder, settings, None, baseline_sample)
    else:
        from api.console_progress import RichProgress

        with RichProgress(err) as progress:
            result = bench_ingest(folder, settings, progress, baseline_sample)
    if as_json:
        out.print_json(json.dumps(result))
        return
    b = result["baseline"]
    out.print(f"ingest {result['folder']}: {result['documents']} documents ({result['failed']} failed), "
              f"{result['chunks']} chunks in {result['wall_seconds']} s", highlight=False)
    out.print(f"  documents/s {result['documents_per_s']}   chunks/s {result['chunks_per_s']}   "
              f"peak RSS {result['peak_rss_mb']} MB (+ each of {result['parse_workers']} parser workers up to "
              f"{result['peak_rss_parser_worker_mb']} MB)", highlight=False)
    out.print("  seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds_per_stage"].items()))
    out.print(f"  context mode {result['context_mode']}: {result['contexts_generated']} contexts generated, "
              f"{len(result['context_failed'])} documents fell back to structure", highlight=False)
    out.print(f"  embedding ({result['backend']}): {result['embed_chunks_per_s']} chunks/s during ingest", highlight=False)
    out.print(f"  same {b['sample_chunks']} chunks: plain sentence-transformers {b['plain_chunks_per_s']} chunks/s, "
              f"citewise {b['optimized_chunks_per_s_same_sample']} chunks/s -> {b['speedup']}x; "
              f"cosine to plain min {b['min_cosine_vs_plain']} mean {b['mean_cosine_vs_plain']}", highlight=False)


@eval_app.command("bench-context")
def bench_context_cmd(
    folder: Path = typer.Argument(..., help="Folder of documents (the first N by path are used)."),
    docs: int = typer.Option(3, "--docs", help="How many documents."),
    max_chunks: int = typer.Option(8, "--max-chunks", help="At most this many chunks per document."),
    out_dir: Path = typer.Option(Path("eval-runs"), "--out", help="Where the run folder goes."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """llm context throughput: naive per-chunk calls vs the document-prefix-reusing path, same chunks."""
    from api.settings import load_settings
    from eval.bench_context import bench_context
    from eval.run_folder import RunFolder

    run = RunFolder.new(out_dir, "bench-context", folder.name)
    with _progress(quiet) as progress:
        result = bench_context(folder, load_settings(), docs, max_chunks, progress, run.append)
    lines = [f"# llm context throughput: {result['documents']} documents, {result['chunks']} chunks of {folder}", "",
             "| path | seconds | chunks/s | prompt tokens | of which cached | generated | prefill s | decode s |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("naive", "optimized"):
        r = result[name]
        lines.append(f"| {name} | {r['seconds']} | {r['chunks_per_s']} | {r['prompt_tokens']} | "
                     f"{r['cached_prompt_tokens']} | {r['generated_tokens']} | {r['prefill_s']} | {r['decode_s']} |")
    lines += ["", f"Speedup {result['speedup']}x; identical contexts {result['identical_contexts']}/{result['chunks']}.",
              "", "Examples:", *[f"- {e!r}" for e in result["examples"]], ""]
    run.write_results(result, "\n".join(lines))
    _show(run.path)


def _systems(value: str) -> list[str]:
    from retrieval.systems import SYSTEMS

    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in names if s not in SYSTEMS]
    if unknown or not names:
        from ingest.errors import InvalidRequestError

        raise InvalidRequestError(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    return names


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    import contextlib

    if quiet:
        return contextlib.nullcontext(None)
    from api.console_progress import RichProgress

    return RichProgress(err)


def _show(run_dir: Path) -> None:
    out.print((run_dir / "report.md").read_text(), highlight=False, markup=False)
    out.print(f"results: {run_dir}", highlight=False)


LimitOpt = typer.Option(None, "--limit", help="Only the first N queries (by id).")
OutOpt = typer.Option(Path("eval-runs"), "--out", help="Where run folders and cached indexes go.")
ResumeOpt = typer.Option(None, "--resume", help="Continue an interrupted run folder.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars.")


@eval_app.command("retrieval")
def retrieval_cmd(
    dataset: Path = typer.Option(..., "--dataset", help="BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/)."),
    split: str = typer.Option("train", "--split", help="qrels/<split>.tsv to evaluate."),
    limit: int = LimitOpt,
    systems: str = typer.Option("bm25,bm25-plain,dense,hybrid", "--systems", help="Comma-separated systems."),
    out_dir: Path = OutOpt,
    resume: Path = ResumeOpt,
    quiet: bool = QuietOpt,
) -> None:
    """nDCG@10, recall@5/20/100, MRR@10, fail@20 and latency per system, side by side in one run."""
    from api.settings import load_settings
    from eval.retrieval_eval import run_retrieval

    with _progress(quiet) as progress:
        folder, _ = run_retrieval(dataset, load_settings(), _systems(systems), split, limit, out_dir, resume,
                                        progress)
    _show(folder.path)


@eval_app.command("answers")
def answers_cmd(
    dataset: Path = typer.Option(..., "--dataset", help="squad-wiki layout: docs/*.md and questions.jsonl."),
    limit: int = LimitOpt,
    systems: str = typer.Option("bm25,dense,hybrid", "--systems", help="Comma-separated systems."),
    context_modes: str = typer.Option(
        "", "--context-modes", help="Comma-separated context modes (none,structure,llm): one cached index each, "
                                    "systems reported as system/mode. Default: the ingest.context_mode setting."),
    out_dir: Path = OutOpt,
    resume: Path = ResumeOpt,
    quiet: bool = QuietOpt,
) -> None:
    """answer-hit@k (a retrieved chunk contains a gold answer) per system, with the system's own chunking."""
    from api.settings import load_settings
    from eval.answers_eval import run_answers

    modes = [m.strip() for m in context_modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("none", "structure", "llm")]
    if bad:
        from ingest.errors import InvalidRequestError

        raise InvalidRequestError(f"unknown context modes {bad}; choose from none, structure, llm")
    with _progress(quiet) as progress:
        folder, _ = run_answers(dataset, load_settings(), _systems(systems), limit, out_dir, resume, progress,
                                modes or None)
    _show(folder.path)


@eval_app.command("compare")
def compare_cmd(run_a: Path = typer.Argument(..., help="Results folder (or results.json) A."),
                run_b: Path = typer.Argument(..., help="Results folder (or results.json) B.")) -> None:
    """Metric differences (B - A) for every system and metric the two runs share."""
    from eval.compare import compare_runs

    out.print(compare_runs(run_a, run_b), highlight=False)
