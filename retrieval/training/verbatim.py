"""Finding a span in stored text the way a quote is checked: verbatim up to runs of whitespace.

Evidence sentences and labelled answers are held to the same rule as a report's quotes
(generate/verifier.py compares `normalize_ws` of both sides): a span the model rephrased, or one a
dataset's offsets no longer point at, is not in the text, so it cannot teach the scorer anything true.
A model's copied answer may also differ in case and quote marks (`locate_answer`); what is kept is the
text's own slice, so every stored answer is verbatim all the same.
"""

from __future__ import annotations

import re

from retrieval.sentences import sentence_spans

#: Punctuation and quotes a model puts around a copied phrase; stripped before the match, never inside it.
_AROUND = " \t\n\"'“”‘’«»`.,;:!?()[]"
#: Quote marks, any of which a copied answer may write for any other: inside a JSON string a model writes the
#: passage's double quotes as single ones rather than escape them.
_QUOTES = "\"'“”‘’«»`´"
_ANY_QUOTE = "[" + re.escape(_QUOTES) + "]"
#: How `locate_answer` matches, for the recipe of a synthetic set (a set kept under another rule is not resumed).
ANSWER_MATCH = "verbatim up to whitespace, case and quote marks; stored in the passage's wording"


def locate(text: str, span: str, start: int = 0, *, loose: bool = False) -> tuple[int, int] | None:
    """(start, end) in `text` of the first occurrence of `span` at or after `start`, whitespace runs
    matching any whitespace run, or None when it is not there (an empty span is never found). `loose` also
    lets case and the kind of quote mark differ."""
    words = span.split()
    if not words:
        return None
    if loose:
        pattern = r"\s+".join("".join(_ANY_QUOTE if ch in _QUOTES else re.escape(ch) for ch in w) for w in words)
    else:
        pattern = r"\s+".join(re.escape(w) for w in words)
    m = re.search(pattern, text[start:], flags=re.IGNORECASE if loose else 0)
    return (start + m.start(), start + m.end()) if m else None


def locate_answer(text: str, answer: str) -> tuple[int, int] | None:
    """Where a model's copied answer is in `text`: as given, else without the punctuation or quotes it
    put around it, else either of those with case and quote marks free ("The Normans" for "the Normans",
    'locked up' for "locked up"). What is returned is always a slice of `text` itself, so the item's
    answer is the passage's wording, not the model's."""
    trimmed = answer.strip(_AROUND)
    for loose in (False, True):
        for candidate in dict.fromkeys([answer, trimmed]):
            found = locate(text, candidate, loose=loose)
            if found is not None:
                return found
    return None


def sentence_at(text: str, start: int, end: int) -> str:
    """The sentence (retrieval/sentences.py's splitter) holding text[start:end]; the sentences it spans
    when the span crosses a boundary."""
    spans = [(s, e) for s, e in sentence_spans(text) if s < end and e > start]
    if not spans:
        return text[start:end]
    return text[spans[0][0]: spans[-1][1]]
