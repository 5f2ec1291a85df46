"""Hostile input files through the real CLI: special files, lying sizes, disguised formats, zip bombs,
odd encodings and a parse killed midway. Each ends as one clear summary line; good files beside them
are ingested, and no copy of a document is left outside the index."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingest.core.errors import DocumentError
from ingest.discovery import read_regular_file
from ingest.parser import decode_text
from ingest.store.local_index import PARSE_TEMP
from tests.support import DEMO, ROOT, run_cli, wait_until

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


@pytest.mark.unit
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


@pytest.mark.unit
def test_utf16_and_utf32_with_a_byte_order_mark_are_text() -> None:
    text = "Narwhal tusks are teeth — Narhvalens stødtand.\n"
    for encoded in (text.encode("utf-16"), b"\xfe\xff" + text.encode("utf-16-be"), text.encode("utf-32"),
                    b"\x00\x00\xfe\xff" + text.encode("utf-32-be")):
        assert decode_text("doc", encoded) == (text, [])
    with pytest.raises(DocumentError, match="binary content"):
        decode_text("doc", text.encode("utf-16-le"))  # NUL bytes and no mark: not text we can trust
    with pytest.raises(DocumentError, match="UTF-16 byte order mark but is not valid UTF-16"):
        decode_text("doc", text.encode("utf-16") + b"\x00")


def _png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def _zip_bomb_docx(path: Path) -> None:
    """A real .docx whose document.xml is padded with 128 MiB of spaces: about 130 KB on disk."""
    import docx

    buf = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("Worker bees perform a waggle dance.")
    document.save(buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for info in src.infolist():
            body = src.read(info)
            if info.filename != "word/document.xml":
                out.writestr(info.filename, body)
                continue
            head, tail = body.split(b"</w:body>")
            with out.open("word/document.xml", "w", force_zip64=True) as fh:
                fh.write(head)
                for _ in range(128):
                    fh.write(b" " * 2**20)
                fh.write(b"</w:body>" + tail)


def test_disguised_and_oversized_formats_get_their_real_reason(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fine.md").write_text(FINE)
    (docs / "deep.html").write_text("<html><body>" + "<div>" * 100_000 + "<p>Buried text.</p>"
                                    + "</div>" * 100_000 + "</body></html>")
    (docs / "notes.pdf").write_text("These are plain notes, saved with the wrong extension.\n")
    (docs / "bare.html").write_text("<html><body><img src='x.png'></body></html>")
    _zip_bomb_docx(docs / "bomb.docx")
    msg = EmailMessage()
    msg["Subject"] = "Seal survey"
    msg["From"] = "ranger@example.org"
    msg["To"] = "team@example.org"
    msg.set_content("The harbour seal survey counted 312 pups on the sandbank.")
    msg.add_attachment(_png(), maintype="image", subtype="png", filename="seals.png")
    msg.add_attachment(b"\x00\x01\x02", maintype="application", subtype="octet-stream", filename="blob.bin")
    msg.add_attachment("Tide tables were checked against the pup count.", filename="tides.txt")
    (docs / "survey.eml").write_bytes(bytes(msg))
    (docs / "utf16.txt").write_bytes("Narwhal tusks are elongated teeth.\n".encode("utf-16"))
    (docs / "utf16be.md").write_bytes(b"\xfe\xff" + "# Kelp\n\nGiant kelp grows half a metre a day.\n"
                                      .encode("utf-16-be"))
    (docs / "nul.txt").write_bytes("no byte order mark".encode("utf-16-le"))
    index = tmp_path / "index"

    result = run_cli("ingest", str(docs), "--index", str(index), "--json", timeout=300)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    failed = _rows(summary, "failed")
    assert "HTML nested too deep" in failed["deep.html"]
    assert failed["notes.pdf"] == "named .pdf but its content is text, not a PDF"
    assert failed["bare.html"] == "no text found in html file"
    assert "part word/document.xml expands" in failed["bomb.docx"] and "zip bomb" in failed["bomb.docx"]
    assert "binary content" in failed["nul.txt"]
    assert len(failed) == 5
    assert not any("scanned PDF" in reason for reason in failed.values())
    warnings = [row["warning"] for row in summary["warnings"] if row["path"].endswith("survey.eml")]
    assert warnings == ["attachment seals.png skipped: image/png is not a format citewise ingests",
                        "attachment blob.bin skipped: application/octet-stream is not a format citewise ingests"]
    assert summary["ingested"] == 4  # fine.md, survey.eml, utf16.txt, utf16be.md

    for query, expected in [("narwhal tusks", "Narwhal tusks are elongated teeth."),
                            ("giant kelp growth", "Giant kelp grows half a metre a day."),
                            ("tide tables pup count", "Tide tables were checked against the pup count.")]:
        found = run_cli("search", query, "--index", str(index), "--json", "-k", "1", "--mode", "bm25")
        assert found.returncode == 0, found.stderr
        assert expected in json.loads(found.stdout)[0]["text"]


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_killed_parse_leaves_no_copy_of_the_document_in_the_temp_folder(tmp_path: Path, workers: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # Long enough that pandoc, which unstructured feeds through a temporary copy, runs for a while.
    (docs / "pep.rst").write_text((DEMO / "pep-0572.rst").read_text() * 8)
    marker = b"Assignment Expressions"
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    index = tmp_path / "index"
    env = {"TMPDIR": str(system_tmp), "CITEWISE_INGEST__PARSE_WORKERS": workers}

    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", str(docs), "--index", str(index), "--quiet"],
                            cwd=ROOT, env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    copies: list[Path] = []

    def copied_or_ended() -> bool:
        copies[:] = [p for p in _files_under(tmp_path) if p.name.startswith("tmp_file")]
        return bool(copies) or proc.poll() is not None

    try:
        wait_until(copied_or_ended, 600, "the ingest neither made a temporary copy nor ended", interval=0.02)
        assert copies, f"no parse with a temporary copy was seen: {proc.stderr.read() if proc.stderr else ''}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)

    left = [p for p in _files_under(system_tmp) if marker in p.read_bytes()]
    assert left == [], "a copy of the document outlived the killed parse in the system temp folder"
    assert all(p.is_relative_to(index / PARSE_TEMP) for p in copies)

    (docs / "pep.rst").unlink()
    (docs / "fine.md").write_text(FINE)
    again = run_cli("ingest", str(docs), "--index", str(index), "--json", env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["ingested"] == 1
    assert _files_under(index / PARSE_TEMP) == []
