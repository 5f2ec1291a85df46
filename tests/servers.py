"""Real servers for API tests: uvicorn on a free loopback port, in a thread or in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import uvicorn
from fastapi import FastAPI

from api.components import Components
from api.settings import Settings
from tests.conftest import ROOT


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


def shared_components(settings: Settings, shared_models: dict[str, Any]) -> Components:
    comps = Components(settings)
    comps.__dict__["embedder"] = shared_models["embedder"]
    comps.__dict__["parser"] = shared_models["parser"]
    return comps


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn in a thread; yields its base URL and stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def start_process(index: Path, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`citewise serve` as a separate process (what a user runs)."""
    full = dict(os.environ, CITEWISE_MODELS__WRITER="qwen2.5-coder-0.5b-instruct", CITEWISE_INGEST__PARSE_WORKERS="0",
                **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--index", str(index), "--port", str(port)],
                            cwd=ROOT, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(base: str, timeout: float = 180, path: str = "/readyz") -> None:
    """Until `path` answers 200: /readyz for models and index, /healthz for a process that is up."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}{path}", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base}{path} did not answer 200 within {timeout} s")


def wait_job(client: httpx.Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")


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
