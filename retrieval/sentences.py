"""Sentence spans with character offsets, so evidence can be quoted and located exactly.

A regex splitter rather than spaCy: it runs on a few dozen chunks per question, where a
parser's load time and per-call cost would show; lines (list items, headings, code) are
kept apart because the chunker joins elements with blank lines.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r"""(?<=[.!?])(["'”’)\]]*)\s+(?=["'“‘(\[]?[A-Z0-9])""")
_ABBREVIATIONS = frozenset(
    "e.g i.e etc al vs cf fig figs eq eqs no nos dr mr mrs ms prof st jr sr inc ltd co approx ca resp vol pp".split()
)


def _ends_with_abbreviation(text: str) -> bool:
    """True when the text before a full stop is an abbreviation or an initial ("J.")."""
    word = re.findall(r"([A-Za-z][A-Za-z.]*)\.$", text[-12:])
    if not word:
        return False
    w = word[-1].lower()
    return w in _ABBREVIATIONS or (len(w) == 1 and text[-2:-1].isupper())


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence of text[start:end], trimmed of surrounding space."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text[start:end]):
        base = start + line.start()
        piece = line.group()
        cut = 0
        for m in _BOUNDARY.finditer(piece):
            if _ends_with_abbreviation(piece[: m.start()].rstrip("\"'”’)]")):
                continue
            spans.append((base + cut, base + m.start() + len(m.group(1))))
            cut = m.end()
        spans.append((base + cut, base + len(piece)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out
