"""Chunking follows sections, respects the token limit and keeps exact offsets (fake whitespace tokenizer)."""

from __future__ import annotations

import re

import pytest

from ingest.chunker import StructureChunker
from ingest.core.types import Element, ParsedDocument


class WhitespaceCounter:
    """Deterministic stand-in for a tokenizer: one token per whitespace-separated word."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\S+", text)]


def doc(*elements: Element) -> ParsedDocument:
    return ParsedDocument(source="/x.md", title="Doc", elements=list(elements), format="md", content_hash="h")


def words(n: int, word: str = "w") -> str:
    return " ".join(f"{word}{i}." if i % 7 == 6 else f"{word}{i}" for i in range(n))


@pytest.mark.unit
def test_chunks_follow_sections_and_keep_trails() -> None:
    parsed = doc(
        Element("Intro", "Title", 0), Element(words(5), "NarrativeText"),
        Element("Details", "Title", 0), Element("Sub", "Title", 1), Element(words(5, "s"), "NarrativeText"),
    )
    chunked = StructureChunker(WhitespaceCounter(), max_tokens=50).chunk(parsed)
    assert [c.headings for c in chunked.chunks] == [["Intro"], ["Details", "Sub"]]
    assert chunked.chunks[0].text.startswith("Intro\n\nw0")
    # A heading directly followed by a sub-heading stays with its content, not alone.
    assert chunked.chunks[1].text.startswith("Details\n\nSub\n\ns0")


@pytest.mark.unit
def test_offsets_slice_the_stored_text_exactly() -> None:
    parsed = doc(Element("T", "Title", 0), *[Element(words(30, f"p{i}"), "NarrativeText") for i in range(6)])
    chunked = StructureChunker(WhitespaceCounter(), max_tokens=64).chunk(parsed)
    assert len(chunked.chunks) >= 3
    for c in chunked.chunks:
        assert chunked.text[c.start : c.end] == c.text
        assert c.n_tokens <= 64
    ordered = sorted(chunked.chunks, key=lambda c: c.start)
    assert all(a.end <= b.start for a, b in zip(ordered, ordered[1:]))


@pytest.mark.unit
def test_oversized_paragraph_is_split_never_truncated() -> None:
    long_para = words(500)
    chunked = StructureChunker(WhitespaceCounter(), max_tokens=40).chunk(doc(Element(long_para, "NarrativeText")))
    assert all(c.n_tokens <= 40 for c in chunked.chunks)
    covered = " ".join(c.text for c in chunked.chunks).split()
    assert covered == long_para.split()


@pytest.mark.unit
def test_single_sentence_longer_than_limit_is_cut_at_token_edges() -> None:
    sentence = " ".join(f"x{i}" for i in range(95))  # no sentence end anywhere
    chunked = StructureChunker(WhitespaceCounter(), max_tokens=30).chunk(doc(Element(sentence, "NarrativeText")))
    assert [c.n_tokens for c in chunked.chunks] == [30, 30, 30, 5]


@pytest.mark.unit
def test_page_numbers_are_kept() -> None:
    parsed = doc(Element(words(10), "NarrativeText", page=1), Element(words(10, "q"), "NarrativeText", page=2))
    (chunk,) = StructureChunker(WhitespaceCounter(), max_tokens=100).chunk(parsed).chunks
    assert (chunk.page, chunk.page_end) == (1, 2)


def test_real_tokenizer_limit_holds_on_real_text(embedder) -> None:
    from pathlib import Path

    from ingest.parser import UnstructuredParser

    path = Path(__file__).resolve().parent.parent / "demo" / "peps" / "pep-0572.rst"
    parsed = UnstructuredParser().parse(str(path), path.read_bytes(), "rst")
    chunked = StructureChunker(embedder, max_tokens=200).chunk(parsed)
    assert len(chunked.chunks) > 20
    for c in chunked.chunks:
        # counted with the model's own tokenizer, special tokens included: never over 256
        assert len(embedder.tokenizer.encode(c.text).ids) <= embedder.max_seq_length
        assert c.n_tokens <= 200
    assert parsed.title == "Assignment Expressions"
