"""Parse in worker processes: parsing overlaps embedding, and a parser that hangs or crashes on one
file costs that file (with a stated reason), never the whole ingest."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

from ingest.core.errors import ConfigError, DocumentError
from ingest.core.parser import Parser
from ingest.parser import UnstructuredParser
from ingest.core.types import ParsedDocument

Job = tuple[str, bytes, str]  # (source, file bytes, format)
Result = ParsedDocument | DocumentError

_WORKER_PARSER: UnstructuredParser | None = None  # one per worker process, created by the initializer


def _init_worker(parent_pid: int, temp_dir: str | None = None) -> None:
    """Die with the parent: an ingest killed with SIGKILL must not leave parser processes behind.
    Temporary copies of documents go to `temp_dir` (under the index), for this process and its children."""
    global _WORKER_PARSER
    if temp_dir is not None:
        os.environ["TMPDIR"] = temp_dir
        tempfile.tempdir = temp_dir
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    # unstructured splits sentences with spaCy, whose thinc imports torch whenever it is installed: seconds of
    # every worker's start-up and about half its memory, for a parser that runs no torch model (PDFs are read
    # from their text layer). Marked absent, thinc runs its numpy ops and every format parses the same.
    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]
    _WORKER_PARSER = UnstructuredParser()


class _ParseTimeout(BaseException):  # not Exception: parsers catch those
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _ParseTimeout()


def _parse_job(job: Job, timeout: float) -> tuple[str, ParsedDocument | None, str | None]:
    """Runs in a worker, under its own alarm clock; errors travel back as text (custom exceptions
    do not pickle reliably)."""
    assert _WORKER_PARSER is not None
    return parse_with_alarm(_WORKER_PARSER, job, timeout)


def parse_with_alarm(parser: Parser, job: Job,
                     timeout: float) -> tuple[str, ParsedDocument | None, str | None]:
    """Parse under an alarm clock (the calling thread must be the main thread); any failure becomes a reason."""
    source, data, fmt = job
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return source, parser.parse(source, data, fmt), None
    except DocumentError as exc:
        return source, None, exc.reason
    except _ParseTimeout:
        return source, None, timeout_reason(timeout)
    except Exception as exc:  # any parser bug becomes this file's failure, not the run's
        return source, None, f"parser error: {type(exc).__name__}: {str(exc)[:300]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def timeout_reason(timeout: float) -> str:
    return f"parser timed out after {timeout:g} s (setting ingest.parse_timeout_s)"


#: Extra seconds the main process waits beyond the per-file limit (worker start-up, imports) before
#: it concludes a worker is stuck in native code, where the worker's own alarm cannot interrupt it.
STUCK_GRACE_S = 120.0


class PooledParser:
    """Runs UnstructuredParser in `workers` processes, results in input order, `timeout` seconds per file."""

    def __init__(self, workers: int = 2, timeout: float = 300.0) -> None:
        self.workers = workers
        self.timeout = timeout
        self._temp_dir: str | None = None
        self._pool: cf.ProcessPoolExecutor | None = None
        self._killed: list[cf.ProcessPoolExecutor] = []  # pools whose workers were killed, not yet joined

    def use_temp_dir(self, path: Path) -> None:
        """Workers keep temporary copies of documents under `path` (see UnstructuredParser.use_temp_dir);
        running workers that were told another folder are replaced."""
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if str(path) != self._temp_dir:
            self.close()
            self._temp_dir = str(path)

    def _start(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")  # never fork a process holding torch threads
            try:
                self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                                    initargs=(os.getpid(), self._temp_dir))
            except OSError as exc:
                raise ConfigError(f"cannot start parser processes ({exc}); set ingest.parse_workers = 0 "
                                  "(CITEWISE_INGEST__PARSE_WORKERS=0) to parse in-process") from exc
        return self._pool

    def _kill(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        self._killed.append(pool)

    def close(self) -> None:
        """Stop the workers and wait for each pool's manager thread to end.

        A pool left to interpreter exit, or dropped just before it, races its manager thread's closing of
        a wake-up pipe against concurrent.futures' exit hook, which then writes to the closed pipe and
        prints "Exception ignored ... Bad file descriptor" after a run that succeeded.
        """
        pools, self._killed = [*self._killed, *([self._pool] if self._pool else [])], []
        self._pool = None
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)

    def __del__(self) -> None:
        self.close()  # the CLI drops its components when a command returns: the pool must end with them

    def _alone(self, job: Job) -> Result:
        source = job[0]
        try:
            future = self._start().submit(_parse_job, job, self.timeout)
            _, doc, reason = future.result(timeout=self.timeout + STUCK_GRACE_S)
            return doc if doc is not None else DocumentError(source, reason or "parse failed")
        except cf.TimeoutError:
            failure = timeout_reason(self.timeout + STUCK_GRACE_S)
        except cf.process.BrokenProcessPool:
            failure = "the parser process crashed on this file"
        self._kill()
        return DocumentError(source, failure)

    def parse(self, source: str, data: bytes, fmt: str) -> ParsedDocument:
        (_, result), = self.parse_many([(source, data, fmt)])
        if isinstance(result, DocumentError):
            raise result
        return result

    def parse_many(self, jobs: Iterable[Job]) -> Iterator[tuple[str, Result]]:
        """Keeps a few files in flight per worker; a timeout or a dead worker restarts the pool."""
        pending: deque[tuple[Job, cf.Future[tuple[str, ParsedDocument | None, str | None]]]] = deque()
        queue = iter(jobs)
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * self.workers:
                job = next(queue, None)
                if job is None:
                    exhausted = True
                    break
                pending.append((job, self._start().submit(_parse_job, job, self.timeout)))
            if not pending:
                return
            job, future = pending.popleft()
            source = job[0]
            try:
                _, doc, reason = future.result(timeout=self.timeout + STUCK_GRACE_S)
                yield source, doc if doc is not None else DocumentError(source, reason or "parse failed")
                continue
            except cf.TimeoutError:
                self._kill()
                yield source, DocumentError(source, timeout_reason(self.timeout + STUCK_GRACE_S))
            except cf.process.BrokenProcessPool:
                # Every in-flight file fails with a dead worker; parse this one alone to know if it was the cause.
                self._kill()
                yield source, self._alone(job)
            retry = [j for j, _ in pending]
            pending.clear()
            for j in retry:  # innocent files that were in flight go again on a fresh pool
                pending.append((j, self._start().submit(_parse_job, j, self.timeout)))
