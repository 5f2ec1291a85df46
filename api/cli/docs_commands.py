"""`citewise docs list | rm`: what the index holds, and removing a document from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from api.cli.common import IndexOpt, cli_settings, engine, err, out
from ingest.console.text import line, visible
from ingest.core.errors import NotFoundError

docs_app = typer.Typer(no_args_is_help=True, help="List and remove indexed documents.")


@docs_app.command("list")
def docs_list(index: Optional[Path] = IndexOpt,
              as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List indexed documents."""
    with engine(cli_settings(index)).open_index() as idx:
        docs = idx.documents()
    if as_json:
        out.print_json(json.dumps([d.__dict__ for d in docs]))
        return
    for d in docs:
        out.print(line(f"{d.id}  {d.n_chunks:>5} chunks  {visible(d.title)[:50]:<50}  {d.source}"))
    err.print(line(f"{len(docs)} documents"))


@docs_app.command("rm")
def docs_rm(id_or_path: str = typer.Argument(..., help="Document id or source path."),
            index: Optional[Path] = IndexOpt) -> None:
    """Remove a document from the store, FAISS and BM25, and what `citewise train` kept of it."""
    eng = engine(cli_settings(index))
    with eng.open_index(writable=True) as idx:
        wanted = id_or_path
        if Path(id_or_path).exists():
            wanted = str(Path(id_or_path).resolve())
        doc = idx.find_document(wanted)
        if doc is None:
            raise NotFoundError(f"no document {id_or_path!r} in {idx.path} (see `citewise docs list`)")
        removed = eng.remove_document(idx, doc.id)
    out.print(line(f"removed {doc.id} ({doc.source}) and its {removed.chunks} chunks"))
    for warning in removed.warnings():
        err.print(line(("warning: ", "yellow"), warning))
    if removed.training_items.get("forgotten"):
        err.print(line(f"training questions about the document: {removed.training_items['forgotten']} dropped"))
