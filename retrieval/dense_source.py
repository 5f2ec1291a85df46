"""Dense candidates: the embedder's vectors searched exactly in the index's FAISS, or the corpus as the index's
trained encoder embeds it when `citewise train` published those vectors (search.dense_vectors)."""

from __future__ import annotations

from typing import Callable

from ingest.core.embedder import Embedder
from ingest.core.index import Index
from ingest.core.scorer import CorpusVectors
from retrieval.stages import Ranked
from retrieval.torch_threads import torch_threads


class DenseSource:
    """All queries embedded in one batch, so expansions cost one forward pass, not one each.

    `trained` is asked at every search, not once, so a scorer published (or replaced) while a server runs is
    searched from the next query on; it returns None when the index has no trained vectors to search.
    """

    name = "dense"

    def __init__(self, index: Index, embedder: Embedder, threads: int = 1,
                 trained: Callable[[], CorpusVectors | None] | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.threads = threads
        self.trained = trained

    def warm_up(self) -> None:
        """The trained vectors (caught up with the index), when searched; the embedder is warmed by its owner."""
        corpus = self.trained() if self.trained is not None else None
        if corpus is not None:
            corpus.warm_up(self.index)

    def describe(self) -> str:
        """Which vectors a search reads now: a scorer published since the last search changes it."""
        corpus = self.trained() if self.trained is not None else None
        if corpus is None:
            return "the embedder's vectors"
        return f"the trained encoder's vectors ({corpus.describe()})"

    def search(self, queries: list[str], k: int) -> list[Ranked]:
        if not queries:
            return []
        corpus = self.trained() if self.trained is not None else None
        if corpus is not None:
            return corpus.search(self.index, queries, k)
        with torch_threads(self.threads):
            vectors = self.embedder.embed(queries)
        return self.index.search_dense(vectors, k)
