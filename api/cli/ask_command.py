"""`citewise ask`: a cited report, its research steps and answer streamed to stderr as they happen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console

from api.cli.common import IndexOpt, check_text, cli_settings, engine, err, out
from ingest.console.text import dim, line, visible

if TYPE_CHECKING:
    from generate.events import Event
    from generate.report import Report


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
    check_text(question, "question")
    settings = cli_settings(index, {"models.writer": ("--writer", writer)})
    from generate.field_stream import JsonFieldStreamer
    from generate.task import Task
    from ingest.core.settings import ResearchOptions
    from ingest.core.settings.overrides import validated

    options = validated(ResearchOptions, {"max_rounds": rounds} if rounds is not None else {}, "research",
                        options={"max_rounds": "--rounds"})
    show = stream and err.is_terminal or stream and not as_json
    streamer = JsonFieldStreamer({"answer", "text", "verdict"},
                                 lambda key, ch: err.out(visible(ch), end="", style="dim", highlight=False))
    app = engine(settings)
    with app.open_index() as idx:
        researcher = app.researcher(idx)
        if show:
            err.print(dim("loading models..."))
        researcher.warm_up()
        report = researcher.run(question, Task.CHECK if check else Task.ANSWER, options,
                                on_event=lambda e: _show(e, streamer) if show else None)
    if show:
        err.print()
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    print_report(report, out)


def _show(event: Event, streamer: object) -> None:
    """Research steps as dim progress lines; the writer's answer and statements as they are generated."""
    from generate.events import EvidenceSelected, Planning, Searched, TokenWritten, Writing

    if isinstance(event, Searched):
        err.print(dim(f"round {event.round}: searched {event.query!r}: {event.hits} passages"))
    elif isinstance(event, Planning):
        err.print(dim(f"round {event.round}: asking the search model for new queries"))
    elif isinstance(event, EvidenceSelected):
        best = f"best probability {event.probability:.2f}" if event.probability is not None \
            else f"best similarity {event.best:.2f}"
        err.print(dim(f"round {event.round}: {event.sentences} evidence sentences, {best}"))
    elif isinstance(event, Writing):
        err.print(dim(f"writing with {event.model} from {event.evidence} sentences..."))
    elif isinstance(event, TokenWritten):
        streamer.feed(event.text)  # type: ignore[attr-defined]


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
