"""Upload jobs: staged files moved into the index's `uploads/` folder and ingested, one job at a time.

A job's files are staged under `uploads/.staging/JOB/` before the job is recorded, so an accepted
upload survives a crash; the job moves each into `uploads/` and ingests them. Ingest is incremental,
so retrying an interrupted job redoes only what did not finish.

A file that ingest refuses (it passed the upload check but parses to nothing, say) is removed from
`uploads/` again, since no API could reach it there; the job's result keeps the reason. An earlier
upload of the same name is set aside under `.staging/JOB/.previous/` rather than overwritten, and
put back when the new version fails, so its document stays indexed and its file stays in place; it
is dropped once the new version ingests. A job that fails as a whole (or is interrupted) leaves its
files where they are for a retry.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

from api.errors import error_of
from api.job_store import Job, JobStore
from ingest.core.errors import InvalidRequestError, NotFoundError

log = logging.getLogger("citewise.jobs")

#: Runs one ingest of these files, reporting progress; returns the summary as a dict.
IngestFn = Callable[[list[Path], "JobProgress"], dict[str, Any]]
RETRYABLE = ("interrupted", "failed")
PREVIOUS = ".previous"  # upload names never start with a dot (see api.uploads.safe_name)


class JobProgress:
    """The pipeline's Progress seam, written to the job record at most twice a second."""

    def __init__(self, store: JobStore, job_id: str, every_s: float = 0.5) -> None:
        self.store = store
        self.job_id = job_id
        self.every_s = every_s
        self.stages: dict[str, dict[str, int | None]] = {}
        self._last = 0.0

    def stage(self, name: str, total: int | None) -> None:
        self.stages.setdefault(name, {"done": 0, "total": total})["total"] = total
        self._save(force=True)

    def advance(self, name: str, n: int = 1) -> None:
        entry = self.stages.setdefault(name, {"done": 0, "total": None})
        entry["done"] = int(entry["done"] or 0) + n
        self._save()

    def log(self, message: str) -> None:
        log.info("job %s: %s", self.job_id, message)

    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            self.store.update(self.job_id, progress=self.stages)


class IngestJobs:
    """Owns the job worker thread; the HTTP layer only submits, reads and retries."""

    def __init__(self, store: JobStore, index_dir: Path, ingest: IngestFn,
                 on_finished: Callable[[Job], None] | None = None) -> None:
        self.store = store
        self.uploads = index_dir / "uploads"
        self.ingest = ingest
        self.on_finished = on_finished or (lambda job: None)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def staging_dir(self, job_id: str) -> Path:
        return self.uploads / ".staging" / job_id

    def start(self) -> list[str]:
        """Mark what a previous server left unfinished as interrupted, drop orphaned staging, start the worker."""
        interrupted = self.store.interrupt_unfinished()
        staging = self.uploads / ".staging"
        if staging.is_dir():
            for folder in staging.iterdir():
                if not self.store.known(folder.name):  # staged, but the job was never recorded
                    shutil.rmtree(folder, ignore_errors=True)
        self._thread = threading.Thread(target=self._work, name="citewise-ingest-jobs", daemon=True)
        self._thread.start()
        return interrupted

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def submit(self, job_id: str, names: list[str]) -> Job:
        """Record a job whose files are already in `staging_dir(job_id)`, and queue it."""
        files = [{"name": n, "staged": str(Path("uploads/.staging") / job_id / n), "path": str(Path("uploads") / n)}
                 for n in names]
        job = self.store.create(job_id, files)
        self._queue.put(job_id)
        return job

    def retry(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        if job.state not in RETRYABLE:
            raise InvalidRequestError(f"job {job_id} is {job.state}; only {' or '.join(RETRYABLE)} jobs can be retried")
        self.store.update(job_id, state="queued", error=None, note="retried")
        self._queue.put(job_id)
        return self.store.get(job_id) or job

    def pending(self) -> int:
        return self._queue.qsize()

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            self._run(job_id)

    def _run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.state != "queued":
            return
        self.store.update(job_id, state="running")
        try:
            paths = [self._install(job_id, f) for f in job.files]
            progress = JobProgress(self.store, job_id)
            result = self.ingest(paths, progress)
            self._settle(job_id, job.files, paths, result)
            self.store.update(job_id, state="done", result=result, progress=progress.stages)
            shutil.rmtree(self.staging_dir(job_id), ignore_errors=True)
        except Exception as exc:  # the job records what went wrong; the worker goes on with the next job
            log.warning("job %s failed: %s", job_id, exc)
            self.store.update(job_id, state="failed", error=error_of(exc)["error"])
        finished = self.store.get(job_id)
        if finished is not None:
            self.on_finished(finished)

    def _previous(self, job_id: str, name: str) -> Path:
        return self.staging_dir(job_id) / PREVIOUS / name

    def _install(self, job_id: str, f: dict[str, Any]) -> Path:
        """Move a staged file into `uploads/`, setting aside what it replaces. Each step is one rename on
        one file system, so a retry after a crash finds every file either staged or in place."""
        root = self.uploads.parent
        staged, final = root / f["staged"], root / f["path"]
        if staged.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                previous = self._previous(job_id, f["name"])
                previous.parent.mkdir(parents=True, exist_ok=True)
                os.replace(final, previous)
            os.replace(staged, final)
        if not final.exists():
            raise NotFoundError(f"{f['name']}: the uploaded file is gone from {final.parent}; upload it again")
        return final

    def _settle(self, job_id: str, files: list[dict[str, Any]], paths: list[Path], result: dict[str, Any]) -> None:
        """Remove each file ingest refused (putting back the upload it replaced), noting it in `result`."""
        refused: dict[Path, dict[str, Any]] = {}
        for key in ("failed", "skipped"):
            for entry in result.get(key) or []:
                refused.setdefault(Path(str(entry.get("path", ""))).resolve(), entry)
        for f, final in zip(files, paths):
            entry = refused.get(final.resolve())
            if entry is None:
                continue
            previous = self._previous(job_id, f["name"])
            if previous.exists():
                os.replace(previous, final)
                note = (f"not kept: {f['path']} is the earlier upload of this name again, and its document (if it "
                        "was indexed) is unchanged")
            else:
                final.unlink(missing_ok=True)
                note = f"not kept: removed from {Path(f['path']).parent}/"
            entry.update(name=f["name"], removed=True, note=note)
