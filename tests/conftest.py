"""Shared fixtures: the real MiniLM embedder and parser, loaded once per session; an engine over a fresh index
per test; a small real index built once by the CLI. Also the test tiers: `unit` tests use none of these."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from generate.engine import Engine
from ingest.backends.sentence_transformer_embedder import SentenceTransformerEmbedder
from ingest.core.generator import Generator
from ingest.core.settings import Settings
from ingest.parser import UnstructuredParser
from tests.support import BUILT_DOCS, DEMO, run_cli

#: Fixtures that load a real model, parse with `unstructured` or run the CLI: a `unit` test may use none.
REAL_FIXTURES = {"shared_models", "make_engine", "embedder", "built_index", "index_copy"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test not marked `unit` is `integration`; a `unit` test asking for a real model is a mistake."""
    for item in items:
        if item.get_closest_marker("unit") is None:
            item.add_marker(pytest.mark.integration)
            continue
        real = REAL_FIXTURES & set(getattr(item, "fixturenames", ()))
        if real:
            raise pytest.UsageError(f"{item.nodeid} is marked unit but uses {', '.join(sorted(real))}")


@pytest.fixture(scope="session")
def shared_models() -> dict[str, Any]:
    """The default embedder (loaded now, once) and the in-process parser, for every engine of the session."""
    embedder = Engine(Settings()).embedder
    embedder.warm_up()
    return {"embedder": embedder, "parser": UnstructuredParser()}


@pytest.fixture
def make_engine(tmp_path: Path, shared_models: dict[str, Any]) -> Callable[..., Engine]:
    """An engine over an index in tmp_path with the session's loaded models; `fast_model` replaces the fast
    model (a fake), keyword arguments set `ingest.*` settings."""

    def make(fast_model: Generator | None = None, **ingest: Any) -> Engine:
        settings = Settings()
        settings.index.path = tmp_path / "index"
        for key, value in ingest.items():
            setattr(settings.ingest, key, value)
        return Engine(settings, embedder=shared_models["embedder"], parser=shared_models["parser"],
                      fast_model=fast_model)

    return make


@pytest.fixture
def embedder(shared_models: dict[str, Any]) -> SentenceTransformerEmbedder:
    return shared_models["embedder"]


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small index made by a real `citewise ingest`, which must end without any noise on stderr."""
    base = tmp_path_factory.mktemp("ro")
    docs = base / "docs"
    docs.mkdir()
    for name in BUILT_DOCS:
        shutil.copy(DEMO / name, docs / name)
    result = run_cli("ingest", str(docs), "--index", str(base / "index"))
    assert result.returncode == 0, result.stderr
    # once: "Exception ignored ... OSError: [Errno 9] Bad file descriptor" after a successful ingest
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    return base / "index"


@pytest.fixture
def index_copy(built_index: Path, tmp_path: Path) -> Path:
    """A private copy of `built_index` at tmp_path/index (where `make_engine` looks)."""
    target = tmp_path / "index"
    shutil.copytree(built_index, target)
    return target
