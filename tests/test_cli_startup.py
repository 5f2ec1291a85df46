"""What the command line loads: `--help` and a search stay clear of the heavy libraries they do not use, and the
settings reference in docs/ is what `citewise config --markdown` prints."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import ROOT, run_cli, run_probed

def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    done, imported = run_probed(tmp_path, "--help")
    assert "ingest" in done.stdout and "search" in done.stdout
    assert imported == set()


def test_search_on_the_default_int8_backend_does_not_import_torch(built_index: Path, tmp_path: Path) -> None:
    """The default embedder runs as int8 ONNX: a search needs onnxruntime and FAISS, not torch."""
    done, imported = run_probed(tmp_path, "search", "What is the walrus operator?", "--index", str(built_index),
                                "-k", "2", "--json")
    assert "Assignment Expressions" in json.loads(done.stdout)[0]["title"]
    assert {"onnxruntime", "faiss"} <= imported  # the probe sees what a search does use
    assert not {"torch", "transformers", "sentence_transformers"} & imported, imported


def test_docs_settings_md_is_what_config_markdown_prints() -> None:
    done = run_cli("config", "--markdown")
    assert done.returncode == 0, done.stderr
    documented = (ROOT / "docs" / "settings.md").read_text()
    assert documented == done.stdout, "stale: run `python -m api.cli config --markdown > docs/settings.md`"
    tables = [line for line in documented.splitlines() if line.startswith("| `")]
    assert len(tables) > 50
    for line in tables:  # an unescaped "|" in a cell ("Path | None") splits it into a column of its own
        assert len(line.replace("\\|", "").split("|")) == 6, line
