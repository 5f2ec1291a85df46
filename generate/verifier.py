"""Checks every citation against the stored documents before a statement may be shown as cited."""

from __future__ import annotations

from typing import Callable

import numpy as np

from generate.report import Citation, Statement
from ingest.embedder import Embedder
from retrieval.evidence import Evidence


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


class CitationVerifier:
    """A citation passes when its quote is verbatim in the current stored text of its document at
    its offsets, the quote bears on the question, and the statement is close enough in meaning to
    the quote (embedder cosines).

    The first check makes an invented or stale quote impossible to pass off. The second catches a
    question the documents do not cover: the writer then restates whatever sentence it was shown,
    so statement and quote agree while neither answers the question. The third catches the
    small-model failure of citing a real sentence that says something else.
    """

    def __init__(self, document_text: Callable[[str], str | None], embedder: Embedder,
                 support_similarity: float = 0.3, relevance_floor: float = 0.0) -> None:
        self.document_text = document_text
        self.embedder = embedder
        self.support_similarity = support_similarity
        self.relevance_floor = relevance_floor

    def quote_problem(self, ev: Evidence) -> str | None:
        """Why the evidence's quote cannot be shown as verbatim, or None when it can."""
        text = self.document_text(ev.doc_id)
        if text is None:
            return f"document {ev.doc_id} is no longer in the index"
        if not (0 <= ev.start < ev.end <= len(text)):
            return f"offsets {ev.start}:{ev.end} are outside document {ev.doc_id}"
        if normalize_ws(text[ev.start:ev.end]) != normalize_ws(ev.text):
            return f"the text at {ev.start}:{ev.end} of {ev.source} differs from the quote"
        return None

    def answer_support(self, answer: str, statements: list[Statement]) -> float:
        """How close the free-text answer is to the best verified quote: an answer with no
        support among the citations is a claim from the model's memory, not from the documents."""
        quotes = [c.quote for st in statements for c in st.citations]
        if not answer or not quotes:
            return 0.0
        vectors = self.embedder.embed([answer] + quotes)
        return float((vectors[1:] @ vectors[0]).max())

    def verify(self, drafts: list[tuple[str, list[int]]], evidence: list[Evidence]) -> list[Statement]:
        drafts = _merge_duplicates(drafts)
        by_number = {ev.number: ev for ev in evidence}
        texts = [t for t, _ in drafts]
        vectors = self.embedder.embed(texts + [ev.text for ev in evidence]) if texts and evidence else None
        ev_row = {ev.number: len(texts) + i for i, ev in enumerate(evidence)}
        out = []
        for i, (text, ids) in enumerate(drafts):
            st = Statement(text=text)
            for n in ids:
                ev = by_number.get(n)
                if ev is None:
                    st.problems.append(f"[{n}] is not an evidence number that was shown")
                    continue
                problem = self.quote_problem(ev)
                if problem:
                    st.problems.append(f"[{n}] {problem}")
                    continue
                if ev.similarity < self.relevance_floor:
                    st.problems.append(f"[{n}] does not bear on the question (similarity {ev.similarity:.2f} "
                                       f"< {self.relevance_floor:g})")
                    continue
                assert vectors is not None
                support = float(np.dot(vectors[i], vectors[ev_row[n]]))
                if support < self.support_similarity:
                    st.problems.append(f"[{n}] does not support the statement (similarity {support:.2f})")
                    continue
                st.citations.append(Citation(
                    evidence=n, doc_id=ev.doc_id, source=ev.source, title=ev.title, section=list(ev.headings),
                    page=ev.page, start=ev.start, end=ev.end, quote=ev.text, support=round(support, 3)))
            if not ids:
                st.problems.append("no evidence cited")
            st.status = "cited" if st.citations else "unsupported"
            out.append(st)
        return out


def _merge_duplicates(drafts: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """Small models repeat a statement with other evidence; keep it once with all its numbers."""
    merged: dict[str, tuple[str, list[int]]] = {}
    for text, ids in drafts:
        key = normalize_ws(text).lower()
        if key in merged:
            merged[key][1].extend(i for i in ids if i not in merged[key][1])
        else:
            merged[key] = (text, list(ids))
    return list(merged.values())
