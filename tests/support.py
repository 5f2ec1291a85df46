"""Plain helpers every kind of test shares: where things are, the real CLI in a subprocess, waiting for a
condition, and looking at an index from outside (its SQLite store, its derived files, its permissions)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

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
