"""The file formats citewise reads, by suffix: shared by discovery, uploads, the parser and e-mail attachments
(which the parser reads through `ingest.eml`, so the table lives apart from both)."""

from __future__ import annotations

#: File suffix -> format name. Anything else is skipped with a stated reason.
FORMATS: dict[str, str] = {
    ".md": "md", ".markdown": "md", ".txt": "text", ".text": "text", ".rst": "rst",
    ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".eml": "eml",
}
