"""An index the user may not write can still be searched and listed (issue 28, item 5).

Tests may run as root, whom permission bits do not stop; commands then run under `setpriv` with every
capability dropped, so the bits apply to them as to anyone else, and each test first proves that a write
really fails.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.core.errors import IndexStateError
from tests.support import BUILT_DOCS, ROOT, no_write_privilege, read_only, run_cli

def test_search_and_docs_list_work_on_a_read_only_index(index_copy: Path) -> None:
    before = {p.name: p.read_bytes() for p in index_copy.iterdir() if p.is_file()}
    with read_only(index_copy):
        found = run_cli("search", "What is the walrus operator?", "--index", str(index_copy), "-k", "2",
                        prefix=no_write_privilege())
        listed = run_cli("docs", "list", "--index", str(index_copy), "--json", prefix=no_write_privilege())
    assert found.returncode == 0, found.stderr
    assert "Assignment Expressions" in found.stdout
    assert listed.returncode == 0, listed.stderr
    assert sorted(Path(d["source"]).name for d in json.loads(listed.stdout)) == BUILT_DOCS
    assert {p.name: p.read_bytes() for p in index_copy.iterdir() if p.is_file()} == before


def test_a_reader_cannot_write_the_store(index_copy: Path, make_engine) -> None:
    """In-process (privileges or not): the reader's connection is opened read-only."""
    engine = make_engine()
    with engine.open_index() as index:
        assert index.store.documents()
        with pytest.raises(sqlite3.OperationalError) as caught:
            index.store.conn.execute("INSERT INTO meta(key, value) VALUES('probe', '1')")
        assert caught.value.sqlite_errorname.startswith("SQLITE_READONLY")


def test_a_write_ahead_log_that_cannot_be_read_is_named(index_copy: Path) -> None:
    """A log left by a writer that died, in a directory the reader may not write: a clear line, not stale data."""
    store = index_copy / "store.sqlite"
    leave_log = ("import os, sqlite3, sys\n"
                 "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                 "c.execute(\"INSERT INTO context_cache(key, context, created_at) VALUES ('k', 'a sentence', 0)\")\n"
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
