"""The report citewise returns: an answer, cited statements, the evidence, and how it was found."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from retrieval.evidence import Evidence


@dataclass
class Citation:
    """A quote that was checked verbatim against the stored document at these offsets."""

    evidence: int
    doc_id: str
    source: str
    title: str
    section: list[str]
    page: int | None
    start: int
    end: int
    quote: str
    support: float
    number: int = 0  # the report's source number, shared by every citation of the same quote
    #: Added by verification, not chosen by the writer: another sentence of a cited passage that the index's
    #: corroboration model finds to be evidence too (research.corroboration).
    corroborating: bool = False
    #: Chosen by verification in place of the writer's number, none of whose sentences passed: the shown sentence
    #: holding every name and number the statement gives beyond the question (research.citation_choice "specifics").
    located: bool = False


@dataclass
class Statement:
    """A claim of the report; `cited` only when at least one citation passed every check."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    status: str = "cited"  # cited | unsupported
    problems: list[str] = field(default_factory=list)


@dataclass
class TraceStep:
    """One step of the research loop, recorded so a user can see why the report says what it says."""

    step: str
    round: int
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    question: str
    answered: bool
    answer: str
    statements: list[Statement]
    unsupported: list[Statement]
    evidence: list[Evidence]
    trace: list[TraceStep]
    stop_reason: str
    timings: dict[str, float]
    tokens: dict[str, int]
    models: dict[str, str]
    verdict: str | None = None  # for claims: supports | contradicts | not enough evidence

    def number_citations(self) -> None:
        """Number the sources once, in order of first use; a quote cited twice keeps one number.

        Done once when the report is made, so the Markdown, the events, the OpenAI route and the page all
        show the same numbers.
        """
        numbers: dict[tuple[str, int, int], int] = {}
        for st in self.statements:
            for c in st.citations:
                c.number = numbers.setdefault((c.doc_id, c.start, c.end), len(numbers) + 1)

    @property
    def cited(self) -> list[Citation]:
        """Each distinct citation once, in source-number order: the report's numbered sources."""
        seen: dict[int, Citation] = {}
        for st in self.statements:
            for c in st.citations:
                seen.setdefault(c.number, c)
        return [seen[n] for n in sorted(seen)]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = [asdict(c) for c in self.cited]
        return data
