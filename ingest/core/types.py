"""Plain data shapes passed between stages (parse -> chunk -> embed -> store -> search)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Element:
    """One structural piece of a parsed document: a heading, a paragraph, a list item, a table."""

    text: str
    kind: str  # unstructured's category: Title, NarrativeText, ListItem, Table, ...
    depth: int | None = None  # heading level for titles (0 = top)
    page: int | None = None

    @property
    def is_heading(self) -> bool:
        return self.kind == "Title"


@dataclass
class ParsedDocument:
    """A document as the parser saw it, before chunking. `source` identifies it (a path or a URI)."""

    source: str
    title: str
    elements: list[Element]
    format: str
    content_hash: str
    metadata: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Chunk:
    """A span of a document's normalized text, small enough to embed without truncation."""

    ordinal: int
    start: int
    end: int
    text: str
    headings: list[str]
    page: int | None
    page_end: int | None
    n_tokens: int
    context: str = ""  # situating text: embedded and BM25-indexed, never quoted


@dataclass
class ChunkedDocument:
    """A parsed document with its normalized text and the chunks cut from it."""

    doc: ParsedDocument
    text: str
    chunks: list[Chunk]
    context_mode: str = ""  # the mode its contexts were made in ("structure" after an llm fallback)


@dataclass
class ContextOutcome:
    """What contextualizing one document did: contexts generated or taken from the cache, or why it fell back."""

    mode: str
    generated: int = 0
    cached: int = 0
    skipped: int = 0  # llm mode: chunks whose structure trail already names their subject
    failure: str | None = None  # set when the document fell back to structure context


@dataclass(frozen=True)
class DocumentRow:
    """A stored document as listed: what it is and how much of it there is."""

    id: str
    source: str
    title: str
    format: str
    content_hash: str
    n_chunks: int
    n_chars: int
    ingested_at: float


@dataclass(frozen=True)
class ChunkRow:
    """A stored chunk with its text sliced from the document, so quotes always match the source."""

    id: int
    doc_id: str
    source: str
    title: str
    ordinal: int
    start: int
    end: int
    text: str
    headings: list[str]
    page: int | None
    page_end: int | None
    context: str
    n_tokens: int

    def to_chunk(self) -> Chunk:
        """The chunk as the pipeline knows it (to recompute what was embedded for it)."""
        return Chunk(ordinal=self.ordinal, start=self.start, end=self.end, text=self.text, headings=self.headings,
                     page=self.page, page_end=self.page_end, n_tokens=self.n_tokens, context=self.context)
