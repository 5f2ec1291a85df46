"""Plain helpers every kind of test shares: where things are, the real CLI in a subprocess, waiting for a
condition, and looking at an index from outside (its SQLite store, its derived files, its permissions)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from ingest.core.settings import Settings, TrainSettings
from ingest.core.types import ChunkRow
from retrieval.training.items import TrainingItem

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo" / "peps"
FIXTURES = ROOT / "tests" / "fixtures"
#: The demo documents of the `built_index` fixture.
BUILT_DOCS = ["pep-0020.rst", "pep-0257.rst", "pep-0572.rst"]

T = TypeVar("T")


def run_cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None,
            timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `citewise` command in a subprocess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    cmd = [*(prefix or []), sys.executable, "-m", "api.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd or ROOT)


def wait_until(predicate: Callable[[], T], timeout: float, message: str, interval: float = 0.1) -> T:
    """The predicate's first truthy value, polled every `interval` seconds; fails with `message` after `timeout`.

    Every polling loop of the suite goes through here, so a deadline is stated once per wait and is
    generous: a slow machine may make a test slower, not make it fail.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout:g} s)")
        time.sleep(interval)


def stored_doc_count(index: Path) -> int:
    """Documents committed to the index's store, read from outside the writing process (0 before it exists)."""
    try:
        conn = sqlite3.connect(f"file:{index / 'store.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def ids_everywhere(index: Any) -> tuple[set[int], set[int], set[int]]:
    """Chunk ids in the store, the FAISS file and the BM25 file: an index is consistent when all three agree."""
    return set(index.chunk_ids()), set(index.faiss.ids().tolist()), set(index.bm25._ids.tolist())


def no_write_privilege() -> list[str]:
    """The command prefix that makes permission bits bind: none for a normal user, setpriv for root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "tests running as root need setpriv (util-linux) to run commands without write privilege"
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--"]


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`chmod -R a-w path` for the duration, then write access back for the owner (so tmp can be cleaned)."""
    entries = [path, *path.rglob("*")]
    for entry in entries:
        os.chmod(entry, entry.stat().st_mode & ~0o222)
    try:
        probe = subprocess.run([*no_write_privilege(), "touch", str(path / "probe")], capture_output=True)
        assert probe.returncode != 0, "the directory is still writable: this test would prove nothing"
        yield
    finally:
        for entry in entries:
            os.chmod(entry, entry.stat().st_mode | 0o200)


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


#: (question, evidence sentence, answer) about the built_index documents (PEPs 20, 257, 572).
ANSWERABLE = [
    ("What is the informal name of the := operator?",
     'During discussion of this PEP, the operator became informally known as "the walrus operator".',
     "the walrus operator"),
    ("What notation do assignment expressions use?",
     "This is a proposal for creating a way to assign to variables within an expression using the notation "
     "NAME := expr.", "NAME := expr"),
    ("How many aphorisms does the Zen of Python have?",
     "Long time Pythoneer Tim Peters succinctly channels the BDFL's guiding principles for Python's design into 20 "
     "aphorisms, only 19 of which have been written down.", "20 aphorisms"),
    ("Why are triple quotes used for one-line docstrings?",
     "Triple quotes are used even though the string fits on one line.", "Triple quotes"),
]
#: (question, text of the chunk it almost matches)
NEAR_MISS = [("Which Python release first shipped the walrus operator?", "the walrus operator")]
FAST_TRAINING = TrainSettings(epochs=1, batch_size=8, max_length=64, budget_s=300, seed=13, min_held_out_auc=0)


def make_training_items(rows: dict[int, ChunkRow]) -> list[TrainingItem]:
    """The hand-made items, tied to the chunks that hold their text; one hard negative each, a neighbour."""
    def holding(text: str) -> ChunkRow:
        return next(r for r in sorted(rows.values(), key=lambda r: r.id) if text in r.text)

    items = []
    for question, sentence, answer in ANSWERABLE:
        row = holding(sentence)
        other = row.id + 1 if rows[row.id + 1].doc_id == row.doc_id else row.id - 1  # the next section: it looks close
        items.append(TrainingItem(question, row.id, row.doc_id, True, "synthetic", answer, sentence, (other,)))
    for question, text in NEAR_MISS:
        row = holding(text)
        items.append(TrainingItem(question, row.id, row.doc_id, False, "synthetic"))
    return items


def engine_over(index: Path, shared_models: dict[str, Any], **sections: dict[str, Any]) -> Any:
    """An Engine over `index` with the session's loaded embedder and parser; each keyword names a settings
    section and the values to set in it (`search={"dense_vectors": "embedder"}`)."""
    from generate.engine import Engine

    settings = Settings()
    settings.index.path = index
    for section, values in sections.items():
        for key, value in values.items():
            setattr(getattr(settings, section), key, value)
    return Engine(settings, embedder=shared_models["embedder"], parser=shared_models["parser"])
