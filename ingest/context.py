"""Chunk context: text that situates a chunk in its document, embedded and indexed but never quoted."""

from __future__ import annotations

from typing import Literal

from ingest.chunker import TokenCounter
from ingest.types import Chunk, ChunkedDocument

ContextMode = Literal["none", "structure"]


class StructureContextualizer:
    """`structure` mode: the document title and section trail, e.g. "PEP 572 > Syntax > Exceptions"."""

    def __init__(self, mode: ContextMode, counter: TokenCounter, max_tokens: int) -> None:
        self.mode = mode
        self.counter = counter
        self.max_tokens = max_tokens

    def contextualize(self, doc: ChunkedDocument) -> None:
        if self.mode == "none":
            return
        title = doc.doc.title.strip()
        for chunk in doc.chunks:
            trail = [h for h in chunk.headings if h and h != title]
            chunk.context = " > ".join([title, *trail]) if title else " > ".join(trail)

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
