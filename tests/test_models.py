"""GGUF part assembly: verified against the pinned sha256, cached, and clear errors when it cannot be."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from ingest.core.errors import ConfigError, ModelUnavailableError
from ingest.core.model_resolver import BUILTIN_GGUF, GgufSpec, ModelResolver


def _fake_parts(root: Path, prefix: str, blobs: list[bytes]) -> None:
    for n, blob in enumerate(blobs, start=1):
        pkg = root / f"{prefix}{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(blob)


@pytest.fixture
def parts_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def _spec(prefix: str, blobs: list[bytes], sha: str | None = None) -> GgufSpec:
    data = b"".join(blobs)
    return GgufSpec(name="tiny", package_pattern=prefix.replace("_", "-") + "{n}=={version}", module_pattern=prefix + "{n}",
                    version="1.0", parts=len(blobs), sha256=sha or hashlib.sha256(data).hexdigest(), size=len(data))


@pytest.mark.unit
def test_parts_are_assembled_once_verified_and_reused(tmp_path: Path, parts_on_path: Path) -> None:
    blobs = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
    _fake_parts(parts_on_path, "cwtest_ok_part", blobs)
    resolver = ModelResolver(tmp_path / "cache", {"tiny": _spec("cwtest_ok_part", blobs)})
    path = resolver.gguf_path("tiny")
    assert path.read_bytes() == b"".join(blobs)
    mtime = path.stat().st_mtime_ns
    assert resolver.gguf_path("tiny") == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt


@pytest.mark.unit
def test_checksum_mismatch_is_refused_with_a_fix(tmp_path: Path, parts_on_path: Path) -> None:
    blobs = [b"x" * 10, b"y" * 10]
    _fake_parts(parts_on_path, "cwtest_bad_part", blobs)
    resolver = ModelResolver(tmp_path / "cache", {"tiny": _spec("cwtest_bad_part", blobs, sha="0" * 64)})
    with pytest.raises(ModelUnavailableError, match="expected 0{64}.*force-reinstall"):
        resolver.gguf_path("tiny")
    assert not list((tmp_path / "cache").glob("*.gguf")), "a bad file must not be left where it would be used"


@pytest.mark.unit
def test_missing_part_names_the_packages_to_install(tmp_path: Path, parts_on_path: Path) -> None:
    blobs = [b"x", b"y", b"z"]
    _fake_parts(parts_on_path, "cwtest_gap_part", blobs[:2])
    resolver = ModelResolver(tmp_path / "cache", {"tiny": _spec("cwtest_gap_part", blobs)})
    with pytest.raises(ModelUnavailableError, match=r"missing 1 of 3 .*cwtest-gap-part3==1.0"):
        resolver.gguf_path("tiny")


@pytest.mark.unit
def test_user_paths_and_unknown_names(tmp_path: Path) -> None:
    own = tmp_path / "mine.gguf"
    own.write_bytes(b"GGUF")
    resolver = ModelResolver(tmp_path / "cache")
    assert resolver.gguf_path(str(own)) == own
    with pytest.raises(ConfigError, match="neither a built-in GGUF"):
        resolver.gguf_path("no-such-model")
    with pytest.raises(ConfigError, match="sentence-transformers folder"):
        resolver.embedder_path(str(tmp_path))


@pytest.mark.slow
def test_real_fast_model_assembles_to_the_pinned_hash(tmp_path: Path) -> None:
    """The 0.5B model from its PyPI parts: the same sha256 as MODELS.md, then loadable by llama.cpp."""
    resolver = ModelResolver(tmp_path / "cache")
    path = resolver.gguf_path("qwen2.5-coder-0.5b-instruct")
    spec = BUILTIN_GGUF["qwen2.5-coder-0.5b-instruct"]
    assert path.stat().st_size == spec.size
    assert (path.with_suffix(".sha256")).read_text().split()[0] == spec.sha256
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False)
    out = llm.create_chat_completion(messages=[{"role": "user", "content": "Say OK."}], max_tokens=4, temperature=0)
    assert out["choices"][0]["message"]["content"].strip()
    assert "llama_cpp" in sys.modules
