"""`citewise ingest --executor ray` on a real Ray cluster: a head and a second node on loopback, started once
for the module with `ray start` (usage statistics off) and stopped at its end.

Each run must store what a local ingest of the same folder stores, also when a worker is killed mid-run
(Ray restarts it and re-runs its files) or the driver is (a second run finishes the job)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest

from generate.engine import Engine
from ingest.core.settings import Settings
from tests.support import DEMO, ROOT, ids_everywhere, run_cli, stored_doc_count, wait_until
from tests.test_executors import assert_same_index, snapshot

pytestmark = pytest.mark.slow

WORKER_TITLE = "ray::PrepareWorker"  # how Ray names an actor's process


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _start_node(log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`ray start --block` on loopback with ports of its own (two nodes share this machine); ready once it says so."""
    ray = Path(sys.executable).with_name("ray")
    assert ray.exists(), "the ray executor's tests need Ray (the test extra installs it)"
    ports = _free_ports(6)
    flags = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
             "--object-store-memory=200000000", f"--node-manager-port={ports[0]}",
             f"--object-manager-port={ports[1]}", f"--dashboard-agent-listen-port={ports[2]}",
             f"--dashboard-agent-grpc-port={ports[3]}", f"--runtime-env-agent-port={ports[4]}",
             f"--metrics-export-port={ports[5]}"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    with log.open("wb") as fh:
        proc = subprocess.Popen([str(ray), "start", *args, *flags], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    wait_until(lambda: "Ray runtime started" in log.read_text(errors="replace") or proc.poll() is not None, 120,
               f"ray start {' '.join(args)}")
    assert proc.poll() is None, log.read_text(errors="replace")
    return proc


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A head and a worker node, one CPU each, so two workers run on two nodes; stopped (only these) at the end."""
    logs = tmp_path_factory.mktemp("ray-logs")
    port = _free_ports(1)[0]
    nodes = [_start_node(logs / "head.log", "--head", f"--port={port}", "--include-dashboard=false")]
    try:
        nodes.append(_start_node(logs / "node2.log", f"--address=127.0.0.1:{port}"))
        yield f"127.0.0.1:{port}"
    finally:
        for proc in reversed(nodes):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo PEPs, two of them (and a binary file named as text) under `shared/`, which workers read themselves."""
    docs = tmp_path_factory.mktemp("ray-corpus") / "docs"
    (docs / "shared").mkdir(parents=True)
    for i, pep in enumerate(sorted(DEMO.glob("*.rst"))):
        shutil.copy(pep, docs / ("shared" if i < 2 else "") / pep.name)
    (docs / "shared" / "broken.txt").write_bytes(b"\x00\x01 not text")
    return docs


@pytest.fixture(scope="module")
def local_reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same folder through the local executor: what every Ray run must store."""
    index = tmp_path_factory.mktemp("ray-local") / "index"
    result = run_cli("ingest", str(corpus), "--index", str(index), "--json")
    assert result.returncode == 1, result.stderr  # the binary file fails, the rest are ingested
    return {"summary": json.loads(result.stdout), "index": snapshot(index)}


def _ray_ingest(corpus: Path, index: Path, address: str, **popen: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "CITEWISE_INGEST__RAY_SHARED_PATHS": json.dumps([str(corpus / "shared")]),
           "CITEWISE_INGEST__COMMIT_EVERY": "1"}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", str(corpus), "--index", str(index),
                             "--ray-address", address, "--json"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    out, err = proc.communicate(timeout=600)
    assert "Traceback" not in err, err
    return proc.returncode, json.loads(out) if out.strip() else {}, err


def _workers() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and cmdline[0].startswith(WORKER_TITLE):
            found.append(proc)
    return found


def _consistent(index: Path) -> None:
    with Engine(Settings()).open_index(index) as opened:
        store, faiss, bm25 = ids_everywhere(opened)
        assert store == faiss == bm25


def test_a_two_node_cluster_stores_what_a_local_ingest_stores(ray_cluster: str, corpus: Path, tmp_path: Path,
                                                               local_reference: dict[str, Any]) -> None:
    code, summary, err = _finish(_ray_ingest(corpus, tmp_path / "index", ray_cluster))
    expected = local_reference["summary"]
    assert code == 1, err  # the same partial failure as locally
    assert summary["executor"] == "ray" and summary["ingested"] == expected["ingested"] == 7
    assert summary["chunks_added"] == expected["chunks_added"] and summary["failed"] == expected["failed"]
    nodes = {worker.split(":")[0] for worker in summary["prepared_by"]}
    assert len(nodes) == 2, summary["prepared_by"]  # both nodes prepared documents
    assert_same_index(snapshot(tmp_path / "index"), local_reference["index"])
    wait_until(lambda: not _workers(), 60, "the run's workers ended with it")


def test_a_worker_killed_mid_run_is_restarted_and_loses_nothing(ray_cluster: str, corpus: Path, tmp_path: Path,
                                                                local_reference: dict[str, Any]) -> None:
    index = tmp_path / "index"
    proc = _ray_ingest(corpus, index, ray_cluster)
    wait_until(lambda: stored_doc_count(index) >= 1 or proc.poll() is not None, 300, "a first commit")
    victims = _workers()
    assert proc.poll() is None and victims, "the run ended before a worker could be killed"
    victims[0].kill()
    code, summary, err = _finish(proc)
    assert code == 1 and summary["ingested"] == 7, err
    # The killed worker's file is prepared again by whichever worker is free (the restarted one or another), so
    # every document was prepared at least once; what matters is below: the index equals a local ingest's.
    assert sum(summary["prepared_by"].values()) >= 7, summary["prepared_by"]
    assert_same_index(snapshot(index), local_reference["index"])
    _consistent(index)


def test_a_driver_killed_mid_run_loses_nothing_and_a_second_run_finishes(
        ray_cluster: str, corpus: Path, tmp_path: Path, local_reference: dict[str, Any]) -> None:
    index = tmp_path / "index"
    proc = _ray_ingest(corpus, index, ray_cluster)
    wait_until(lambda: stored_doc_count(index) >= 1 or proc.poll() is not None, 300, "a first commit")
    proc.kill()
    proc.communicate(timeout=60)
    kept = stored_doc_count(index)
    assert 1 <= kept < 7, kept
    wait_until(lambda: not _workers(), 120, "Ray ended the killed driver's workers")
    code, summary, err = _finish(_ray_ingest(corpus, index, ray_cluster))
    assert code == 1 and summary["unchanged"] == kept and summary["ingested"] == 7 - kept, err
    assert_same_index(snapshot(index), local_reference["index"])
    _consistent(index)


def test_more_workers_than_the_cluster_has_cpus_is_refused_before_any_work(ray_cluster: str, corpus: Path,
                                                                           tmp_path: Path) -> None:
    result = run_cli("ingest", str(corpus), "--index", str(tmp_path / "index"), "--ray-address", ray_cluster,
                     env={"CITEWISE_INGEST__RAY_WORKERS": "5"})
    assert result.returncode == 2, result.stderr
    assert "ingest.ray_workers is 5 but the Ray cluster offers 2 CPUs" in result.stderr
    assert "Traceback" not in result.stderr and stored_doc_count(tmp_path / "index") == 0
