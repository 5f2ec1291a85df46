"""Structure-aware chunking: chunks follow sections and never exceed the embedder's window."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.core.embedder import TokenCounter
from ingest.core.types import Chunk, ChunkedDocument, Element, ParsedDocument

SEPARATOR = "\n\n"
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=\S)|\n\s*\n")


@dataclass
class _Piece:
    """A span of the document text with its heading trail and page, the unit chunks are built from."""

    start: int
    end: int
    tokens: int
    headings: list[str]
    page: int | None
    heading_only: bool


class StructureChunker:
    """Packs whole elements into chunks within one section; splits only elements that are too long."""

    def __init__(self, counter: TokenCounter, max_tokens: int) -> None:
        self.counter = counter
        self.max_tokens = max_tokens

    def chunk(self, doc: ParsedDocument) -> ChunkedDocument:
        text, spans = _normalized_text(doc.elements)
        pieces: list[_Piece] = []
        trail: list[str] = []
        for element, (start, end) in zip(doc.elements, spans):
            if element.is_heading:
                level = max(element.depth or 0, 0)
                trail = trail[:level] + [element.text.replace("\n", " ")]
            pieces.extend(self._pieces(text, start, end, list(trail), element))
        return ChunkedDocument(doc=doc, text=text, chunks=self._pack(text, pieces))

    def _pieces(self, text: str, start: int, end: int, trail: list[str], element: Element) -> list[_Piece]:
        tokens = self.counter.count_tokens(text[start:end])
        if tokens <= self.max_tokens:
            return [_Piece(start, end, tokens, trail, element.page, element.is_heading)]
        return [
            _Piece(s, e, self.counter.count_tokens(text[s:e]), trail, element.page, False)
            for s, e in self._split(text, start, end)
        ]

    def _split(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """Sentence spans packed up to the limit; a sentence longer than the limit is cut at token edges."""
        spans: list[tuple[int, int]] = []
        cursor = start
        for match in _SENTENCE_END.finditer(text, start, end):
            spans.append((cursor, match.start()))
            cursor = match.end()
        spans.append((cursor, end))
        out: list[tuple[int, int]] = []
        for s, e in spans:
            if self.counter.count_tokens(text[s:e]) <= self.max_tokens:
                out.append((s, e))
                continue
            token_spans = self.counter.token_spans(text[s:e])
            for i in range(0, len(token_spans), self.max_tokens):
                window = token_spans[i : i + self.max_tokens]
                out.append((s + window[0][0], s + window[-1][1]))
        return out

    def _pack(self, text: str, pieces: list[_Piece]) -> list[Chunk]:
        chunks: list[Chunk] = []
        group: list[_Piece] = []

        def emit(part: list[_Piece]) -> None:
            start, end = part[0].start, part[-1].end
            tokens = self.counter.count_tokens(text[start:end])
            if tokens > self.max_tokens and len(part) > 1:
                # Joining can add tokens for tokenizers that do not split on whitespace first.
                emit(part[:-1])
                emit(part[-1:])
                return
            pages = [p.page for p in part if p.page is not None]
            chunks.append(Chunk(ordinal=len(chunks), start=start, end=end, text=text[start:end],
                                headings=part[-1].headings, page=min(pages) if pages else None,
                                page_end=max(pages) if pages else None, n_tokens=tokens))

        for piece in pieces:
            only_headings = all(p.heading_only for p in group)
            new_section = piece.heading_only and group and not only_headings
            too_big = group and sum(p.tokens for p in group) + piece.tokens > self.max_tokens
            if new_section or too_big:
                emit(group)
                group = []
            group.append(piece)
        if group:
            emit(group)
        return chunks


def _normalized_text(elements: list[Element]) -> tuple[str, list[tuple[int, int]]]:
    """The stored document text: element texts joined by blank lines; offsets index into it."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    cursor = 0
    for element in elements:
        if parts:
            parts.append(SEPARATOR)
            cursor += len(SEPARATOR)
        parts.append(element.text)
        spans.append((cursor, cursor + len(element.text)))
        cursor += len(element.text)
    return "".join(parts), spans
