"""Chunk context: text that situates a chunk in its document, embedded and indexed but never quoted."""

from __future__ import annotations

from typing import Literal, Protocol

from ingest.core.embedder import TokenCounter
from ingest.core.progress import NullProgress, Progress
from ingest.core.types import Chunk, ChunkedDocument, ContextOutcome

__all__ = ["ContextMode", "ContextOutcome", "Contextualizer", "StructureContextualizer"]

ContextMode = Literal["none", "structure", "llm"]


class Contextualizer(Protocol):
    """Sets `chunk.context` for every chunk of a document; never touches the chunk text."""

    mode: str

    def contextualize(self, doc: ChunkedDocument, progress: Progress | None = None) -> ContextOutcome: ...

    def embed_text(self, chunk: Chunk) -> str: ...


class StructureContextualizer:
    """`structure` mode: the document title and section trail, e.g. "PEP 572 > Syntax > Exceptions"."""

    def __init__(self, mode: ContextMode, counter: TokenCounter, max_tokens: int) -> None:
        self.mode = mode
        self.counter = counter
        self.max_tokens = max_tokens

    def contextualize(self, doc: ChunkedDocument, progress: Progress | None = None) -> ContextOutcome:
        for chunk in doc.chunks:
            chunk.context = "" if self.mode == "none" else self.trail(doc, chunk)
        (progress or NullProgress()).advance("context", len(doc.chunks))
        return ContextOutcome(self.mode)

    @staticmethod
    def trail(doc: ChunkedDocument, chunk: Chunk) -> str:
        title = doc.doc.title.strip()
        trail = [h for h in chunk.headings if h and h != title]
        return " > ".join([title, *trail]) if title else " > ".join(trail)

    def embed_text(self, chunk: Chunk) -> str:
        """Context plus chunk within the embedder's window; only the context is ever shortened."""
        if not chunk.context:
            return chunk.text
        room = self.max_tokens - chunk.n_tokens - 1
        context = chunk.context
        if room <= 0:
            return chunk.text
        spans = self.counter.token_spans(context)
        if len(spans) > room:
            context = context[: spans[room - 1][1]]
        return f"{context}\n{chunk.text}"
