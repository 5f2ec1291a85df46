"""Find the files to ingest: recursive, glob-filtered, safe against symlink loops and unreadable folders."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ingest.parser import FORMATS
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


def _classify(path: Path) -> Found:
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
