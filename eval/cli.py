"""`citewise eval ...`: benchmarks and quality runs on datasets given by path."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate quality and speed on local datasets.")
out = Console(soft_wrap=True)
err = Console(stderr=True)


@eval_app.command("bench-ingest")
def bench_ingest_cmd(
    folder: Path = typer.Argument(..., help="Folder of documents to ingest into a fresh index."),
    baseline_sample: int = typer.Option(1000, help="Chunks re-embedded with the plain path for the ratio."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Documents/s, chunks/s, seconds per stage and peak RSS, with the plain embedding path beside it."""
    from api.settings import load_settings
    from eval.bench_ingest import bench_ingest

    settings = load_settings()
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
              f"peak RSS {result['peak_rss_mb']} MB", highlight=False)
    out.print("  seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds_per_stage"].items()))
    out.print(f"  embedding ({result['backend']}): {result['embed_chunks_per_s']} chunks/s during ingest", highlight=False)
    out.print(f"  same {b['sample_chunks']} chunks: plain sentence-transformers {b['plain_chunks_per_s']} chunks/s, "
              f"citewise {b['optimized_chunks_per_s_same_sample']} chunks/s -> {b['speedup']}x; "
              f"cosine to plain min {b['min_cosine_vs_plain']} mean {b['mean_cosine_vs_plain']}", highlight=False)
