"""Turn low-level storage failures (sqlite3, OSError, FAISS) into one-line citewise errors.

The store, the index and the manifest raise these at the depth where the path and the consequence are
known ("nothing of this batch was stored"), so the CLI and the API report what went wrong and where
instead of a traceback.
"""

from __future__ import annotations

import errno
import functools
import re
import sqlite3
from pathlib import Path
from typing import Callable, ParamSpec, TypeVar

from ingest.core.errors import IndexBusyError, IndexStateError, IndexWriteError

# primary SQLite result codes (the low byte of an extended code)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _NOTADB = 3, 5, 6, 8, 10, 11, 13, 26
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}

NO_SPACE = "no space left: the disk is full or a file size limit was reached"

P = ParamSpec("P")
T = TypeVar("T")


def reading(method: Callable[P, T]) -> Callable[P, T]:
    """For a store's read methods: a failed read names the store file (`self.path`) and what is wrong."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, Path(getattr(args[0], "path")), writing=False) from exc

    return guarded


def damaged_store(path: Path, detail: str) -> IndexStateError:
    """The store cannot be read as a database: say that it is the source of truth and what can be done."""
    return IndexStateError(
        f"{path} is damaged ({detail}); it is the index's source of truth, so its documents cannot be read "
        "from it: restore it from a backup, or re-ingest the documents into a new --index directory")


def sqlite_failure(exc: sqlite3.Error, path: Path, writing: bool, outcome: str = "",
                   partial: bool = False) -> IndexStateError:
    """The error to raise for a failed SQLite call on the store at `path`; `outcome` says what was kept."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    detail = str(exc)
    tail = f"; {outcome}" if outcome else ""
    if code in (_CORRUPT, _NOTADB) or detail in ("file is not a database", "database disk image is malformed"):
        return damaged_store(path, detail)
    if code == _FULL or detail == "database or disk is full":
        return IndexWriteError(f"cannot write {path}: {NO_SPACE} ({detail}){tail}", partial)
    if code == _IOERR and writing:  # SQLite says FULL only for ENOSPC; a size limit (EFBIG) comes as IOERR
        return IndexWriteError(f"cannot write {path}: {detail} (the disk may be full, the file over a size limit, "
                               f"or the device failing){tail}", partial)
    if code in (_READONLY, _PERM):
        return IndexWriteError(f"cannot write {path}: permission denied ({detail}); searching and listing work "
                               f"read-only, writing needs write access to {path.parent}{tail}", partial)
    if code in (_BUSY, _LOCKED):
        return IndexBusyError(f"{path} is locked by another process ({detail}); try again when it ends{tail}")
    return IndexStateError(f"cannot {'write' if writing else 'read'} {path}: {detail}{tail}")


def os_failure(exc: OSError, path: Path, writing: bool = True, outcome: str = "",
               partial: bool = False) -> IndexStateError:
    """The error to raise for a failed file operation in the index directory `path`."""
    where = exc.filename or path
    tail = f"; {outcome}" if outcome else ""
    if writing and exc.errno in _NO_SPACE:
        return IndexWriteError(f"cannot write {where}: {NO_SPACE} ({exc.strerror}){tail}", partial)
    if writing and exc.errno in _DENIED:
        return IndexWriteError(f"cannot write to index directory {path}: {exc.strerror}; searching and listing "
                               f"work read-only, writing needs write access there (or another --index){tail}",
                               partial)
    return IndexStateError(f"cannot {'write' if writing else 'read'} {where}: {exc.strerror or exc}{tail}")


def faiss_failure(exc: RuntimeError, path: Path, outcome: str = "", partial: bool = False) -> IndexStateError:
    """FAISS reports write errors as RuntimeError with the C library's reason in the last parentheses."""
    found = re.search(r"\(([^()]+)\)\s*$", str(exc))
    reason = found.group(1) if found else str(exc).strip().splitlines()[-1]
    tail = f"; {outcome}" if outcome else ""
    return IndexWriteError(f"cannot write {path}: {reason}{tail}", partial)
