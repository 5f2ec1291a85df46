"""Named retrieval systems, so evaluation and the CLI can name any configuration by string."""

from __future__ import annotations

from typing import Callable

from ingest.store.bm25_index import Bm25Analyzer, Bm25Index
from retrieval.hybrid import HybridSearcher, rrf

#: A system maps (query, how many chunks) to ranked (chunk id, score) pairs.
System = Callable[[str, int], list[tuple[int, float]]]

SYSTEMS = ("bm25", "bm25-plain", "dense", "hybrid", "full")
DESCRIPTIONS = {
    "bm25": "BM25 with the index's analyzer (Snowball stemming, English stopwords by default)",
    "bm25-plain": "BM25 without stemming or stopwords (plain bm25s tokenization)",
    "dense": "MiniLM embeddings, exact inner product in FAISS",
    "hybrid": "dense + BM25 fused by reciprocal rank fusion",
    "full": "the search model's full pipeline (today: the hybrid first stage)",
}


def build_system(name: str, searcher: HybridSearcher) -> System:
    """Build one named system over an opened index; unknown names are a clear error."""
    index = searcher.index
    if name == "bm25":
        return lambda q, n: index.search_bm25(q, n)
    if name == "bm25-plain":
        rows = list(index.store.index_texts())
        plain = Bm25Index.build(Bm25Analyzer(None, None), [r[0] for r in rows], [r[1] for r in rows])
        return lambda q, n: plain.search(q, n)
    if name == "dense":
        return lambda q, n: index.search_dense(searcher.embedder.embed([q]), n)[0]
    if name in ("hybrid", "full"):
        def hybrid(q: str, n: int) -> list[tuple[int, float]]:
            rankings = searcher.rankings(q)
            return rrf(rankings, searcher.rrf_k)[:n]

        return hybrid
    from ingest.errors import InvalidRequestError

    raise InvalidRequestError(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}")
