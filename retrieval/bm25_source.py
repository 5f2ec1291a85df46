"""BM25 candidates from the index's own analyzer (stemming and stopwords as configured)."""

from __future__ import annotations

from ingest.core.index import Index
from retrieval.stages import Ranked


class Bm25Source:
    """Lexical matches: exact terms, names and numbers that embeddings blur."""

    name = "bm25"

    def __init__(self, index: Index) -> None:
        self.index = index

    def warm_up(self) -> None:
        pass  # the index loads its BM25 files itself, on the first search of each generation

    def describe(self) -> str:
        return ""

    def search(self, queries: list[str], k: int) -> list[Ranked]:
        return [self.index.search_bm25(q, k) for q in queries]
