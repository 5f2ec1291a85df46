"""`citewise serve`: the HTTP API, the OpenAI-compatible route and the web page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from api.cli.common import IndexOpt, cli_settings


def serve(
    index: Optional[Path] = IndexOpt,
    host: Optional[str] = typer.Option(None, "--host", help="Address to bind (setting server.host)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (setting server.port)."),
) -> None:
    """Serve the HTTP API (reports, search, documents, ingest jobs, OpenAI-compatible chat) and the web page at /."""
    import uvicorn

    from api.app import create_app

    settings = cli_settings(index, {"server.host": ("--host", host), "server.port": ("--port", port)})
    uvicorn.run(create_app(settings), host=settings.server.host, port=settings.server.port,
                log_level="info", timeout_graceful_shutdown=10)
