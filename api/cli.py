"""The `citewise` command line: ingest, search, ask, serve, docs, config, models, eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console

from api.options import override
from api.settings import Settings, load_settings
from api.terminal_text import dim, line, visible
from ingest.errors import CitewiseError, InvalidRequestError

if TYPE_CHECKING:
    from generate.report import Report

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Local RAG with verbatim citations.")
docs_app = typer.Typer(no_args_is_help=True, help="List and remove indexed documents.")
models_app = typer.Typer(no_args_is_help=True, help="Inspect and prepare local models.")
app.add_typer(docs_app, name="docs")
app.add_typer(models_app, name="models")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_PARTIAL = 1  # some inputs failed, the rest were ingested
EXIT_ERROR = 2  # nothing was done: bad settings, missing model, busy index


def _settings(index: Optional[Path] = None, options: dict[str, tuple[str, Any]] | None = None) -> Settings:
    """The loaded settings with options applied, `{"research.max_rounds": ("--rounds", value)}`; a None value
    leaves the setting alone. Each is checked against the setting's own bounds (exit 2 naming both)."""
    settings = load_settings()
    if index is not None:
        settings.index.path = index
    for setting, (option, value) in (options or {}).items():
        if value is not None:
            override(settings, setting, value, option)
    return settings


def _components(settings: Settings) -> Any:
    from api.components import Components

    return Components(settings)


IndexOpt = typer.Option(None, "--index", "-i", help="Index directory (default: setting index.path).")


@app.command()
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable summary."),
) -> None:
    """Parse, chunk, embed and store documents. Unchanged files are skipped; changed ones replaced."""
    from ingest.progress import NullProgress

    settings = _settings(index, {"ingest.context_mode": ("--context-mode", context_mode),
                                 "ingest.context_scope": ("--context-scope", context_scope)})
    if include:
        settings.ingest.include = include
    if exclude:
        settings.ingest.exclude = [*settings.ingest.exclude, *exclude]
    comps = _components(settings)
    with comps.open_index(writable=True) as idx:
        if quiet or as_json:
            summary = comps.ingestor(idx, NullProgress()).ingest_paths(paths)
        else:
            from api.console_progress import RichProgress

            with RichProgress(err) as progress:
                summary = comps.ingestor(idx, progress).ingest_paths(paths)
        stats = idx.stats()
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


@app.command()
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
    if mode not in ("hybrid", "dense", "bm25"):
        raise CitewiseError(f"--mode must be hybrid, dense or bm25, not {mode!r}")
    _check_text(query, "query")
    settings = _settings(index, {"search.top_k": ("-k", k)})
    if system:
        from retrieval.systems import system_settings

        settings.search = system_settings(system, settings.search)
    comps = _components(settings)
    with comps.open_index() as idx:
        hits, result = comps.searcher(idx).explain(query, settings.search.top_k, mode)
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


def _check_text(text: str, what: str) -> None:
    """A blank or overlong query is refused before any model loads, as the HTTP API refuses it."""
    from generate.research import MAX_QUESTION_CHARS

    size = len(" ".join(text.split()))
    if not size:
        raise InvalidRequestError(f"the {what} is empty")
    if size > MAX_QUESTION_CHARS:
        raise InvalidRequestError(f"the {what} is {size} characters; the limit is {MAX_QUESTION_CHARS}")


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question to research in the indexed documents."),
    index: Optional[Path] = IndexOpt,
    writer: Optional[str] = typer.Option(None, "--writer", help="Writer model: built-in name or .gguf path."),
    rounds: Optional[int] = typer.Option(None, "--rounds", help="Search rounds at most (setting research.max_rounds)."),
    check: bool = typer.Option(False, "--check", help="Treat QUESTION as a claim: give a verdict with citations."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Show research steps and the answer as written."),
) -> None:
    """Research QUESTION in the index and print a report whose every citation is a verified verbatim quote."""
    _check_text(question, "question")
    settings = _settings(index, {"models.writer": ("--writer", writer), "research.max_rounds": ("--rounds", rounds)})
    comps = _components(settings)
    show = stream and err.is_terminal or stream and not as_json

    def events(name: str, data: dict[str, Any]) -> None:
        if not show:
            return
        if name == "search":
            err.print(dim(f"round {data['round']}: searched {data['query']!r}: {data['hits']} passages"))
        elif name == "plan":
            err.print(dim(f"round {data['round']}: asking the search model for new queries"))
        elif name == "evidence":
            err.print(dim(f"round {data['round']}: {data['sentences']} evidence sentences, best similarity "
                          f"{data['best']:.2f}"))
        elif name == "write":
            err.print(dim(f"writing with {data['model']} from {data['evidence']} sentences..."))
            streamer.feed("")
        elif name == "token":
            streamer.feed(data["text"])

    from generate.field_stream import JsonFieldStreamer

    streamer = JsonFieldStreamer({"answer", "text", "verdict"},
                                 lambda key, ch: err.out(visible(ch), end="", style="dim", highlight=False))
    with comps.open_index() as idx:
        researcher = comps.researcher(idx)
        if show:
            err.print(dim("loading models..."))
        researcher.warm()
        report = researcher.run(question, events, task="check" if check else "answer")
    if show:
        err.print()
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    print_report(report, out)


