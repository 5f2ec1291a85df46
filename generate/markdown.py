"""Markdown for the terminal: answer, numbered citations, and a sources list with quotes."""

from __future__ import annotations

from generate.report import Report


def _where(section: list[str], page: int | None) -> str:
    parts = [" > ".join(section)] if section else []
    if page:
        parts.append(f"page {page}")
    return ", ".join(parts)


def render_markdown(report: Report) -> str:
    """A report a reader can check: every [n] points at a source line with the verbatim quote."""
    numbers = {(c.doc_id, c.start, c.end): i for i, c in enumerate(report.cited, 1)}
    lines = [f"## {report.question}", ""]
    if report.verdict:
        lines += [f"**Verdict: {report.verdict}**", ""]
    lines += [report.answer, ""]
    if report.statements:
        if not report.answered:
            lines += ["Related statements from the documents (they do not answer the question):", ""]
        for st in report.statements:
            refs = "".join(f"[{numbers[(c.doc_id, c.start, c.end)]}]" for c in st.citations)
            lines.append(f"- {st.text} {refs}")
        lines.append("")
    if report.unsupported:
        lines.append("**Not shown as cited** (no citation passed verification):")
        for st in report.unsupported:
            why = "; ".join(st.problems) or "unsupported"
            lines.append(f"- ~~{st.text}~~ ({why})")
        lines.append("")
    if report.cited:
        lines.append("### Sources")
        for i, c in enumerate(report.cited, 1):
            where = _where(c.section, c.page)
            lines.append(f"{i}. **{c.title}** — `{c.source}`" + (f", {where}" if where else "")
                         + f", chars {c.start}–{c.end}")
            lines.append(f"   > {' '.join(c.quote.split())}")
        lines.append("")
    elif not report.answered and report.evidence:
        lines.append("### Closest passages found (they do not answer the question)")
        for ev in report.evidence[:3]:
            lines.append(f"- **{ev.title}** — `{ev.source}`: {' '.join(ev.text.split())[:200]}")
        lines.append("")
    t = report.timings
    lines.append(f"_{t.get('total_s', 0):.1f} s: search {t.get('search_s', 0):.1f}, "
                 f"rerank {t.get('rerank_s', 0):.1f}, plan {t.get('plan_s', 0):.1f}, "
                 f"prefill {t.get('prefill_s', 0):.1f}, decode {t.get('decode_s', 0):.1f}, "
                 f"other {t.get('other_s', 0):.1f}; {report.tokens.get('prompt', 0)} prompt + "
                 f"{report.tokens.get('completion', 0)} generated tokens; stopped: {report.stop_reason}_")
    return "\n".join(lines)
