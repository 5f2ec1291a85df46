"""Find and read the files to ingest: recursive, glob-filtered, safe against symlink loops, unreadable
folders and special files (a FIFO blocks a reader forever; a device never ends and claims size 0)."""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ingest.core.errors import DocumentError
from ingest.formats import FORMATS
from ingest.store.local_index import MANIFEST, STORE


@dataclass(frozen=True)
class Found:
    """A file to ingest (`reason` is None) or one passed over, with the reason it was."""

    path: Path
    fmt: str | None = None
    reason: str | None = None
    failed: bool = False


def _matches(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(os.path.basename(rel), p) for p in patterns)


def is_index_dir(path: str) -> bool:
    return os.path.exists(os.path.join(path, MANIFEST)) and os.path.exists(os.path.join(path, STORE))


def discover(paths: list[Path], include: list[str], exclude: list[str]) -> Iterator[Found]:
    """Yield files in a stable order; folders are walked (never into a citewise index), files taken as given."""
    for root in paths:
        if root.is_symlink() and not root.exists():
            yield Found(root, reason="broken symbolic link", failed=True)
        elif not root.exists():
            yield Found(root, reason="no such file or directory", failed=True)
        elif root.is_dir():
            yield from _walk(root, include, exclude)
        else:
            yield _classify(root)


_SPECIAL_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))


def special_file_reason(path: Path, mode: int) -> str:
    """Why a path that is not a regular file is passed over, naming a symlink's target."""
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "a special file")
    if os.path.islink(path):
        return f"not a regular file: a symbolic link to {kind} ({os.path.realpath(path)})"
    return f"not a regular file: {kind}"


def _classify(path: Path) -> Found:
    try:
        mode = os.stat(path).st_mode  # follows symbolic links: what matters is what reading would open
    except OSError as exc:
        return Found(path, reason=f"cannot read file: {exc.strerror or exc}", failed=True)
    if not stat.S_ISREG(mode):
        return Found(path, reason=special_file_reason(path, mode))
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        shown = path.suffix or "(no extension)"
        return Found(path, reason=f"unsupported format {shown}; supported: {', '.join(sorted(FORMATS))}")
    return Found(path, fmt=fmt)


def _walk(root: Path, include: list[str], exclude: list[str]) -> Iterator[Found]:
    seen: set[str] = set()
    errors: list[Found] = []

    def on_error(err: OSError) -> None:
        errors.append(Found(Path(err.filename or root), reason=f"cannot read folder: {err.strerror}", failed=True))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        yield from errors
        errors.clear()
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            yield Found(Path(dirpath), reason=f"symbolic link loop (already visited {real})")
            continue
        seen.add(real)
        if is_index_dir(dirpath):
            dirnames[:] = []
            continue
        dirnames.sort()
        kept = []
        for d in dirnames:
            rel = os.path.relpath(os.path.join(dirpath, d), root)
            if not _matches(rel + "/", exclude) and not _matches(rel + "/x", exclude):
                kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = os.path.relpath(full, root)
            if _matches(rel, exclude) or (include and not _matches(rel, include)):
                continue
            if full.is_symlink() and not full.exists():
                yield Found(full, reason="broken symbolic link", failed=True)
                continue
            yield _classify(full)
    yield from errors


def read_regular_file(path: Path, source: str, max_mb: float) -> bytes:
    """A regular file's bytes, never more than `max_mb`, whatever its size claims to be.

    The file is checked before it is opened (opening a device can have effects of its own) and again
    after, on the open descriptor, in case it was swapped since; O_NONBLOCK makes opening a FIFO return
    at once instead of waiting for a writer. Reading stops one byte past the limit, so a file that grows,
    or reports a wrong size (as /proc files do), costs at most the limit in memory.
    """
    limit = int(max_mb * 2**20)
    over = f"over the {max_mb:g} MB limit (setting ingest.max_file_mb)"
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise DocumentError(source, special_file_reason(path, st.st_mode))
        if st.st_size > limit:
            raise DocumentError(source, f"file is {st.st_size / 2**20:.1f} MB, {over}")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DocumentError(source, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DocumentError(source, special_file_reason(path, st.st_mode))
        chunks: list[bytes] = []
        total = 0
        step = max(st.st_size + 1, 2**20)  # an honest file arrives in one read, then EOF
        while total <= limit:
            chunk = os.read(fd, min(step, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise DocumentError(source, f"cannot read file: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if total > limit:
        raise DocumentError(source, f"file holds more than {max_mb:g} MB although its size reads "
                                    f"{st.st_size} bytes: {over}")
    return b"".join(chunks)
