"""SIGKILL a real `citewise ingest` at several points: the index keeps whole documents or nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from generate.engine import Engine
from tests.support import DEMO, ROOT, ids_everywhere, stored_doc_count, wait_until

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
    wait_until(lambda: proc.poll() is not None or stored_doc_count(index) >= min_docs, 600,
               f"the ingest neither stored {min_docs} documents nor ended", interval=0.05)
    time.sleep(delay)
    children = _children(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return children


def _snapshot(make_engine: Callable[..., Engine], index_path: Path) -> dict[str, list[str]] | None:
    """Per-document chunk texts, after checking store, FAISS and BM25 agree exactly."""
    if not (index_path / "manifest.json").exists():
        return None
    engine = make_engine()
    with engine.open_index(index_path) as index:
        store_ids, faiss_ids, bm25_ids = ids_everywhere(index)
        assert faiss_ids == store_ids, "orphan or missing vectors"
        assert bm25_ids == store_ids, "BM25 out of step with the store"
        rows = index.chunks(sorted(store_ids))
        out: dict[str, list[str]] = {}
        for doc in index.documents():
            texts = [r.text for r in sorted((r for r in rows.values() if r.doc_id == doc.id), key=lambda r: r.ordinal)]
            assert texts, f"document {doc.source} has no chunks"
            out[Path(doc.source).name] = texts
        return out


@pytest.mark.slow
def test_sigkill_at_several_points_keeps_the_index_consistent(tmp_path: Path, make_engine) -> None:
    docs = _corpus(tmp_path / "docs")
    reference_index = tmp_path / "reference"
    done = _start(docs, reference_index)
    assert done.wait(timeout=600) == 0, done.stderr.read() if done.stderr else ""
    reference = _snapshot(make_engine, reference_index)
    assert reference is not None and len(reference) == 31

    index = tmp_path / "killed"
    children: list[int] = []
    # Kill during start-up, after the first batch, mid-run, and as the last batch lands (publish).
    for min_docs, delay in [(0, 0.5), (1, 0.0), (12, 0.3), (31, 0.0)]:
        proc = _start(docs, index)
        children += _kill_when(proc, index, min_docs, delay)
        snap = _snapshot(make_engine, index)
        if snap is not None:
            for name, texts in snap.items():
                assert texts == reference[name], f"{name} is only partly stored"

    finish = _start(docs, index)
    assert finish.wait(timeout=600) == 0, finish.stderr.read() if finish.stderr else ""
    assert _snapshot(make_engine, index) == reference
    leftovers = [p.name for p in index.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert children, "the killed ingests had no parser processes to check"
    wait_until(lambda: not any(_alive(pid) for pid in children), 60,
               "parser processes outlived the killed ingest", interval=0.2)
