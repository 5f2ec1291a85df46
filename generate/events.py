"""Typed events a report emits while it is researched and written.

The CLI prints them, the HTTP API sends them as Server-Sent Events (`name` is the SSE event name,
`to_dict()` its data), the OpenAI route turns them into comments, and the web page reads the SSE.
One definition keeps the four in step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar

from generate.report import Citation, Report


@dataclass(frozen=True)
class Event:
    """Base: `name` is the event's wire name; `to_dict()` its payload."""

    name: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Searched(Event):
    """One query of a round was searched."""

    name: ClassVar[str] = "search"
    round: int
    query: str
    hits: int


@dataclass(frozen=True)
class Planning(Event):
    """The search model is asked for new queries before the next round."""

    name: ClassVar[str] = "plan"
    round: int


@dataclass(frozen=True)
class EvidenceSelected(Event):
    """A round's evidence sentences were chosen; `best` is the highest similarity to the question, and
    `probability` the highest probability of answering it (None when the index has no trained scorer)."""

    name: ClassVar[str] = "evidence"
    round: int
    sentences: int
    best: float
    probability: float | None = None


@dataclass(frozen=True)
class Writing(Event):
    """The writer starts reading the evidence."""

    name: ClassVar[str] = "write"
    evidence: int
    model: str


@dataclass(frozen=True)
class TokenWritten(Event):
    """Raw writer output as it is generated (JSON: the CLI and page show its string fields)."""

    name: ClassVar[str] = "token"
    text: str


@dataclass(frozen=True)
class CitationVerified(Event):
    """A citation that passed verification, numbered as the report's sources list numbers it."""

    name: ClassVar[str] = "citation"
    statement: int
    statement_text: str
    citation: Citation

    def to_dict(self) -> dict[str, Any]:
        return {"statement": self.statement, "statement_text": self.statement_text, **asdict(self.citation)}


@dataclass(frozen=True)
class ReportReady(Event):
    """The finished, verified report: always the last event of a report that did not fail."""

    name: ClassVar[str] = "report"
    report: Report

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict()


OnEvent = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The listener for callers that want only the report."""
