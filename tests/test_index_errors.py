"""Index and settings failures end in one `error:` line with the right exit code and lose nothing (issue 28).

A full disk is simulated without privileges: RLIMIT_FSIZE makes writes past N bytes fail with EFBIG (with
SIGXFSZ ignored), which SQLite and FAISS meet exactly where they would meet ENOSPC.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from api.cli import main as cli_main
from ingest.core.errors import EmbedderMismatchError, IndexStateError
from ingest.pooled_parser import PooledParser
from ingest.store.local_index import LocalIndex
from tests.support import DEMO, ROOT, no_write_privilege, read_only, run_cli


def run_limited(limit: int, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI, unable to write any file past `limit` bytes."""

    def limit_writes() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, **(env or {})), timeout=600, preexec_fn=limit_writes)


def one_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The run's stderr is exactly one `error:` line (no traceback), and it exited with `code`."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def stored_sources(index: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{index / 'store.sqlite'}?mode=ro", uri=True)
    try:
        return sorted(Path(r[0]).name for r in conn.execute("SELECT source FROM documents"))
    finally:
        conn.close()


def test_disk_full_during_ingest_reports_what_was_kept(tmp_path: Path) -> None:
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    shutil.copy(DEMO / "pep-0008.rst", docs / "b.rst")  # a long document: its batch cannot fit
    env = {"CITEWISE_INGEST__COMMIT_EVERY": "1"}
    first = run_limited(150_000, "ingest", str(docs), "--index", str(index), "--quiet", env=env)
    line = one_error(first, 2)  # was: "database or disk is full", then "cannot rollback", no summary
    assert f"cannot write {index / 'store.sqlite'}" in line and "nothing of this batch of 1 document was stored" in line
    assert stored_sources(index) == []

    (docs / "a.md").write_text("# Herons\n\nHerons stand still in shallow water for a long time.\n")
    second = run_limited(150_000, "ingest", str(docs), "--index", str(index), "--quiet", env=env)
    line = one_error(second, 1)  # a.md was stored before the disk filled up: a partial run
    assert "the 1 document stored before it by this run is kept: re-run to add the rest" in line
    assert stored_sources(index) == ["a.md"]

    third = run_cli("ingest", str(docs), "--index", str(index), "--json")
    assert third.returncode == 0, third.stderr
    assert (json.loads(third.stdout)["ingested"], json.loads(third.stdout)["unchanged"]) == (1, 1)
    assert stored_sources(index) == ["a.md", "b.rst"]


