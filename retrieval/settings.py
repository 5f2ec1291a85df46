"""Settings for the search side."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SearchSettings(BaseModel):
    """First-stage retrieval: dense and BM25 candidates fused by reciprocal rank."""

    top_k: int = Field(default=5, ge=1, le=1000, description="Results shown by `citewise search`.")
    candidates: int = Field(default=100, ge=1, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
