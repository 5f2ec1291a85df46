"""What every command shares: the consoles, exit codes, option handling and the engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console

from ingest.core.errors import InvalidRequestError
from ingest.core.settings import MAX_QUESTION_CHARS, Settings, load_settings
from ingest.core.settings.overrides import override
from ingest.core.text import normalize_ws

if TYPE_CHECKING:
    from generate.engine import Engine

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_PARTIAL = 1  # some inputs failed, the rest were ingested
EXIT_ERROR = 2  # nothing was done: bad settings, missing model, busy index

IndexOpt = typer.Option(None, "--index", "-i", help="Index directory (default: setting index.path).")


def cli_settings(index: Optional[Path] = None, options: dict[str, tuple[str, Any]] | None = None) -> Settings:
    """The loaded settings with options applied, `{"research.max_rounds": ("--rounds", value)}`; a None value
    leaves the setting alone. Each is checked against the setting's own bounds (exit 2 naming both)."""
    settings = load_settings()
    if index is not None:
        override(settings, "index.path", index, "--index")
    for setting, (option, value) in (options or {}).items():
        if value is not None:
            override(settings, setting, value, option)
    return settings


def engine(settings: Settings) -> Engine:
    """The application's components over these settings (imported here: `--help` loads no model code)."""
    from generate.engine import Engine

    return Engine(settings)


def check_text(text: str, what: str) -> None:
    """A blank or overlong query is refused before any model loads, as the HTTP API refuses it."""
    size = len(normalize_ws(text))
    if not size:
        raise InvalidRequestError(f"the {what} is empty")
    if size > MAX_QUESTION_CHARS:
        raise InvalidRequestError(f"the {what} is {size} characters; the limit is {MAX_QUESTION_CHARS}")
