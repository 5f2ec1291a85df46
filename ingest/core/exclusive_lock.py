"""One writer at a time for a folder's work (a training run, a training set), without stale lock files."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ingest.core.errors import IndexBusyError


def acquire(path: Path, busy: str) -> int:
    """An exclusive lock on `path` (created with its folder), held through the returned descriptor.

    flock, not a marker file: the kernel drops it when the holder dies, so a killed run never blocks the
    next one. Raises IndexBusyError(`busy`) at once when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise IndexBusyError(busy) from None
    return fd


class ExclusiveLock:
    """`with ExclusiveLock(path, busy):` holds `acquire(path, busy)` for the block."""

    def __init__(self, path: Path, busy: str) -> None:
        self.path = Path(path)
        self.busy = busy
        self.fd: int | None = None

    def __enter__(self) -> ExclusiveLock:
        self.fd = acquire(self.path, self.busy)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
