"""Shared fixtures: the real MiniLM embedder and parser, loaded once per session; a fresh index per test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from api.components import Components
from api.settings import Settings
from ingest.embedder import SentenceTransformerEmbedder
from ingest.parser import UnstructuredParser

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo" / "peps"


@pytest.fixture(scope="session")
def shared_models() -> dict[str, Any]:
    comps = Components(Settings())
    comps.embedder.embed(["load once"])
    return {"embedder": comps.embedder, "parser": UnstructuredParser(), "resolver": comps.resolver}


@pytest.fixture
def make_components(tmp_path: Path, shared_models: dict[str, Any]) -> Callable[..., Components]:
    """Components over an index in tmp_path, reusing the session's loaded models."""

    def make(**ingest: Any) -> Components:
        settings = Settings()
        settings.index.path = tmp_path / "index"
        for key, value in ingest.items():
            setattr(settings.ingest, key, value)
        comps = Components(settings)
        comps.__dict__["embedder"] = shared_models["embedder"]
        comps.__dict__["parser"] = shared_models["parser"]
        return comps

    return make


@pytest.fixture
def embedder(shared_models: dict[str, Any]) -> SentenceTransformerEmbedder:
    return shared_models["embedder"]


def run_cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None,
            timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `citewise` command in a subprocess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    cmd = [*(prefix or []), sys.executable, "-m", "api.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd or ROOT)
