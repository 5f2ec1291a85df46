"""An index the user may not write can still be searched and listed (issue 28, item 5).

Tests may run as root, whom permission bits do not stop; commands then run under `setpriv` with every
capability dropped, so the bits apply to them as to anyone else, and each test first proves that a write
really fails.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from ingest.errors import IndexStateError
from tests.conftest import DEMO, ROOT, run_cli

DOCS = ["pep-0020.rst", "pep-0257.rst", "pep-0572.rst"]


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


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small index made by a real `citewise ingest`, which must end without any noise on stderr."""
    base = tmp_path_factory.mktemp("ro")
    docs = base / "docs"
    docs.mkdir()
    for name in DOCS:
        shutil.copy(DEMO / name, docs / name)
    result = run_cli("ingest", str(docs), "--index", str(base / "index"))
    assert result.returncode == 0, result.stderr
    # once: "Exception ignored ... OSError: [Errno 9] Bad file descriptor" after a successful ingest
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    return base / "index"


@pytest.fixture
def index_copy(built_index: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(built_index, target)
    return target


def test_search_and_docs_list_work_on_a_read_only_index(index_copy: Path) -> None:
    before = {p.name: p.read_bytes() for p in index_copy.iterdir() if p.is_file()}
    with read_only(index_copy):
        found = run_cli("search", "What is the walrus operator?", "--index", str(index_copy), "-k", "2",
                        prefix=no_write_privilege())
        listed = run_cli("docs", "list", "--index", str(index_copy), "--json", prefix=no_write_privilege())
    assert found.returncode == 0, found.stderr
    assert "Assignment Expressions" in found.stdout
    assert listed.returncode == 0, listed.stderr
    assert sorted(Path(d["source"]).name for d in json.loads(listed.stdout)) == DOCS
    assert {p.name: p.read_bytes() for p in index_copy.iterdir() if p.is_file()} == before


def test_a_reader_cannot_write_the_store(index_copy: Path, make_components) -> None:
    """In-process (privileges or not): the reader's connection is opened read-only."""
    comps = make_components()
    with comps.open_index() as index:
        assert index.store.documents()
        with pytest.raises(sqlite3.OperationalError) as caught:
            index.store.conn.execute("INSERT INTO meta(key, value) VALUES('probe', '1')")
        assert caught.value.sqlite_errorname.startswith("SQLITE_READONLY")


def test_a_write_ahead_log_that_cannot_be_read_is_named(index_copy: Path) -> None:
    """A log left by a writer that died, in a directory the reader may not write: a clear line, not stale data."""
    store = index_copy / "store.sqlite"
    leave_log = ("import os, sqlite3, sys\n"
                 "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                 "c.execute(\"INSERT INTO context_cache VALUES ('k', 'a cached sentence', 0)\")\n"
                 "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", leave_log, str(store)], check=True)
    (index_copy / "store.sqlite-shm").unlink()
    assert (index_copy / "store.sqlite-wal").stat().st_size > 0
    open_reader = ("from ingest.store.bm25_index import Bm25Analyzer\n"
                   "from ingest.store.local_index import LocalIndex\n"
                   "import sys, json\n"
                   "LocalIndex(sys.argv[1], json.loads(sys.argv[2]), Bm25Analyzer())\n")
    embedder = json.loads((index_copy / "manifest.json").read_text())["embedder"]
    with read_only(index_copy):
        result = subprocess.run([*no_write_privilege(), sys.executable, "-c", open_reader, str(index_copy),
                                 json.dumps(embedder)], capture_output=True, text=True, cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode != 0
    assert IndexStateError.__name__ in result.stderr and "store.sqlite-wal" in result.stderr
    assert "give this user write access" in result.stderr