def test_disk_full_while_publishing_a_removal(built_index: Path, index_copy: Path, make_engine) -> None:
    manifest = json.loads((index_copy / "manifest.json").read_text())
    faiss_size = (index_copy / manifest["faiss_file"]).stat().st_size
    source = built_index.parent / "docs" / "pep-0020.rst"
    # room for the store's small log, not for the new FAISS file
    result = run_limited(faiss_size * 2 // 3, "docs", "rm", str(source), "--index", str(index_copy))
    line = one_error(result, 1)  # was: FAISS RuntimeError traceback, though the removal took effect
    assert "cannot write" in line and ".faiss" in line and "kept in store.sqlite" in line
    assert not list(index_copy.glob("*.tmp"))  # the half-written file is gone, its space free again
    engine = make_engine()
    with engine.open_index() as index:
        assert "pep-0020.rst" not in {Path(d.source).name for d in index.documents()}
        hits = engine.searcher(index).search("Beautiful is better than ugly", k=5)
        assert hits and all(not h.chunk.source.endswith("pep-0020.rst") for h in hits)
    with engine.open_index(writable=True) as index:
        index.flush()  # the next write with room publishes the search files again
        assert index.manifest["generation"] == index.stats()["generation"]


def test_an_unwritable_index_directory_is_named(index_copy: Path, tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# Ibis\n\nThe sacred ibis probes mud for worms.\n")
    with read_only(index_copy):
        result = run_cli("ingest", str(note), "--index", str(index_copy), "--quiet", prefix=no_write_privilege())
    line = one_error(result, 2)  # was: PermissionError traceback
    assert f"cannot write to index directory {index_copy}" in line


def test_a_damaged_or_missing_manifest_is_rebuilt_by_a_writer(index_copy: Path, make_engine) -> None:
    engine = make_engine()
    with engine.open_index() as index:
        before = [h.chunk.id for h in engine.searcher(index).search("walrus operator", k=5)]
    (index_copy / "manifest.json").write_text('{"format": 1, "embed')
    result = run_cli("search", "walrus operator", "--index", str(index_copy))
    line = one_error(result, 2)  # was: JSONDecodeError traceback
    assert "manifest.json is damaged (not valid JSON" in line
    assert f"run `citewise ingest FILE --index {index_copy}`" in line

    with engine.open_index(writable=True) as index:  # what that instruction does: rebuild from the store
        assert index.manifest["generation"] == index.stats()["generation"]
        assert (index_copy / index.manifest["faiss_file"]).is_file()
    with engine.open_index() as index:
        assert [h.chunk.id for h in engine.searcher(index).search("walrus operator", k=5)] == before

    (index_copy / "manifest.json").unlink()
    with pytest.raises(IndexStateError, match="manifest.json is missing, but the documents are safe in store.sqlite"):
        engine.open_index()  # was: "no index ... run ingest first"
    other = dict(engine.embedder_info(), name="another-embedder")
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'all-MiniLM-L6-v2'"):
        LocalIndex(index_copy, other, engine.analyzer, writable=True)  # the store records its embedder
    assert not (index_copy / "manifest.json").exists()  # a refused writer wrote nothing


@pytest.mark.parametrize("size", [100_000, 50])
def test_a_damaged_store_is_named_with_what_to_do(index_copy: Path, make_engine, size: int) -> None:
    store = index_copy / "store.sqlite"
    with open(store, "r+b") as fh:
        fh.truncate(size)
    damaged = store.read_bytes()
    if size == 100_000:
        line = one_error(run_cli("docs", "list", "--index", str(index_copy)), 2)  # was: DatabaseError traceback
        assert f"{store} is damaged" in line
        assert "source of truth" in line and "restore it from a backup" in line
    engine = make_engine()
    for writable in (False, True):
        with pytest.raises(IndexStateError, match="store.sqlite is damaged .*source of truth"):
            engine.open_index(writable=writable)
    assert store.read_bytes() == damaged  # nothing was written over it


def test_a_malformed_settings_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "citewise.toml").write_text('[search]\ntop_k = 9\n[ingest\nchunk_tokens = 150\n')
    line = one_error(run_cli("config", cwd=tmp_path), 2)  # was: TOMLDecodeError traceback
    assert str(tmp_path / "citewise.toml") in line and "line 3, column 8" in line


def test_a_dropped_parser_pool_has_ended_its_manager_thread(tmp_path: Path) -> None:
    """The cause of "Exception ignored ... Bad file descriptor" after a successful ingest: a pool dropped when
    the command returned shut down in the background, racing concurrent.futures' exit hook."""
    parser = PooledParser(workers=1, timeout=60)
    (_, result), = parser.parse_many([(str(tmp_path / "a.txt"), b"Kestrels hover before they dive.", "text")])
    assert not isinstance(result, Exception)
    assert parser._pool is not None
    thread = parser._pool._executor_manager_thread
    assert thread is not None and thread.is_alive()
    del parser
    assert not thread.is_alive()


@pytest.mark.unit
def test_an_error_no_layer_translated_is_still_one_line(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The last resort in main(): type, message and where, never a traceback."""

    def command(**_: object) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/nowhere/store.sqlite")

    monkeypatch.setattr(cli_main, "app", command)
    monkeypatch.setattr(cli_main, "_register_plugins", lambda: None)
    with pytest.raises(SystemExit) as exited:
        cli_main.main()
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: FileNotFoundError: ")
    assert "/nowhere/store.sqlite" in lines[0] and "test_index_errors.py:" in lines[0]
