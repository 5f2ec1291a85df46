"""Ingest jobs in a small SQLite file beside the index, so a restart cannot lose one silently."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

UNFINISHED = ("queued", "running")
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    files TEXT NOT NULL, progress TEXT NOT NULL, result TEXT, error TEXT, note TEXT
)"""


@dataclass
class Job:
    """One upload's ingest: queued -> running -> done | failed; `interrupted` when the server stopped mid-way."""

    id: str
    state: str
    created: float
    updated: float
    files: list[dict[str, Any]] = field(default_factory=list)  # name, staged, path (relative to the index)
    progress: dict[str, dict[str, int | None]] = field(default_factory=dict)  # stage -> done, total
    result: dict[str, Any] | None = None  # the ingest summary, file by file where something went wrong
    error: dict[str, str] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_job_id() -> str:
    return secrets.token_hex(8)


class JobStore:
    """Every change is one committed statement: what a crash leaves is a job in its last recorded state."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        """`read_only` (a replica) shows the writer's jobs if its file exists, and writes nothing."""
        self.path = path
        self._lock = threading.Lock()
        if read_only:
            uri = f"file:{path}?mode=ro" if path.is_file() else "file::memory:"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            if not path.is_file():
                self._conn.execute(SCHEMA)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(SCHEMA)

    def create(self, job_id: str, files: list[dict[str, Any]]) -> Job:
        now = time.time()
        job = Job(job_id, "queued", now, now, files)
        with self._lock:
            self._conn.execute("INSERT INTO jobs (id, state, created, updated, files, progress) VALUES (?,?,?,?,?,?)",
                               (job.id, job.state, now, now, json.dumps(files), "{}"))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._conn.execute("SELECT id, state, created, updated, files, progress, result, error, note "
                                     "FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def recent(self, limit: int = 50) -> list[Job]:
        with self._lock:
            rows = self._conn.execute("SELECT id, state, created, updated, files, progress, result, error, note "
                                      "FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [_job(r) for r in rows]

    def update(self, job_id: str, **changes: Any) -> None:
        cols = []
        values: list[Any] = []
        for key, value in changes.items():
            if key not in {"state", "files", "progress", "result", "error", "note"}:
                raise ValueError(f"unknown job field {key}")
            cols.append(f"{key} = ?")
            values.append(value if key in {"state", "note"} else json.dumps(value))
        with self._lock:
            self._conn.execute(f"UPDATE jobs SET {', '.join(cols)}, updated = ? WHERE id = ?",
                               (*values, time.time(), job_id))

    def interrupt_unfinished(self) -> list[str]:
        """Jobs a previous server left queued or running: marked interrupted, with how to finish them."""
        with self._lock:
            ids = [r[0] for r in self._conn.execute(
                f"SELECT id FROM jobs WHERE state IN ({','.join('?' * len(UNFINISHED))})", UNFINISHED)]
        for job_id in ids:
            self.update(job_id, state="interrupted",
                        note=f"the server stopped before this job finished; POST /v1/jobs/{job_id}/retry finishes "
                             "it (files already ingested are not redone)")
        return ids

    def known(self, job_id: str) -> bool:
        return self.get(job_id) is not None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _job(row: tuple[Any, ...]) -> Job:
    return Job(id=row[0], state=row[1], created=row[2], updated=row[3], files=json.loads(row[4]),
               progress=json.loads(row[5]), result=json.loads(row[6]) if row[6] else None,
               error=json.loads(row[7]) if row[7] else None, note=row[8] or "")
