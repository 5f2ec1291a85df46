"""The `ray` executor: files are parsed, chunked, contextualized and embedded by worker actors on a Ray
cluster; the driver (`Ingestor`) commits whole documents as they come back, in input order.

Ray core actors rather than Ray Data's `map_batches`, for three reasons. The driver produces the work
lazily: it reads every file to check its content hash before anything is dispatched, and sends the
bytes of files only it can see, whereas a Ray Data source is a dataset made up front (every shipped
file would sit in the object store at once). Results must come back one whole document at a time and
in order, so commits match a local run; a bounded window over the actors gives that and backpressure.
And a file that hangs or kills a worker must cost that file alone: deadlines and retries are explicit
here, where a Ray Data task failure fails the dataset.

Ray is an optional dependency (`pip install citewise[ray]`), imported only when this executor starts,
with usage statistics off.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Iterator

from ingest.core.errors import ConfigError
from ingest.core.executor import FileJob, PreparedDocument
from ingest.core.index import WritableIndex
from ingest.core.progress import NullProgress, Progress
from ingest.core.settings import IngestSettings
from ingest.executors.ray_worker import CacheReader, PartsFactory, PrepareWorker
from ingest.pooled_parser import STUCK_GRACE_S, timeout_reason
from ingest.store.local_index import STORE

#: How long workers may take to start (import libraries, load the embedder and, in llm mode, the model).
START_TIMEOUT_S = 600.0
#: Times Ray re-runs a file whose worker died under it (a lost node, a killed process) before it fails.
TASK_RETRIES = 2
#: Files in flight per worker: one running, one waiting, so a worker never idles between files.
IN_FLIGHT = 2


def _lookup(reader: Any, keys: list[str]) -> dict[str, str]:
    import ray

    return ray.get(reader.cached_contexts.remote(keys))


def _notices_to_stderr() -> None:
    """Ray's driver prints cluster notices (such as a file retried after its worker died) to stdout, from a
    thread of its own, through `ray._private.worker.print_to_stdstream`. Stdout carries `--json` output, so
    they are sent to stderr, beside the progress bars and warnings (private API: left alone if it moved)."""
    import ray._private.worker as ray_worker

    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "to_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        original({**data, "is_err": True}, ignore_prefix)

    to_stderr.to_stderr = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_stderr


def code_root() -> Path | None:
    """The source checkout this process imports citewise from (workers on this machine import the same);
    None for an installed package, which every node then needs installed too."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else None


