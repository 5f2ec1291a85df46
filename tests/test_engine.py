"""The composition root with fake components: built once per index, cheap to build, and what fails to load
fails when it loads (so /readyz can name it), not while the object graph is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from generate.engine import Engine
from ingest.core.errors import ConfigError
from ingest.core.settings import Settings
from tests.fakes import FakeGenerator, HashingEmbedder

pytestmark = pytest.mark.unit


def settings_in(tmp_path: Path) -> Settings:
    settings = Settings()
    settings.index.path = tmp_path / "index"
    settings.research.rerank = []  # late interaction would need the real embedder's token vectors
    return settings


def test_searcher_and_researcher_are_built_once_per_index_from_the_given_parts(tmp_path: Path) -> None:
    embedder, fast = HashingEmbedder(), FakeGenerator(name="fast")
    engine = Engine(settings_in(tmp_path), embedder=embedder, fast_model=fast, writer_model=FakeGenerator())
    with engine.open_index(writable=True) as index:
        assert engine.searcher(index) is engine.searcher(index)
        researcher = engine.researcher(index)
        assert researcher is engine.researcher(index) and researcher.gatherer.planner is not None
        assert researcher.gatherer.planner.model is fast and researcher.verifier.embedder is embedder
        assert engine.model("fast") is fast and engine.model("writer") is engine.writer_model
        parts = engine.warm_up_parts(index)
        assert set(parts) == {"embedder", "writer", "planner", "search"}
        for load in parts.values():
            load()
        assert fast.warmed == 1
    with engine.open_index() as reader:  # another index: its own searcher
        assert engine.searcher(reader) is not engine.searcher(index)


def test_a_missing_writer_model_fails_when_it_loads_not_when_the_report_path_is_built(tmp_path: Path) -> None:
    """Building the researcher resolved the writer's file, so one that was missing failed the whole warm-up
    and /readyz reported ready without a writer."""
    settings = settings_in(tmp_path)
    settings.models.writer = str(tmp_path / "missing-writer.gguf")
    engine = Engine(settings, embedder=HashingEmbedder(), fast_model=FakeGenerator())
    with engine.open_index(writable=True) as index:
        parts = engine.warm_up_parts(index)
        assert parts["writer"] == engine.writer_model.warm_up
        with pytest.raises(ConfigError, match="missing-writer.gguf"):
            parts["writer"]()


def test_an_engine_that_parsed_in_process_closes(tmp_path: Path) -> None:
    """`serve` with ingest.parse_workers = 0 failed its shutdown: the in-process parser had no close()."""
    settings = settings_in(tmp_path)
    settings.ingest.parse_workers = 0
    engine = Engine(settings, embedder=HashingEmbedder())
    assert type(engine.parser).__name__ == "UnstructuredParser"
    engine.close()
