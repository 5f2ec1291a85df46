"""The index manifest: what built the index, and which derived files match which store generation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ingest.core.errors import IndexStateError

FORMAT_VERSION = 1


class CorruptManifestError(IndexStateError):
    """manifest.json exists but cannot be used; the store still holds everything it described."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is damaged ({reason})")
        self.path = path
        self.reason = reason


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest, or None when there is none; CorruptManifestError when it is not a JSON object."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise CorruptManifestError(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptManifestError(path, f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CorruptManifestError(path, f"a JSON {type(data).__name__}, not an object")
    if not isinstance(data.get("embedder"), dict):
        raise CorruptManifestError(path, "it names no embedder")
    return data


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Atomic replace with fsync of the file and its folder, so a crash leaves the old or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
