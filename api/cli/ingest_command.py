"""`citewise ingest`: parse, chunk, embed and store files and folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from api.cli.common import EXIT_PARTIAL, IndexOpt, cli_settings, engine, err, out
from ingest.console.text import line


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files and folders to ingest (folders recursively)."),
    index: Optional[Path] = IndexOpt,
    include: list[str] = typer.Option([], "--include", help="Only files matching this glob (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Skip files matching this glob (repeatable)."),
    context_mode: Optional[str] = typer.Option(
        None, "--context-mode", help="none | structure | llm (changing it re-contextualizes the index)"),
    context_scope: Optional[str] = typer.Option(
        None, "--context-scope", help="llm mode: chunk (a sentence per chunk) | document (one per document, "
                                      "far cheaper)"),
    executor: Optional[str] = typer.Option(
        None, "--executor", help="local | ray: where files are parsed, chunked and embedded (setting ingest.executor)"),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="the Ray cluster's head HOST:PORT, or auto (implies --executor ray)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable summary."),
) -> None:
    """Parse, chunk, embed and store documents. Unchanged files are skipped; changed ones replaced."""
    from ingest.core.progress import NullProgress

    if ray_address is not None and executor is None:
        executor = "ray"  # naming a cluster is asking to use it
    settings = cli_settings(index, {"ingest.context_mode": ("--context-mode", context_mode),
                                    "ingest.context_scope": ("--context-scope", context_scope),
                                    "ingest.executor": ("--executor", executor),
                                    "ingest.ray_address": ("--ray-address", ray_address)})
    if include:
        settings.ingest.include = include
    if exclude:
        settings.ingest.exclude = [*settings.ingest.exclude, *exclude]
    app = engine(settings)
    try:
        with app.open_index(writable=True) as idx:
            if quiet or as_json:
                summary = app.ingest(idx, paths, NullProgress())
            else:
                from ingest.console.progress_bars import RichProgress

                with RichProgress(err) as progress:
                    summary = app.ingest(idx, paths, progress)
            stats = idx.stats()
    finally:
        app.close()
    data = summary.to_dict()
    data["index"] = {"path": stats["path"], "documents": stats["documents"], "chunks": stats["chunks"],
                     "dense_index": stats["dense_index"]}
    if as_json:
        out.print_json(json.dumps(data))
    elif not quiet or summary.failed:
        _print_summary(data)
    if summary.failed or summary.context_failed:
        raise typer.Exit(EXIT_PARTIAL)


def _print_summary(data: dict[str, Any]) -> None:
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in data["seconds"].items())
    err.print(line(f"{data['files_seen']} files: {data['ingested']} ingested, {data['unchanged']} unchanged, "
                   f"{len(data['skipped'])} skipped, {len(data['failed'])} failed; {data['chunks_added']} chunks "
                   "added" + (f" ({secs})" if secs else "")))
    vectors = data["trained_vectors"]
    if vectors.get("stored"):
        err.print(line(f"trained encoder vectors: {vectors['added']} chunks encoded, {vectors['removed']} dropped, "
                       f"stored in scorer/{vectors['generation']}"))
    elif vectors.get("error") or vectors.get("skipped"):
        err.print(line(("warning: ", "yellow"), "trained encoder vectors not stored again: "
                       f"{vectors.get('error') or vectors.get('skipped')}"))
    items = data["training_items"]
    if items.get("forgotten"):
        err.print(line(f"training questions about replaced chunks: {items['forgotten']} dropped"))
    elif items.get("error") or items.get("skipped"):
        err.print(line(("warning: ", "yellow"), "training questions about replaced chunks not dropped: "
                       f"{items.get('error') or items.get('skipped')}"))
    if data["prepared_by"]:
        nodes = {worker.split(":")[0] for worker in data["prepared_by"]}
        err.print(line(f"ray: {sum(data['prepared_by'].values())} documents prepared by {len(data['prepared_by'])} "
                       f"workers on {len(nodes)} nodes"))
    if data["recontextualized"] or data["contexts_generated"] or data["contexts_cached"] or data["contexts_skipped"]:
        err.print(line(f"contexts: {data['contexts_generated']} generated, {data['contexts_cached']} from cache, "
                       f"{data['contexts_skipped']} skipped (subject named); "
                       f"{data['recontextualized']} stored documents re-contextualized"))
    kinds = (("failed", "failed ", "red", "reason"), ("context_failed", "context failed", "red", "reason"),
             ("skipped", "skipped", "yellow", "reason"), ("warnings", "warning", "yellow", "warning"))
    for key, label, style, why in kinds:
        for row in data[key]:
            err.print(line((label, style), f" {row['path']}: {row[why]}"))
    ix = data["index"]
    err.print(line(f"index {ix['path']}: {ix['documents']} documents, {ix['chunks']} chunks, "
                   f"{ix['dense_index']['kind']} vectors"))
