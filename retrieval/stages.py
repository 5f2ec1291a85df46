"""The small interfaces each retrieval stage implements, so any stage can be swapped or switched off.

A stage sees chunk ids with scores, never the index itself: the pipeline fetches texts only for
the few candidates a reranker will read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ingest.core.types import ChunkRow

#: A ranked list of (chunk id, score), best first.
Ranked = list[tuple[int, float]]


@dataclass
class Ranking:
    """One source's ranking for one search query (`query_index` 0 is the user's own question)."""

    source: str
    query_index: int
    items: Ranked


@dataclass
class SearchHit:
    """One retrieved chunk with the score it ranked by and each first-stage source's view of it."""

    chunk: ChunkRow
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class QueryAnalysis:
    """What the search model made of a question: the queries to run (the question first)."""

    question: str
    queries: list[str]
    passage: str = ""
    cached: bool = False
    seconds: float = 0.0  # when cached: what it cost when it was made
    cpu_seconds: float = 0.0
    error: str = ""

    def search_queries(self) -> list[str]:
        """The question, the rewritten queries, then the hypothetical answer passage (HyDE)."""
        out = [self.question, *[q for q in self.queries if q.strip() and q.strip() != self.question]]
        return out + ([self.passage] if self.passage.strip() else [])


@dataclass
class StageTrace:
    """One stage's view for `--explain`: what it did, how long it took, its top candidates."""

    stage: str
    detail: str
    seconds: float
    items: Ranked = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    kind: str = ""  # analysis | source | fusion | rerank: what a report's timings add up by


class QueryAnalyzer(Protocol):
    """Turns a question into search queries (expansion, decomposition, hypothetical answer)."""

    def analyze(self, question: str) -> QueryAnalysis: ...


class CandidateSource(Protocol):
    """A first-stage retriever: one ranking per query, `k` candidates each."""

    name: str

    def warm_up(self) -> None:
        """Load what the first search would (models, vectors), so it does not pay for that."""
        ...

    def describe(self) -> str:
        """What it searches now (which vectors, say), for `--explain`; empty when there is nothing to add."""
        ...

    def search(self, queries: list[str], k: int) -> list[Ranked]: ...


class Fusion(Protocol):
    """Merges rankings from several sources and queries into one."""

    name: str

    def fuse(self, rankings: list[Ranking]) -> Ranked: ...


class Reranker(Protocol):
    """Re-scores the first `top_n` candidates by reading their text; the rest keep their order."""

    name: str
    top_n: int

    def rerank(self, query: str, ranked: Ranked, texts: dict[int, str]) -> tuple[Ranked, dict[str, Any]]: ...

    def warm_up(self) -> None:
        """Load the model it reads with now (once), so the first search does not pay for it."""
        ...
