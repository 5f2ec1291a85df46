"""What produced a result: configuration, model hashes, package versions, git commit, machine."""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ingest.core.settings import Settings

PACKAGES = ("citewise", "torch", "sentence-transformers", "transformers", "faiss-cpu", "bm25s",
            "unstructured", "llama-cpp-python", "numpy")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def model_hashes(settings: Settings) -> dict[str, str]:
    from ingest.core.model_resolver import BUILTIN_GGUF, ModelResolver

    resolver = ModelResolver(settings.models.cache_dir)
    out: dict[str, str] = {}
    try:
        folder = resolver.embedder_path(settings.models.embedder)
        weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        out["embedder"] = _sha256(weights[0]) if weights else "unknown"
    except Exception as exc:  # a report must still be written; say why the hash is missing
        out["embedder"] = f"unavailable: {exc}"
    for role in ("writer", "fast"):
        name = getattr(settings.models, role)
        out[role] = BUILTIN_GGUF[name].sha256 if name in BUILTIN_GGUF else f"path:{name}"
    return out


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (commit or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gb": round(mem, 1)}


def environment(settings: Settings) -> dict[str, Any]:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"command": shlex.join(["citewise", *sys.argv[1:]]),
            "settings": settings.model_dump(mode="json"), "models": model_hashes(settings),
            "packages": versions, "git_commit": git_commit(), "machine": machine()}
