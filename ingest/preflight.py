"""Checks on a file's bytes before a parser sees them, where the parser would mislead or cost too much.

A text file named `.pdf` would come back as "no text found"; a zip bomb named `.docx` would be inflated
in memory before anything failed; HTML nested deeper than libxml2's limit loses its text without an
error. Each is refused here with the real reason.
"""

from __future__ import annotations

import io
import zipfile

from ingest.core.errors import DocumentError

#: What the first bytes of common binary files say they are.
MAGIC = {b"%PDF-": "a PDF", b"PK\x03\x04": "a zip archive", b"\x7fELF": "an executable",
         b"\x89PNG": "a PNG image", b"GIF8": "a GIF image", b"\xff\xd8\xff": "a JPEG image",
         b"\x1f\x8b": "a gzip archive"}
#: Byte order marks and their encodings, longest first: a UTF-32 LE mark starts with the UTF-16 LE one.
BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_TEXT_BOMS = tuple(bom for bom, _ in BOMS)
#: Office documents whose parts together expand beyond this are refused before any part is read.
MAX_UNZIPPED_MB = 512
#: A part this large that expands more than MAX_RATIO-fold is a zip bomb, not a document: XML compresses
#: far less than that, and images hardly at all.
RATIO_FLOOR_MB = 16
MAX_RATIO = 100
#: libxml2 stops reading HTML nested deeper than this (XML_PARSE_HUGE lifts it; unstructured does not set it).
HTML_MAX_DEPTH = 256


def looks_like(head: bytes) -> str:
    """What the first bytes of a file say it is, for messages."""
    for magic, what in MAGIC.items():
        if head.startswith(magic):
            return what
    if head.startswith(_TEXT_BOMS) or b"\x00" not in head:
        return "text"
    return "binary data"


def check_bytes(source: str, data: bytes, fmt: str) -> None:
    """Raise DocumentError when `data` cannot be what `fmt` names, or would inflate beyond reason."""
    if fmt == "pdf" and b"%PDF-" not in data[:1024]:
        raise DocumentError(source, f"named .pdf but its content is {looks_like(data[:1024])}, not a PDF")
    if fmt in ("docx", "pptx"):
        _check_office_zip(source, data, fmt)


def _check_office_zip(source: str, data: bytes, fmt: str) -> None:
    if not data.startswith(b"PK\x03\x04"):
        raise DocumentError(source, f"named .{fmt} but its content is {looks_like(data[:1024])}, "
                                    "not an Office document (a zip archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            parts = zf.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise DocumentError(source, f"damaged .{fmt} file: its zip container cannot be read ({exc})") from exc
    total = sum(p.file_size for p in parts)
    if total > MAX_UNZIPPED_MB * 2**20:
        raise DocumentError(source, f"its zip container expands to {total / 2**20:.0f} MB, over the "
                                    f"{MAX_UNZIPPED_MB} MB an Office document may take unpacked (a zip bomb?)")
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size >= RATIO_FLOOR_MB * 2**20 and ratio > MAX_RATIO:
            raise DocumentError(source, f"part {part.filename} expands {ratio:.0f}-fold to "
                                        f"{part.file_size / 2**20:.0f} MB; no document compresses like that "
                                        "(a zip bomb?)")


def check_html_depth(source: str, text: str) -> None:
    """Refuse HTML nested beyond libxml2's limit: its parser would stop there and drop the rest silently."""
    from lxml import etree

    parser = etree.HTMLParser(encoding="utf-8")
    try:
        etree.fromstring(text.encode("utf-8"), parser)
    except (etree.ParserError, etree.XMLSyntaxError):
        return  # nothing parseable at all: the partitioner reports that in its own words
    for entry in parser.error_log:
        if "depth" in entry.message.lower():
            raise DocumentError(source, f"HTML nested too deep: elements inside more than {HTML_MAX_DEPTH} "
                                        "others, where the HTML parser stops reading")
