"""Everything one server process shares: models, the read-side index, the report queue, ingest jobs, metrics."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from api.components import Components
from api.generation_queue import GenerationQueue, Ticket
from api.ingest_jobs import IngestJobs, JobProgress
from api.job_store import Job, JobStore
from api.metrics import ApiMetrics
from api.options import validated
from api.report_runner import ReportRunner
from api.settings import Settings
from generate.report import Report
from generate.research import Researcher
from generate.settings import ResearchSettings
from ingest.errors import InvalidRequestError, QueueFullError
from ingest.store.local_index import MANIFEST, LocalIndex
from retrieval.token_encoder import late_token_encoder

log = logging.getLogger("citewise.api")


class AppState:
    """Built once per app. Heavy parts load in the background at start-up (see `readiness`)."""

    def __init__(self, settings: Settings, components: Components | None = None) -> None:
        self.settings = settings
        self.components = components or Components(settings)
        self.index_dir = Path(settings.index.path)
        self.write_lock = threading.Lock()  # one writer in this process (the index's file lock guards others)
        self._reader: LocalIndex | None = None
        self._read_lock = threading.Lock()
        self.queue = GenerationQueue(settings.server.queue_size)
        self.jobs = IngestJobs(JobStore(self.index_dir / "jobs.sqlite"), self.index_dir, self._ingest,
                               self._job_finished)
        self.metrics = ApiMetrics(self.queue, self.jobs.pending)
        self.runner = ReportRunner(self.queue, self.researcher, self._report_finished)
        self.loading: dict[str, str] = {}
        self._preload_lock = threading.Lock()
        self._preloading = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        interrupted = self.jobs.start()
        if interrupted:
            log.warning("ingest jobs interrupted by the last shutdown: %s", ", ".join(interrupted))
        if self.settings.server.preload:
            self.start_preload()

    def close(self) -> None:
        self.jobs.stop()
        self.runner.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self.jobs.store.close()

    def start_preload(self) -> None:
        with self._preload_lock:
            if self._preloading:
                return
            self._preloading = True
        threading.Thread(target=self._preload, name="citewise-preload", daemon=True).start()

    def _preload(self) -> None:
        """Open the index and load every model a report needs, recording each outcome for /readyz."""
        c = self.components
        steps = {"index": self.reader, "embedder": lambda: c.embedder.embed(["ready"]),
                 "writer": lambda: c.writer_model.count_tokens("ready")}
        if self.settings.research.plan != "never":
            steps["planner"] = lambda: c.fast_model.count_tokens("ready")
        if "late" in (self.settings.research.rerank or self.settings.search.rerank.stages):
            steps["reranker"] = lambda: late_token_encoder(c.embedder, self.settings.search.rerank.late_tokens
                                                           ).token_vectors(["ready"])
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
                if not (self.index_dir / MANIFEST).exists():
                    with self.write_lock, self.components.open_index(writable=True):
                        pass
                self._reader = self.components.open_index()
            return self._reader

    def researcher(self, options: dict[str, Any] | None = None) -> Researcher:
        research: ResearchSettings | None = None
        if options:
            # model_copy(update=...) checks no bound: the merged settings are validated as a whole.
            research = validated(ResearchSettings, {**self.settings.research.model_dump(), **options}, "options",
                                 InvalidRequestError)
        return self.components.researcher(self.reader(), research)

    def admit(self) -> Ticket:
        """A place in the report queue, or 429 (counted)."""
        try:
            return self.runner.admit()
        except QueueFullError:
            self.metrics.rejected.inc()
            raise

    # -- callbacks ------------------------------------------------------------------------------
    def _ingest(self, paths: list[Path], progress: JobProgress) -> dict[str, Any]:
        with self.write_lock, self.components.open_index(writable=True) as idx:
            return self.components.ingestor(idx, progress).ingest_paths(paths).to_dict()

    def _job_finished(self, job: Job) -> None:
        self.metrics.job(job.state, job.result)

    def _report_finished(self, outcome: str, report: Report | None) -> None:
        self.metrics.report(outcome, report.tokens if report else None)
