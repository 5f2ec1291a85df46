"""`citewise eval bench-api`: what the HTTP API adds over the in-process path, and search under load.

The server is a real `citewise serve` process on loopback, with the same settings and index as the
in-process path measured beside it. Reports alternate between the two paths on the same claims, so
each path's writer has the same KV cache state (the previous claim's prompt) when a claim starts.
Search runs the same queries in process, through one HTTP client, and through N concurrent clients.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from generate.engine import Engine
from generate.task import Task
from ingest.core.settings import Settings
from eval.datasets import BeirDataset
from eval.environment import environment
from eval.index_cache import prepared_index
from eval.metrics import percentiles
from ingest.core.errors import ConfigError
from ingest.core.progress import NullProgress, Progress

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float]) -> dict[str, float]:
    spread = {key: round(v, 2) for key, v in percentiles(values).items()}
    return {**spread, "mean": round(statistics.fmean(values), 2), "n": len(values)}


class ServerProcess:
    """`citewise serve` on a free loopback port, stopped on exit."""

    def __init__(self, index: Path) -> None:
        self.port = _port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--index", str(index), "--port",
                                      str(self.port)], cwd=ROOT, env=dict(os.environ),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self) -> ServerProcess:
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError(f"citewise serve exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(self.base + "/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise ConfigError("citewise serve was not ready within 300 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench_api(dataset_dir: Path, settings: Settings, out_root: Path, reports: int = 5, searches: int = 400,
              clients: int = 8, k: int = 10, progress: Progress | None = None,
              log: Callable[[dict[str, Any]], None] | None = None, split: str = "train") -> dict[str, Any]:
    progress = progress or NullProgress()
    log = log or (lambda row: None)
    comps = Engine(settings)
    ds = BeirDataset.load(dataset_dir, split)
    docs = ds.documents()
    index_path = prepared_index(comps, out_root, f"beir-{ds.name}-{ds.fingerprint()}",
                                lambda ix: comps.ingestor(ix, progress).ingest_documents(docs))
    claims = list(ds.queries.values())
    load_start = os.getloadavg()[0]
    with comps.open_index(index_path) as index, ServerProcess(index_path) as server, \
            httpx.Client(base_url=server.base, timeout=600) as client:
        researcher = comps.researcher(index)
        researcher.warm_up()
        searcher = comps.searcher(index)

        progress.stage("reports", 2 * reports)
        report_rows = []
        for i, claim in enumerate(claims[:reports]):
            row: dict[str, Any] = {"claim": claim}
            for path in (("direct", "api") if i % 2 == 0 else ("api", "direct")):
                t0 = time.perf_counter()
                if path == "direct":
                    total = researcher.run(claim, Task.CHECK).timings["total_s"]
                else:
                    resp = client.post("/v1/reports", json={"question": claim, "check": True})
                    resp.raise_for_status()
                    total = resp.json()["timings"]["total_s"]
                row[f"{path}_wall_s"] = round(time.perf_counter() - t0, 3)
                row[f"{path}_report_s"] = total
                progress.advance("reports")
            row["overhead_s"] = round(row["api_wall_s"] - row["direct_wall_s"], 3)
            row["api_outside_report_s"] = round(row["api_wall_s"] - row["api_report_s"], 3)
            report_rows.append(row)
            log({"kind": "report", **row})

        queries = [claims[i % len(claims)] for i in range(searches)]
        progress.stage("search", 3 * searches)
        for q in queries[:10]:  # warm both paths
            searcher.search(q, k)
            client.post("/v1/search", json={"query": q, "k": k})
        direct_ms = []
        for q in queries:
            t0 = time.perf_counter()
            searcher.search(q, k)
            direct_ms.append((time.perf_counter() - t0) * 1000)
            progress.advance("search")
        single_ms = []
        for q in queries:
            t0 = time.perf_counter()
            client.post("/v1/search", json={"query": q, "k": k}).raise_for_status()
            single_ms.append((time.perf_counter() - t0) * 1000)
            progress.advance("search")
        concurrent_ms, wall = _concurrent(server.base, queries, clients, k, progress)

    reports_summary = {
        "direct_wall_s": statistics.median(r["direct_wall_s"] for r in report_rows),
        "api_wall_s": statistics.median(r["api_wall_s"] for r in report_rows),
        "overhead_s": statistics.median(r["overhead_s"] for r in report_rows),
        "api_outside_report_s": statistics.median(r["api_outside_report_s"] for r in report_rows),
    }
    return {"kind": "bench-api", "dataset": str(dataset_dir), "split": split, "index": str(index_path), "k": k,
            "reports": report_rows, "reports_median": reports_summary,
            "search": {"direct_ms": _pct(direct_ms), "http_1_client_ms": _pct(single_ms),
                       f"http_{clients}_clients_ms": _pct(concurrent_ms), "clients": clients,
                       "http_concurrent_requests_per_s": round(len(queries) / wall, 1)},
            "load_average": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2),
                             "cores": os.cpu_count()},
            "environment": environment(settings)}


def _concurrent(base: str, queries: list[str], clients: int, k: int,
                progress: Progress) -> tuple[list[float], float]:
    """Each client its own connection, taking the next query as soon as its last answer arrives."""
    times: list[float] = []
    lock = threading.Lock()
    pending = iter(queries)
    failures: list[str] = []

    def client_loop() -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            while True:
                with lock:
                    q = next(pending, None)
                if q is None:
                    return
                t0 = time.perf_counter()
                resp = c.post("/v1/search", json={"query": q, "k": k})
                took = (time.perf_counter() - t0) * 1000
                with lock:
                    times.append(took)
                    if resp.status_code != 200:
                        failures.append(f"{resp.status_code}: {resp.text[:200]}")
                progress.advance("search")

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise ConfigError(f"{len(failures)} searches failed under load, e.g. {failures[0]}")
    return times, wall


def bench_api_markdown(r: dict[str, Any]) -> str:
    m, s = r["reports_median"], r["search"]
    clients = s["clients"]
    lines = [f"# API overhead and search under load ({r['dataset']})", "",
             f"Reports: {len(r['reports'])} SciFact claims checked in process and through `POST /v1/reports` on a "
             "`citewise serve` process (alternating order).", "",
             "| claim | in process (s) | HTTP API (s) | API - in process (s) | API wall - its report's total (s) |",
             "|---|---|---|---|---|"]
    for row in r["reports"]:
        lines.append(f"| {row['claim'][:60]} | {row['direct_wall_s']} | {row['api_wall_s']} | {row['overhead_s']} | "
                     f"{row['api_outside_report_s']} |")
    lines += [f"| **median** | {m['direct_wall_s']} | {m['api_wall_s']} | {m['overhead_s']} | "
              f"{m['api_outside_report_s']} |", "",
              f"Search (k={r['k']}, {s['direct_ms']['n']} queries per path):", "",
              "| path | p50 ms | p95 ms | mean ms |", "|---|---|---|---|"]
    for key, label in (("direct_ms", "in process"), ("http_1_client_ms", "HTTP, 1 client"),
                       (f"http_{clients}_clients_ms", f"HTTP, {clients} concurrent clients")):
        v = s[key]
        lines.append(f"| {label} | {v['p50']} | {v['p95']} | {v['mean']} |")
    la = r["load_average"]
    lines += ["", f"{clients} clients: {s['http_concurrent_requests_per_s']} requests/s in all. Load average "
              f"{la['start']} at start, {la['end']} at end, on {la['cores']} cores.", ""]
    return "\n".join(lines)