def print_report(report: Report, console: Console) -> None:
    """The report as Markdown: rendered on a terminal, plain text otherwise (to pipe or save)."""
    from rich.markdown import Markdown

    from generate.markdown import render_markdown

    if console.is_terminal:
        # Every document- or model-written string is Markdown-escaped: a quote's `*`, `_` or `[x](y)` is shown
        # as written, not rendered (render_markdown's `literal`).
        console.print(Markdown(visible(render_markdown(report, literal=True))))
    else:
        console.print(line(render_markdown(report)))


@app.command()
def serve(
    index: Optional[Path] = IndexOpt,
    host: Optional[str] = typer.Option(None, "--host", help="Address to bind (setting server.host)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (setting server.port)."),
) -> None:
    """Serve the HTTP API (reports, search, documents, ingest jobs, OpenAI-compatible chat) and the web page at /."""
    import uvicorn

    from api.app import create_app

    settings = _settings(index, {"server.host": ("--host", host), "server.port": ("--port", port)})
    uvicorn.run(create_app(settings), host=settings.server.host, port=settings.server.port,
                log_level="info", timeout_graceful_shutdown=10)


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


@docs_app.command("list")
def docs_list(index: Optional[Path] = IndexOpt,
              as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List indexed documents."""
    comps = _components(_settings(index))
    with comps.open_index() as idx:
        docs = idx.store.documents()
    if as_json:
        out.print_json(json.dumps([d.__dict__ for d in docs]))
        return
    for d in docs:
        out.print(line(f"{d.id}  {d.n_chunks:>5} chunks  {visible(d.title)[:50]:<50}  {d.source}"))
    err.print(line(f"{len(docs)} documents"))


@docs_app.command("rm")
def docs_rm(id_or_path: str = typer.Argument(..., help="Document id or source path."),
            index: Optional[Path] = IndexOpt) -> None:
    """Remove a document from the store, FAISS and BM25."""
    from ingest.errors import NotFoundError

    comps = _components(_settings(index))
    with comps.open_index(writable=True) as idx:
        wanted = id_or_path
        if Path(id_or_path).exists():
            wanted = str(Path(id_or_path).resolve())
        doc = idx.store.find_document(wanted)
        if doc is None:
            raise NotFoundError(f"no document {id_or_path!r} in {idx.path} (see `citewise docs list`)")
        n = idx.remove_document(doc.id)
        idx.flush()
    out.print(line(f"removed {doc.id} ({doc.source}) and its {n} chunks"))


@app.command()
def config(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Print the effective settings (defaults, citewise.toml and CITEWISE_* variables combined)."""
    settings = load_settings()
    data = json.loads(settings.model_dump_json())
    if as_json:
        out.print_json(json.dumps(data))
        return
    out.print(line(_to_toml(data)))


def _to_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is not None:
                lines.append(f"{key} = {json.dumps(value)}")
            else:
                lines.append(f"# {key} = (unset)")
        lines.append("")
    return "\n".join(lines)


@models_app.command("list")
def models_list() -> None:
    """Show configured models and where they resolve."""
    from ingest.models import BUILTIN_GGUF

    settings = load_settings()
    comps = _components(settings)
    for role in ("embedder", "writer", "fast"):
        name = getattr(settings.models, role)
        try:
            if role == "embedder":
                where = str(comps.resolver.embedder_path(name))
            elif name in BUILTIN_GGUF:
                target = comps.resolver.cache_dir / f"{name}.gguf"
                where = str(target) if target.exists() else "not assembled yet (`citewise models prepare`)"
            else:
                where = str(comps.resolver.gguf_path(name))
        except CitewiseError as exc:
            where = f"unavailable: {exc.message}"
        out.print(line(f"{role:<9} {name:<30} {where}"))


@models_app.command("prepare")
def models_prepare(role: list[str] = typer.Argument(None, help="writer, fast (default: both)")) -> None:
    """Assemble and verify the GGUF models now, instead of on first use."""
    settings = load_settings()
    comps = _components(settings)
    for r in role or ["fast", "writer"]:
        if r not in ("writer", "fast"):
            raise CitewiseError(f"unknown model role {r!r}: use writer or fast")
        path = comps.resolver.gguf_path(getattr(settings.models, r))
        out.print(line(f"{r}: {path} (verified)"))


def _register_eval() -> None:
    from eval.cli import eval_app

    app.add_typer(eval_app, name="eval")


def main() -> None:
    """Entry point: errors the user can act on print one clear line, not a traceback."""
    import sqlite3

    _register_eval()
    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except CitewiseError as exc:
        err.print(line(("error:", "red"), f" {_one_line(exc.message)}"))  # messages quote paths and user input
        sys.exit(EXIT_PARTIAL if getattr(exc, "partial", False) else EXIT_ERROR)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted; finished documents are kept, re-run to continue")
        sys.exit(130)
    except (OSError, sqlite3.Error) as exc:  # last resort: the layers below should have named these precisely
        err.print(line(("error:", "red"), f" {_one_line(_unexpected(exc))}"))
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


def _one_line(message: str) -> str:
    """Library messages (FAISS, SQLite) may span lines; the CLI's error is always one."""
    return " ".join(message.split())


def _unexpected(exc: BaseException) -> str:
    """One line for an error no layer translated: its type, message and the code that raised it."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (in {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


if __name__ == "__main__":
    main()
