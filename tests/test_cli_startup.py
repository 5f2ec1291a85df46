"""What the command line loads: `--help` and a search stay clear of the heavy libraries they do not use, and the
settings reference in docs/ is what `citewise config --markdown` prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, run_cli

#: Libraries that take seconds to import; each belongs to a path `--help` never takes.
HEAVY = ("torch", "transformers", "unstructured", "spacy", "llama_cpp", "onnxruntime", "matplotlib",
         "sentence_transformers", "faiss")

#: Runs `python -m api.cli ARGS...` in this interpreter, then writes its exit code and the heavy modules it
#: imported to the file named first (stdout is the command's own).
PROBE = """
import json, runpy, sys
out, args, heavy = sys.argv[1], sys.argv[2:], {heavy!r}
sys.argv = ["citewise", *args]
try:
    runpy.run_module("api.cli", run_name="__main__")
    code = 0
except SystemExit as exc:
    code = exc.code
with open(out, "w") as fh:
    json.dump({{"code": code, "imported": [m for m in heavy if m in sys.modules]}}, fh)
"""


def run_probed(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """The real command in a fresh interpreter (it must exit 0), and which of HEAVY it had imported by then."""
    out = tmp_path / "probe.json"
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), str(out), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert out.exists(), done.stderr
    seen = json.loads(out.read_text())
    assert seen["code"] == 0, done.stderr
    return done, set(seen["imported"])


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
