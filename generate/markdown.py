"""Markdown for the terminal: answer, numbered citations, and a sources list with quotes."""

from __future__ import annotations

import re
from typing import Callable

from generate.report import Report
from ingest.core.text import normalize_ws

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def escape_markdown(text: str) -> str:
    """`text` with every ASCII punctuation character backslash-escaped: CommonMark then renders it exactly as
    written, so a quote's `*`, `_`, backticks, `[x](y)`, `<b>` or leading `#`/`1.` cannot restyle it."""
    return _PUNCTUATION.sub(r"\\\1", text)


def _where(section: list[str], page: int | None, esc: Callable[[str], str] = str) -> str:
    parts = [" > ".join(esc(s) for s in section)] if section else []
    if page:
        parts.append(f"page {page}")
    return ", ".join(parts)


def render_markdown(report: Report, literal: bool = False) -> str:
    """A report a reader can check: every [n] points at a source line with the verbatim quote.

    `literal` escapes everything the documents, the question or the model wrote, for a Markdown renderer (the
    terminal) to show it as stored; without it the Markdown stays plain to read or pipe.
    """
    esc: Callable[[str], str] = escape_markdown if literal else str
    lines = [f"## {esc(report.question)}", ""]
    if report.verdict:
        lines += [f"**Verdict: {esc(report.verdict)}**", ""]
    lines += [esc(report.answer), ""]
    if report.statements:
        if not report.answered:
            lines += ["Related statements from the documents (they do not answer the question):", ""]
        for st in report.statements:
            refs = "".join(f"[{c.number}]" for c in st.citations)
            lines.append(f"- {esc(st.text)} {refs}")
        lines.append("")
    if report.unsupported:
        lines.append("**Not shown as cited** (no citation passed verification):")
        for st in report.unsupported:
            why = "; ".join(st.problems) or "unsupported"
            lines.append(f"- ~~{esc(st.text)}~~ ({esc(why)})")
        lines.append("")
    if report.cited:
        lines.append("### Sources")
        for c in report.cited:
            where = _where(c.section, c.page, esc)
            lines.append(f"{c.number}. **{esc(c.title)}** — {_code(c.source, literal)}" + (f", {where}" if where else "")
                         + f", chars {c.start}–{c.end}"
                         + (" (corroborates: same passage, added by verification)" if c.corroborating else "")
                         + (" (located by verification: the sentence holding the statement's names and numbers)"
                            if c.located else ""))
            lines.append(f"   > {esc(normalize_ws(c.quote))}")
        lines.append("")
    elif not report.answered and report.evidence:
        lines.append("### Closest passages found (they do not answer the question)")
        for ev in report.evidence[:3]:
            text = normalize_ws(ev.text)[:200]
            lines.append(f"- **{esc(ev.title)}** — {_code(ev.source, literal)}: {esc(text)}")
        lines.append("")
    t = report.timings
    lines.append(f"_{t.get('total_s', 0):.1f} s: search {t.get('search_s', 0):.1f}, "
                 f"rerank {t.get('rerank_s', 0):.1f}, plan {t.get('plan_s', 0):.1f}, "
                 f"prefill {t.get('prefill_s', 0):.1f}, decode {t.get('decode_s', 0):.1f}, "
                 f"other {t.get('other_s', 0):.1f}; {report.tokens.get('prompt', 0)} prompt + "
                 f"{report.tokens.get('completion', 0)} generated tokens; stopped: {esc(report.stop_reason)}_")
    return "\n".join(lines)


def _code(text: str, literal: bool) -> str:
    """A path as a code span; literal, one fenced by more backticks than it holds (no escapes work inside)."""
    if not literal:
        return f"`{text}`"
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
