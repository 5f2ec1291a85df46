"""Finding a span in stored text the way a quote is checked: verbatim up to runs of whitespace.

Training answers and evidence sentences are held to the same rule as a report's quotes
(generate/verifier.py compares `normalize_ws` of both sides): a span the model rephrased, or one a
dataset's offsets no longer point at, is not in the text, so it cannot teach the scorer anything true.
"""

from __future__ import annotations

import re

from retrieval.sentences import sentence_spans

#: Punctuation and quotes a model puts around a copied phrase; stripped before the match, never inside it.
_AROUND = " \t\n\"'“”‘’«»`.,;:!?()[]"


def locate(text: str, span: str, start: int = 0) -> tuple[int, int] | None:
    """(start, end) in `text` of the first occurrence of `span` at or after `start`, whitespace runs
    matching any whitespace run, or None when it is not there (an empty span is never found)."""
    words = span.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    m = re.search(pattern, text[start:])
    return (start + m.start(), start + m.end()) if m else None


def locate_answer(text: str, answer: str) -> tuple[int, int] | None:
    """Where a model's copied answer is in `text`: as given, else without the punctuation or quotes it
    put around it. What is returned is always a slice of `text` itself."""
    found = locate(text, answer)
    if found is None:
        trimmed = answer.strip(_AROUND)
        found = locate(text, trimmed) if trimmed != answer.strip() else None
    return found


def sentence_at(text: str, start: int, end: int) -> str:
    """The sentence (retrieval/sentences.py's splitter) holding text[start:end]; the sentences it spans
    when the span crosses a boundary."""
    spans = [(s, e) for s, e in sentence_spans(text) if s < end and e > start]
    if not spans:
        return text[start:end]
    return text[spans[0][0]: spans[-1][1]]
