"""Dense candidates: the embedder's vectors searched exactly in the index's FAISS."""

from __future__ import annotations

from ingest.core.embedder import Embedder
from ingest.core.index import Index
from retrieval.stages import Ranked
from retrieval.torch_threads import torch_threads


class DenseSource:
    """All queries embedded in one batch, so expansions cost one forward pass, not one each."""

    name = "dense"

    def __init__(self, index: Index, embedder: Embedder, threads: int = 1) -> None:
        self.index = index
        self.embedder = embedder
        self.threads = threads

    def search(self, queries: list[str], k: int) -> list[Ranked]:
        if not queries:
            return []
        with torch_threads(self.threads):
            vectors = self.embedder.embed(queries)
        return self.index.search_dense(vectors, k)
