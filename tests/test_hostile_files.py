"""Hostile input files through the real CLI: special files, lying sizes and odd encodings. Each ends as one clear
summary line; good files beside them are ingested."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from ingest.discovery import read_regular_file
from ingest.errors import DocumentError
from ingest.parser import decode_text
from tests.conftest import run_cli

FINE = "# Fine\n\nOtters hold hands while sleeping.\n"


def _rows(summary: dict, key: str) -> dict[str, str]:
    return {Path(row["path"]).name: row["reason"] for row in summary[key]}


def test_special_files_are_skipped_and_sizes_are_capped(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fine.md").write_text(FINE)
    os.mkfifo(docs / "pipe.md")  # reading it would wait for a writer forever
    (docs / "pipe-link.md").symlink_to(docs / "pipe.md")
    (docs / "zero.txt").symlink_to("/dev/zero")  # endless, and its size reads 0
    (docs / "maps.txt").symlink_to("/proc/self/maps")  # a regular file whose size reads 0, but is not empty
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(docs / "sock.md"))
    direct_fifo = tmp_path / "direct.md"
    os.mkfifo(direct_fifo)
    index = tmp_path / "index"
    env = {"CITEWISE_INGEST__MAX_FILE_MB": "0.001"}  # 1 KB: /proc/self/maps is larger, fine.md is not

    try:
        result = run_cli("ingest", str(docs), str(direct_fifo), "/dev/null", "--index", str(index), "--json",
                         env=env, timeout=300)
    finally:
        sock.close()
    assert result.returncode == 1, result.stderr  # one file failed (the oversized one); the rest is done
    summary = json.loads(result.stdout)
    skipped = _rows(summary, "skipped")
    assert skipped["pipe.md"] == "not a regular file: a named pipe (FIFO)"
    assert skipped["direct.md"] == "not a regular file: a named pipe (FIFO)"
    assert skipped["pipe-link.md"].startswith("not a regular file: a symbolic link to a named pipe (FIFO)")
    assert skipped["zero.txt"] == "not a regular file: a symbolic link to a character device (/dev/zero)"
    assert skipped["sock.md"] == "not a regular file: a socket"
    assert skipped["null"] == "not a regular file: a character device"
    assert len(skipped) == 6
    [(path, reason)] = [(row["path"], row["reason"]) for row in summary["failed"]]
    assert path.endswith("/maps")
    assert "more than 0.001 MB although its size reads 0 bytes" in reason and "ingest.max_file_mb" in reason
    assert summary["ingested"] == 1 and summary["index"]["documents"] == 1


def test_reading_stops_at_the_limit_whatever_the_size_claims(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="more than 0.001 MB although its size reads 0 bytes"):
        read_regular_file(Path("/proc/self/maps"), "maps", 0.001)
    honest = tmp_path / "honest.txt"
    at_limit = int(0.001 * 2**20)
    honest.write_bytes(b"x" * at_limit)
    assert read_regular_file(honest, "honest", 0.001) == b"x" * at_limit
    honest.write_bytes(b"x" * (at_limit + 1))
    with pytest.raises(DocumentError, match="over the 0.001 MB limit"):
        read_regular_file(honest, "honest", 0.001)


def test_utf16_and_utf32_with_a_byte_order_mark_are_text() -> None:
    text = "Narwhal tusks are teeth — Narhvalens stødtand.\n"
    for encoded in (text.encode("utf-16"), b"\xfe\xff" + text.encode("utf-16-be"), text.encode("utf-32"),
                    b"\x00\x00\xfe\xff" + text.encode("utf-32-be")):
        assert decode_text("doc", encoded) == (text, [])
    with pytest.raises(DocumentError, match="binary content"):
        decode_text("doc", text.encode("utf-16-le"))  # NUL bytes and no mark: not text we can trust
    with pytest.raises(DocumentError, match="UTF-16 byte order mark but is not valid UTF-16"):
        decode_text("doc", text.encode("utf-16") + b"\x00")
