"""The `citewise` command: its commands, the ones other packages register, and one line per error."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

import typer

from api.cli.ask_command import ask
from api.cli.common import EXIT_ERROR, EXIT_PARTIAL, err
from api.cli.config_commands import config, models_app
from api.cli.docs_commands import docs_app
from api.cli.ingest_command import ingest
from api.cli.search_command import search
from api.cli.serve_command import serve
from api.cli.train_command import train
from ingest.console.text import line
from ingest.core.errors import CitewiseError
from ingest.core.offline import quiet_libraries
from ingest.core.text import normalize_ws

#: Entry-point group through which other installed packages add commands (the evaluation suite adds `eval`).
COMMANDS_GROUP = "citewise.commands"

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Local RAG with verbatim citations.")


@app.callback()
def _options(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the libraries' own log messages "
                                          "and progress bars (model loading, index building).")) -> None:
    """Local RAG with verbatim citations."""
    quiet_libraries(verbose)


for command in (ingest, search, ask, train, serve, config):
    app.command()(command)
app.add_typer(docs_app, name="docs")
app.add_typer(models_app, name="models")


def _register_plugins() -> None:
    """Sub-apps from installed packages: the product never imports them, they announce themselves."""
    for ep in entry_points(group=COMMANDS_GROUP):
        app.add_typer(ep.load(), name=ep.name)


def main() -> None:
    """Entry point: errors the user can act on print one clear line, not a traceback."""
    import sqlite3

    _register_plugins()
    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except CitewiseError as exc:
        err.print(line(("error:", "red"), f" {normalize_ws(exc.message)}"))  # messages quote paths and user input
        sys.exit(EXIT_PARTIAL if getattr(exc, "partial", False) else EXIT_ERROR)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted; finished documents are kept, re-run to continue")
        sys.exit(130)
    except (OSError, sqlite3.Error) as exc:  # last resort: the layers below should have named these precisely
        err.print(line(("error:", "red"), f" {normalize_ws(_unexpected(exc))}"))
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):  # a usage error (typer's own click): its usage line
            show()
            sys.exit(code)
        raise


def _unexpected(exc: BaseException) -> str:
    """One line for an error no layer translated: its type, message and the code that raised it."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (in {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


if __name__ == "__main__":
    main()
