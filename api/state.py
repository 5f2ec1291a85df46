"""Everything one server process shares: the engine, the read-side index, the report queue, ingest jobs, metrics."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

from api.generation_queue import GenerationQueue, Ticket
from api.ingest_jobs import IngestJobs, JobProgress
from api.job_store import Job, JobStore
from api.metrics import ApiMetrics
from api.report_runner import ReportRunner
from generate.engine import Engine
from generate.report import Report
from generate.researcher import Researcher
from ingest.core.errors import QueueFullError, ReadOnlyError
from ingest.core.settings import Settings
from ingest.store.local_index import MANIFEST, LocalIndex
from retrieval.searcher import Searcher

log = logging.getLogger("citewise.api")


class AppState:
    """Built once per app. The searcher and the researcher are built once over the read-side index and
    shared by every request; their models load in the background at start-up (see `readiness`)."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or Engine(settings)
        self.index_dir = Path(settings.index.path)
        self.write_lock = threading.Lock()  # one writer in this process (the index's file lock guards others)
        self._reader: LocalIndex | None = None
        self._read_lock = threading.Lock()
        self.queue = GenerationQueue(settings.server.queue_size)
        self.jobs = IngestJobs(JobStore(self.index_dir / "jobs.sqlite", read_only=settings.server.read_only),
                               self.index_dir, self._ingest, self._job_finished)
        self.metrics = ApiMetrics(self.queue, self.jobs.pending)
        self.runner = ReportRunner(self.queue, self.researcher, self._report_finished)
        self.loading: dict[str, str] = {}
        self._preload_lock = threading.Lock()
        self._preloading = False

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return self.settings.server.read_only

    def require_writer(self, what: str) -> None:
        """Refuse a write on a read replica, naming what was asked."""
        if self.read_only:
            raise ReadOnlyError(f"this server is a read-only replica of {self.index_dir}; {what} goes to the "
                                "index's writer (a writable `citewise serve` or `citewise ingest`)")

    def start(self) -> None:
        if self.read_only:  # a replica runs no ingest jobs: the writer owns them and their uploads
            if self.settings.server.preload:
                self.start_preload()
            return
        interrupted = self.jobs.start()
        if interrupted:
            log.warning("ingest jobs interrupted by the last shutdown: %s", ", ".join(interrupted))
        if self.settings.server.preload:
            self.start_preload()

    def close(self) -> None:
        self.jobs.stop()  # a no-op where it never started (a replica)
        self.runner.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self.jobs.store.close()
        self.engine.close()

    def start_preload(self) -> None:
        with self._preload_lock:
            if self._preloading:
                return
            self._preloading = True
        threading.Thread(target=self._preload, name="citewise-preload", daemon=True).start()

    def _preload(self) -> None:
        """Open the index and load every model the search and report paths use, recording each for /readyz.

        What is loaded is asked of the built searcher and researcher, so it is what requests will use."""
        steps: dict[str, Callable[[], Any]] = {"index": self.reader}
        try:
            self.reader()
            steps.update(self.engine.warm_up_parts(self.reader()))
        except Exception:  # recorded below, when the index step runs again
            pass
        for name in steps:
            self.loading.setdefault(name, "loading")  # a retry keeps showing the last failure until it passes
        for name, load in steps.items():
            if self.loading[name] == "ready":
                continue
            try:
                load()
                self.loading[name] = "ready"
            except Exception as exc:  # shown by /readyz; requests that need it fail with the same error
                if self.loading[name] != f"failed: {exc}":
                    log.warning("could not load %s: %s", name, exc)
                self.loading[name] = f"failed: {exc}"
        with self._preload_lock:
            self._preloading = False

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Ready when every part loaded. A probe starts loading (preload off) or retries what failed
        (an index busy with a CLI ingest at start-up, a model file put in place later)."""
        if not self.loading:
            self.start_preload()
            return False, {"models": "loading"}
        ok = all(v == "ready" for v in self.loading.values())
        if not ok and any(v.startswith("failed") for v in self.loading.values()):
            self.start_preload()
        return ok, dict(self.loading)

    # -- shared parts ---------------------------------------------------------------------------
    def reader(self) -> LocalIndex:
        """The read-side index, created empty on first use so a new server can take uploads at once."""
        with self._read_lock:
            if self._reader is None:
                if not (self.index_dir / MANIFEST).exists() and not self.read_only:
                    with self.write_lock, self.engine.open_index(writable=True):
                        pass
                self._reader = self.engine.open_index()
            return self._reader

    def searcher(self) -> Searcher:
        return self.engine.searcher(self.reader())

    def researcher(self) -> Researcher:
        return self.engine.researcher(self.reader())

    def admit(self) -> Ticket:
        """A place in the report queue, or 429 (counted)."""
        try:
            return self.runner.admit()
        except QueueFullError:
            self.metrics.rejected.inc()
            raise

    # -- callbacks ------------------------------------------------------------------------------
    def _ingest(self, paths: list[Path], progress: JobProgress) -> dict[str, Any]:
        reader = self.reader()  # its trained vectors catch up in memory too, so its searches do not encode again
        with self.write_lock, self.engine.open_index(writable=True) as idx:
            return self.engine.ingest(idx, paths, progress, reader).to_dict()

    def _job_finished(self, job: Job) -> None:
        self.metrics.job(job.state, job.result)

    def _report_finished(self, outcome: str, report: Report | None) -> None:
        self.metrics.report(outcome, report.tokens if report else None)
