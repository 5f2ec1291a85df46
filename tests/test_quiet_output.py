"""What the CLI prints is its own: no library log lines or weight-loading bars unless --verbose."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support import DEMO, run_cli


def test_a_first_ingest_prints_only_citewise_lines(tmp_path: Path) -> None:
    """A fresh model cache makes the first ingest build the int8 embedder, which loads the fp32 model twice."""
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(DEMO / "pep-0020.rst", docs)
    (docs / "refs.rst").write_text("Notes\n=====\n\nSee the `dangling`_ reference, which pandoc warns about.\n")
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    result = run_cli("ingest", str(docs), "--index", str(tmp_path / "index"), env=env)
    assert result.returncode == 0, result.stderr
    for noise in ("Loading weights", "DEBUG", "INFO", "it/s]", "[WARNING]", "Reference not found"):
        assert noise not in result.stderr, result.stderr
    assert "2 ingested" in result.stderr
    loud = run_cli("--verbose", "search", "zen", "--index", str(tmp_path / "index"), "--mode", "bm25", env=env)
    assert loud.returncode == 0 and "The Zen of Python" in loud.stdout
