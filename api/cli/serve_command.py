"""`citewise serve`: the HTTP API, the OpenAI-compatible route and the web page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from api.cli.common import IndexOpt, cli_settings
from ingest.core.errors import ConfigError


def serve(
    index: Optional[Path] = IndexOpt,
    host: Optional[str] = typer.Option(None, "--host", help="Address to bind (setting server.host)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (setting server.port)."),
    read_only: Optional[bool] = typer.Option(None, "--read-only/--writable", help="A read replica of an index "
                                             "another process writes (setting server.read_only)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Server processes on the port, each with its own "
                                          "models; more than one needs --read-only (setting server.workers)."),
) -> None:
    """Serve the HTTP API (reports, search, documents, ingest jobs, OpenAI-compatible chat) and the web page at /."""
    import uvicorn

    settings = cli_settings(index, {"server.host": ("--host", host), "server.port": ("--port", port),
                                    "server.read_only": ("--read-only", read_only),
                                    "server.workers": ("--workers", workers)})
    s = settings.server
    if s.workers > 1 and not s.read_only:
        raise ConfigError(f"--workers {s.workers}: several server processes would all write the index, which has "
                          "one writer; add --read-only (and run the writer apart)")
    if s.workers == 1:
        from api.app import create_app

        uvicorn.run(create_app(settings), host=s.host, port=s.port, log_level="info", timeout_graceful_shutdown=10)
        return
    # Worker processes build their own app from the environment: pass what the options changed there.
    os.environ.update({"CITEWISE_INDEX__PATH": str(settings.index.path), "CITEWISE_SERVER__READ_ONLY": "true"})
    uvicorn.run("api.app:app_from_environment", factory=True, workers=s.workers, host=s.host, port=s.port,
                log_level="info", timeout_graceful_shutdown=10)
