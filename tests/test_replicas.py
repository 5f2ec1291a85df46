"""Read replicas: two `citewise serve --read-only` processes on one index while the CLI writes it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx

from tests.samples import LIGHTHOUSE
from tests.servers import free_port, start_process, wait_ready
from tests.support import DEMO, run_cli, wait_until


def _titles(base: str) -> set[str]:
    return {d["title"] for d in httpx.get(f"{base}/v1/documents", timeout=30).json()["documents"]}


def _finds(base: str, query: str, title: str) -> bool:
    hits = httpx.post(f"{base}/v1/search", json={"query": query, "k": 3}, timeout=60).json()["hits"]
    return any(h["title"] == title for h in hits)


def test_two_replicas_follow_what_a_writer_publishes(tmp_path: Path) -> None:
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    for name in ("pep-0020.rst", "pep-0572.rst"):
        shutil.copy(DEMO / name, docs / name)
    assert run_cli("ingest", str(docs), "--index", str(index), "--quiet").returncode == 0
    ports = [free_port(), free_port()]
    env = {"CITEWISE_SERVER__PRELOAD": "false"}
    replicas: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            replicas.append(start_process(index, port, env, read_only=True))
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for base in bases:
            wait_ready(base, path="/healthz")
            assert _titles(base) == {"The Zen of Python", "Assignment Expressions"}
            refused = httpx.post(f"{base}/v1/documents", json={"documents": [{"name": "x.md", "text": "# X\n\nx"}]},
                                 timeout=30)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "read_only"

        (docs / "lighthouse.md").write_text(LIGHTHOUSE)  # the writer adds one document and removes another
        assert run_cli("ingest", str(docs), "--index", str(index), "--quiet").returncode == 0
        assert run_cli("docs", "rm", str(docs / "pep-0020.rst"), "--index", str(index)).returncode == 0

        for base in bases:  # no restart: each replica switches to what was published
            wait_until(lambda: _titles(base) == {"Assignment Expressions", "The Velmora Lighthouse"}, 60,
                       f"{base} did not follow the writer")
            assert _finds(base, "who designed the Velmora lighthouse", "The Velmora Lighthouse")
            assert not _finds(base, "beautiful is better than ugly", "The Zen of Python")
        assert not (index / "uploads").exists()  # a replica wrote nothing
    finally:
        for proc in replicas:
            proc.terminate()
            proc.wait(30)
