"""SIGKILL a real `citewise ingest` at several points: the index keeps whole documents or nothing."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO, ROOT

ENV = {"CITEWISE_INGEST__COMMIT_EVERY": "3"}


def _corpus(folder: Path) -> Path:
    folder.mkdir()
    for pep in sorted(DEMO.glob("*.rst")):
        shutil.copy(pep, folder / pep.name)
    for i in range(24):
        (folder / f"note-{i:02d}.md").write_text(
            f"# Field note {i}\n\n## Observation\n\nSpecimen {i} was seen near marker {i * 7} at dawn.\n\n"
            f"## Weather\n\nWind from the {['north', 'south', 'east', 'west'][i % 4]} at {i + 3} knots.\n")
    return folder


def _start(docs: Path, index: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, **ENV)
    return subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", str(docs), "--index", str(index), "--quiet"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stored_docs(index: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{index / 'store.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_when(proc: subprocess.Popen[bytes], index: Path, min_docs: int, delay: float) -> list[int]:
    """Kill the ingest once it stored min_docs (plus delay); returns the pids of its child processes."""
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if _stored_docs(index) >= min_docs:
            break
        time.sleep(0.05)
    time.sleep(delay)
    children = _children(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return children


def _snapshot(comps_factory, index_path: Path) -> dict[str, list[str]] | None:
    """Per-document chunk texts, after checking store, FAISS and BM25 agree exactly."""
    if not (index_path / "manifest.json").exists():
        return None
    comps = comps_factory()
    with comps.open_index(index_path) as index:
        store_ids = set(index.store.chunk_ids().tolist())
        assert set(index.faiss.ids().tolist()) == store_ids, "orphan or missing vectors"
        assert set(index.bm25._ids.tolist()) == store_ids, "BM25 out of step with the store"
        rows = index.chunks(sorted(store_ids))
        out: dict[str, list[str]] = {}
        for doc in index.store.documents():
            texts = [r.text for r in sorted((r for r in rows.values() if r.doc_id == doc.id), key=lambda r: r.ordinal)]
            assert texts, f"document {doc.source} has no chunks"
            out[Path(doc.source).name] = texts
        return out


@pytest.mark.slow
def test_sigkill_at_several_points_keeps_the_index_consistent(tmp_path: Path, make_components) -> None:
    docs = _corpus(tmp_path / "docs")
    reference_index = tmp_path / "reference"
    done = _start(docs, reference_index)
    assert done.wait(timeout=600) == 0, done.stderr.read() if done.stderr else ""
    reference = _snapshot(make_components, reference_index)
    assert reference is not None and len(reference) == 31

    index = tmp_path / "killed"
    children: list[int] = []
    # Kill during start-up, after the first batch, mid-run, and as the last batch lands (publish).
    for min_docs, delay in [(0, 0.5), (1, 0.0), (12, 0.3), (31, 0.0)]:
        proc = _start(docs, index)
        children += _kill_when(proc, index, min_docs, delay)
        snap = _snapshot(make_components, index)
        if snap is not None:
            for name, texts in snap.items():
                assert texts == reference[name], f"{name} is only partly stored"

    finish = _start(docs, index)
    assert finish.wait(timeout=600) == 0, finish.stderr.read() if finish.stderr else ""
    assert _snapshot(make_components, index) == reference
    leftovers = [p.name for p in index.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.2)
    assert children, "the killed ingests had no parser processes to check"
    assert not [pid for pid in children if _alive(pid)], "parser processes outlived the killed ingest"