class RayExecutor:
    """Starts `ray_workers` actors on first use and keeps them for later runs (an API server's jobs)."""

    name = "ray"

    def __init__(self, parts: PartsFactory, settings: IngestSettings) -> None:
        self.parts = parts
        self.settings = settings
        self.shared = [Path(p).resolve() for p in settings.ray_shared_paths]
        self._ray: Any = None
        self._connected_here = False
        self._actors: list[Any] = []
        self._names: list[str] = []
        self._reader: Any = None
        self._store: str | None = None  # the index whose llm context cache the workers read
        self._context_total = 0

    def wants_bytes(self, source: str) -> bool:
        path = Path(source)
        return not any(path.is_relative_to(root) for root in self.shared)

    def use_index(self, index: WritableIndex) -> None:
        """In llm mode the workers look up cached sentences in this index (read-only, on this node)."""
        store = str(index.path / STORE) if self.settings.context_mode == "llm" else None
        if store != self._store:
            self._stop_actors()
            self._store = store

    # -- the cluster --------------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no telemetry, whoever starts Ray
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("ingest.executor is 'ray' but Ray is not installed: pip install 'citewise[ray]'") from exc
        if not ray.is_initialized():
            _notices_to_stderr()
            env = {"RAY_USAGE_STATS_ENABLED": "0"}
            root = code_root()
            if root is not None:
                env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
            address = self.settings.ray_address or None
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING, runtime_env={"env_vars": env})
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise ConfigError(f"cannot connect to {where} (setting ingest.ray_address): {exc}") from exc
            self._connected_here = True
        self._ray = ray
        return ray

    def warm_up(self, progress: Progress | None = None) -> None:
        """Start the workers now (each loads its models), so the first file does not wait for them."""
        progress = progress or NullProgress()
        if self._actors:
            return
        ray = self._connect()
        cpus = int(ray.cluster_resources().get("CPU", 0))
        workers = self.settings.ray_workers or cpus
        if workers < 1 or workers > cpus:
            raise ConfigError(f"ingest.ray_workers is {workers} but the Ray cluster offers {cpus} CPUs "
                              "(each worker takes one; 0 starts one per CPU)")
        lookup = None
        if self._store is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            self._reader = ray.remote(num_cpus=0, scheduling_strategy=here)(CacheReader).remote(self._store)
            lookup = partial(_lookup, self._reader)
        remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=TASK_RETRIES,
                            scheduling_strategy="SPREAD")(PrepareWorker)
        s = self.settings
        self._actors = [remote.remote(self.parts, s.max_file_mb, s.parse_timeout_s, lookup) for _ in range(workers)]
        progress.log(f"ray: starting {workers} workers")
        try:
            self._names = ray.get([a.ready.remote() for a in self._actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as exc:
            self._stop_actors()
            raise ConfigError(f"Ray workers did not start within {START_TIMEOUT_S:g} s") from exc
        except ray.exceptions.RayError as exc:
            self._stop_actors()
            raise ConfigError(f"a Ray worker could not start: {_last_line(exc)}") from exc
        nodes = {n.split(":")[0] for n in self._names}
        progress.log(f"ray: {workers} workers on {len(nodes)} nodes")

    def _stop_actors(self) -> None:
        if self._ray is not None:
            for actor in [*self._actors, *([self._reader] if self._reader is not None else [])]:
                self._ray.kill(actor)
        self._actors, self._names, self._reader = [], [], None

    def close(self) -> None:
        """Stop the workers; leave a Ray this process did not connect to as it was."""
        self._stop_actors()
        if self._connected_here and self._ray is not None:
            self._ray.shutdown()
        self._ray, self._connected_here = None, False

    # -- the work -----------------------------------------------------------------------------------
    def prepare(self, jobs: Iterable[FileJob], progress: Progress | None = None) -> Iterator[PreparedDocument]:
        """Keeps IN_FLIGHT files per worker, on the least busy one; yields in input order."""
        progress = progress or NullProgress()
        queue = iter(jobs)
        first = next(queue, None)
        if first is None:
            return
        self.warm_up(progress)
        load = [0] * len(self._actors)
        pending: deque[tuple[FileJob, int, Any]] = deque()
        waiting: FileJob | None = first
        while True:
            while waiting is not None and len(pending) < IN_FLIGHT * len(self._actors):
                i = load.index(min(load))
                pending.append((waiting, i, self._actors[i].prepare.remote(waiting)))
                load[i] += 1
                waiting = next(queue, None)
            if not pending:
                return
            job, i, ref = pending.popleft()
            load[i] -= 1
            prepared = self._result(job, i, ref)
            self._report(prepared, progress)
            yield prepared

    def _result(self, job: FileJob, i: int, ref: Any) -> PreparedDocument:
        ray, limit = self._ray, self.settings.parse_timeout_s + STUCK_GRACE_S
        try:
            return ray.get(ref, timeout=limit)
        except ray.exceptions.GetTimeoutError:
            # Stuck where its own alarm cannot reach: restart the worker (Ray re-runs its other files).
            ray.kill(self._actors[i], no_restart=False)
            return PreparedDocument(job.source, failure=timeout_reason(limit))
        except ray.exceptions.RayActorError as exc:
            return PreparedDocument(job.source, failure=f"the Ray worker preparing this file died "
                                                        f"({TASK_RETRIES + 1} tries): {_last_line(exc)}")
        except ray.exceptions.RayTaskError as exc:
            return PreparedDocument(job.source, failure=f"worker error: {_last_line(exc)}")

    def _report(self, prepared: PreparedDocument, progress: Progress) -> None:
        """The cluster's progress, as documents come back to the driver."""
        progress.advance("parse")
        if prepared.chunked is not None:
            n = len(prepared.chunked.chunks)
            progress.advance("chunk")
            self._context_total += n
            progress.stage("context", self._context_total)
            progress.advance("context", n)


def _last_line(exc: BaseException) -> str:
    """A remote error's last line: its message, without the remote traceback above it."""
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__
