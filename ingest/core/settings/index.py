"""Where the index lives and how its parts are built."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from ingest.core.settings.base import Section


class IndexSettings(Section):
    """Where the index lives and how its BM25 side analyses text."""

    path: Path = Field(default=Path("citewise-index"), description="Index directory.")
    bm25_stemmer: str | None = Field(
        default="english", description="Snowball stemmer language for BM25, or null for none."
    )
    bm25_stopwords: str | None = Field(default="en", description="Stopword list for BM25, or null.")
    bm25_neighbours: int = Field(
        default=0, ge=0, le=8,
        description="Chunks before and after a chunk, in its document, whose text its BM25 entry also holds, for "
                    "short documents whose terms spread over a few chunks (abstracts). Search still returns and "
                    "quotes the chunk alone. It hurts long documents, where an answer's neighbours then rank beside it "
                    "(docs/index-format.md). A writer (`citewise ingest`) applies a change by rebuilding BM25 only; "
                    "readers search what the index holds.",
    )
    dense_index: Literal["auto", "flat", "hnsw"] = Field(
        default="auto",
        description="FAISS index type: 'flat' is exact, 'hnsw' approximate; 'auto' is flat below exact_below "
                    "vectors and HNSW from there on (`citewise eval bench-search` measures the trade).",
    )
    exact_below: int = Field(
        default=20_000, ge=0,
        description="With dense_index=auto: collections smaller than this use exact search, whose cost grows "
                    "linearly with the collection while HNSW's barely does (`citewise eval bench-search` measures "
                    "both). An HNSW index shrinking below half of it returns to exact search.",
    )
    hnsw_m: int = Field(default=32, ge=4, le=128, description="HNSW links per vector (memory and recall).")
    hnsw_ef_construction: int = Field(
        default=64, ge=8, description="HNSW build beam width: higher builds slower with a better graph."
    )
    hnsw_ef_search: int = Field(
        default=512, ge=1,
        description="HNSW search beam width (at least k is used): recall against latency; applies at query time "
                    "(`citewise eval bench-search --ef-search` measures the trade).",
    )
    rebuild_removed_fraction: float = Field(
        default=0.2, gt=0, le=1,
        description="HNSW cannot delete: removed chunks are filtered out of results, and a writer rebuilds the "
                    "graph from the store once they exceed this fraction of its vectors.",
    )
