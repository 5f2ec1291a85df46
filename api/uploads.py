"""What an upload must be before it is kept: a safe file name, a supported format, content that matches it.

Names are cut to their last component and stripped of anything a file system or shell could read as
structure, so an upload lands under the index's `uploads/` folder and nowhere else. Content is
checked by its bytes, not its name: a `.pdf` must start like a PDF, a `.docx` must be a Word zip, and
a text format must not be binary. A byte order mark does not vouch for the rest: the bytes after it
must decode in that encoding to text (no NULs, few control characters), or an executable behind two
BOM bytes would pass as text.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
import zipfile
from pathlib import Path

from ingest.core.errors import InvalidRequestError, UnsupportedMediaError
from ingest.formats import FORMATS
from ingest.preflight import BOMS, MAGIC, looks_like

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\- ()+,@=]")
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")
HEAD_BYTES = 64 * 1024
_ZIP_PARTS = {"docx": "word/", "pptx": "ppt/"}
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]")


def safe_name(raw: str | None) -> str:
    """A plain file name from whatever the client sent; raises when nothing usable is left."""
    name = unicodedata.normalize("NFC", (raw or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_NAME_CHARS - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:MAX_NAME_CHARS]
    if not name or name in {".", ".."}:
        raise InvalidRequestError(f"file name {raw!r} has no usable characters; name the file, e.g. notes.md")
    return name


def format_of(name: str) -> str:
    fmt = FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        allowed = ", ".join(sorted(FORMATS))
        raise UnsupportedMediaError(f"{name}: {Path(name).suffix or 'no extension'} is not a supported format "
                                    f"({allowed})")
    return fmt


def check_content(path: Path, name: str) -> str:
    """The format `name` claims, after its bytes were checked against it; raises on a mismatch."""
    fmt = format_of(name)
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
        complete = not fh.read(1)
    if not head:
        raise InvalidRequestError(f"{name}: the file is empty")
    if fmt == "pdf":
        if b"%PDF-" not in head[:1024]:
            raise UnsupportedMediaError(f"{name}: named .pdf but its content is {looks_like(head)}, not a PDF")
    elif fmt in _ZIP_PARTS:
        _check_office_zip(path, name, fmt, head)
    else:
        _check_text(name, fmt, head, complete)
    return fmt


def _check_office_zip(path: Path, name: str, fmt: str, head: bytes) -> None:
    if not head.startswith(b"PK\x03\x04") or not zipfile.is_zipfile(path):
        raise UnsupportedMediaError(f"{name}: named .{fmt} but its content is {looks_like(head)}, not an "
                                    "Office Open XML file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsupportedMediaError(f"{name}: damaged zip container ({exc})") from exc
    if "[Content_Types].xml" not in names or not any(n.startswith(_ZIP_PARTS[fmt]) for n in names):
        raise UnsupportedMediaError(f"{name}: a zip archive, but not a .{fmt} document (no {_ZIP_PARTS[fmt]} part)")


def _check_text(name: str, fmt: str, head: bytes, complete: bool) -> None:
    """`complete` says `head` is the whole file (so an end cut mid-character is an error, not the read limit)."""
    for bom, encoding in BOMS:
        if head.startswith(bom):
            _check_marked_text(name, fmt, head[len(bom):], encoding, complete)
            return
    for magic, what in MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedMediaError(f"{name}: named as {fmt} text but its content is {what}")
    if b"\x00" in head:
        raise UnsupportedMediaError(f"{name}: named as {fmt} text but its content is binary (NUL bytes)")
    if complete and not head.strip():
        raise InvalidRequestError(f"{name}: the file holds only whitespace")
    if fmt == "eml" and not any(_HEADER_LINE.match(line) for line in head.splitlines()[:20]):
        raise UnsupportedMediaError(f"{name}: named .eml but it has no e-mail header lines (From:, Subject:, ...)")


def _check_marked_text(name: str, fmt: str, body: bytes, encoding: str, complete: bool) -> None:
    """The bytes after a byte order mark, decoded as it says: they must be text, not binary behind a mark."""
    label = encoding.upper().replace("-LE", " LE").replace("-BE", " BE")
    for magic, what in MAGIC.items():
        if body.startswith(magic):
            raise UnsupportedMediaError(f"{name}: named as {fmt} text but after its {label} byte order mark the "
                                        f"content is {what}")
    try:
        # Incremental: a character cut by the read limit is held back, not an error.
        text = codecs.getincrementaldecoder(encoding)().decode(body, final=complete)
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaError(f"{name}: has a {label} byte order mark but is not {label} text (invalid "
                                    f"bytes {exc.start}-{exc.end} after the mark)") from exc
    if complete and not text.strip():
        raise InvalidRequestError(f"{name}: the file holds only a byte order mark and whitespace")
    odd = sum(1 for ch in text if ch not in _TEXT_CONTROLS and unicodedata.category(ch) in ("Cc", "Cn"))
    if "\x00" in text or odd * 100 > len(text):
        raise UnsupportedMediaError(f"{name}: named as {fmt} text but decoded as {label} it is binary ({odd} of "
                                    f"the first {len(text)} characters are control or unassigned characters)")
