"""`citewise search`: ranked passages with their sources, no generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from api.cli.common import IndexOpt, check_text, cli_settings, engine, out
from ingest.console.text import line, visible
from ingest.core.errors import InvalidRequestError

MODES = ("hybrid", "dense", "bm25")


def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(None, "-k", help="How many passages (default: setting search.top_k)."),
    index: Optional[Path] = IndexOpt,
    mode: str = typer.Option("hybrid", "--mode", help="hybrid (the configured pipeline) | dense | bm25"),
    system: Optional[str] = typer.Option(None, "--system", help="A named system instead of the configured "
                                         "pipeline, e.g. fused+llm (see `citewise eval retrieval --help`)."),
    explain: bool = typer.Option(False, "--explain", help="Show each stage's candidates, scores and seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Show the passages that best match QUERY, with their sources."""
    if mode not in MODES:
        raise InvalidRequestError(f"--mode must be hybrid, dense or bm25, not {mode!r}")
    check_text(query, "query")
    settings = cli_settings(index, {"search.top_k": ("-k", k)})
    if system:
        from retrieval.systems import system_settings

        settings.search = system_settings(system, settings.search)
    app = engine(settings)
    with app.open_index() as idx:
        hits, result = app.searcher(idx).explain(query, settings.search.top_k, mode)
        trace = _trace_rows(idx, result) if explain else []
    if as_json:
        rows = [{"rank": r, "score": h.score, "ranks": h.ranks, "doc_id": h.chunk.doc_id, "title": h.chunk.title,
                 "source": h.chunk.source, "section": h.chunk.headings, "page": h.chunk.page,
                 "start": h.chunk.start, "end": h.chunk.end, "text": h.chunk.text} for r, h in enumerate(hits, 1)]
        out.print_json(json.dumps({"hits": rows, "stages": trace} if explain else rows))
        return
    if explain:
        _print_trace(trace)
    if not hits:
        out.print("no matching passages")
    for rank, hit in enumerate(hits, 1):
        c = hit.chunk
        where = " > ".join(c.headings) or "(no section)"
        page = f", page {c.page}" if c.page else ""
        out.print(line((f"{rank}.", "bold"), f" {hit.score:.4f}  ", (c.title, "bold"), f"  {where}{page}"))
        out.print(line("   ", (f"{c.source} [{c.start}:{c.end}]", "dim")))
        out.print(line("   " + c.text.replace("\n", "\n   ")))
        out.print()


def _trace_rows(idx: Any, result: Any) -> list[dict[str, Any]]:
    """Each stage of a pipeline run with its top candidates named by title, for --explain."""
    ids = {cid for t in result.trace for cid, _ in t.items}
    rows = idx.chunks(sorted(ids))
    stages = []
    for t in result.trace:
        extra = {k: v for k, v in t.extra.items() if k in ("queries", "model", "budget_hit", "scored")}
        stages.append({"stage": t.stage, "detail": t.detail, "seconds": round(t.seconds, 4), "extra": extra,
                       "candidates": [{"chunk_id": cid, "score": round(score, 4),
                                       "title": rows[cid].title if cid in rows else "",
                                       "start": rows[cid].start if cid in rows else None}
                                      for cid, score in t.items]})
    return stages


def _print_trace(stages: list[dict[str, Any]]) -> None:
    for st in stages:
        out.print(line((st["stage"], "bold"), f"  {st['detail']}  ({st['seconds'] * 1000:.1f} ms)"))
        for q in st["extra"].get("queries", []):
            out.print(line(f"   query: {q}"))
        for i, c in enumerate(st["candidates"], 1):
            out.print(line(f"   {i:>2}. {c['score']:>9.4f}  #{c['chunk_id']}  {visible(c['title'])[:70]}"))
    out.print()
