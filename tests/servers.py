"""Real servers for API tests: uvicorn on a free loopback port, in a thread or in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import uvicorn
from fastapi import FastAPI

from generate.engine import Engine
from ingest.core.settings import Settings
from tests.support import ROOT, wait_until

#: Reports and ingest jobs share two cores with everything else a test run does: waits are generous.
JOB_TIMEOUT = 600.0
READY_TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def small_settings(index: Path, **server: Any) -> Settings:
    """The 0.5B model writes (a test about the API, not the writer), with a small token budget."""
    settings = Settings()
    settings.index.path = index
    settings.models.writer = settings.models.fast
    settings.research.writer_max_tokens = 140
    settings.research.max_rounds = 1
    settings.ingest.parse_workers = 0
    for key, value in server.items():
        setattr(settings.server, key, value)
    return settings


def shared_engine(settings: Settings, shared_models: dict[str, Any]) -> Engine:
    """An engine over `settings` that uses the session's loaded embedder and parser."""
    return Engine(settings, embedder=shared_models["embedder"], parser=shared_models["parser"])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn in a thread; yields its base URL and stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 120, "uvicorn did not start", interval=0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


def start_process(index: Path, port: int, env: dict[str, str] | None = None,
                  read_only: bool = False) -> subprocess.Popen[bytes]:
    """`citewise serve` as a separate process (what a user runs); `read_only`: a read replica."""
    full = dict(os.environ, CITEWISE_MODELS__WRITER="qwen2.5-coder-0.5b-instruct", CITEWISE_INGEST__PARSE_WORKERS="0",
                **(env or {}))
    extra = ["--read-only"] if read_only else []
    return subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--index", str(index), "--port", str(port),
                             *extra], cwd=ROOT, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(base: str, timeout: float = READY_TIMEOUT, path: str = "/readyz") -> None:
    """Until `path` answers 200: /readyz for models and index, /healthz for a process that is up."""

    def ready() -> bool:
        try:
            return httpx.get(f"{base}{path}", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout, f"{base}{path} did not answer 200", interval=0.3)


def wait_job(client: httpx.Client, job_id: str, timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
    """The job once it left `queued` and `running`."""

    def settled() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["state"] not in ("queued", "running") else None

    return wait_until(settled, timeout, f"job {job_id} did not finish", interval=0.2)


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from a Server-Sent Events line stream."""
    event, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
