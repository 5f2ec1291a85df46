"""Search: each stage of the retrieval pipeline can be switched or replaced here."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from ingest.core.settings.base import Section

#: Most results one search returns: `citewise search -k` and `/v1/search` `k` share this bound.
TOP_K_MAX = 1000


class QueryAnalysisSettings(Section):
    """The search model rewriting a question into search queries before retrieval."""

    enabled: bool = Field(default=False, description="Rewrite questions with the search model (costs an LLM call).")
    modes: list[Literal["expand", "decompose", "hyde"]] = Field(
        default_factory=lambda: ["expand", "decompose", "hyde"],
        description="expand: synonyms/terms; decompose: one query per sub-question; hyde: a hypothetical "
                    "answer passage searched like a query.")
    model: Literal["fast", "writer"] = Field(default="fast", description="Which configured GGUF model rewrites.")
    max_queries: int = Field(default=3, ge=0, le=8, description="Most rewritten queries (the schema enforces it).")
    max_tokens: int = Field(default=256, ge=16, description="Token budget for the rewrite.")
    generated_weight: float = Field(default=0.5, ge=0, description="Fusion weight of a generated query's rankings, "
                                                                   "relative to the question's own (1).")
    cache_dir: Path | None = Field(default=None, description="Folder for the on-disk cache of rewrites by query "
                                                             "text; unset keeps an in-memory cache only.")
    cache_size: int = Field(default=1024, ge=1, description="Rewrites kept in the in-memory LRU.")


class RerankSettings(Section):
    """Second stage: rerankers applied in order to the head of the fused ranking."""

    stages: list[Literal["late", "llm", "cross-encoder", "trained"]] = Field(
        default_factory=list, description="Rerankers in order; empty means none (the fast path). 'trained' is the "
                                          "index's own scorer, made by `citewise train`.")
    llm_model: Literal["fast", "writer"] = Field(default="fast", description="GGUF model that judges relevance.")
    llm_top_n: int = Field(default=10, ge=1, description="Candidates the LLM judges (bounds its cost).")
    llm_budget_s: float = Field(default=30.0, gt=0, description="Seconds per query after which the LLM stops "
                                                                "judging; judged ones are reordered, the rest "
                                                                "keep their place.")
    llm_blend: float = Field(default=0.5, ge=0, le=1, description="Weight of the LLM's P(yes) against the "
                                                                  "first-stage score (1 = LLM only).")
    llm_passage_chars: int = Field(default=800, ge=50, description="Passage characters shown to the LLM.")
    cross_encoder_path: Path | None = Field(default=None, description="Local sentence-transformers CrossEncoder "
                                                                      "folder, needed by the cross-encoder stage.")
    cross_encoder_top_n: int = Field(default=50, ge=1, description="Candidates the cross-encoder scores.")
    cross_encoder_blend: float = Field(default=1.0, ge=0, le=1, description="Weight of the cross-encoder's score.")
    trained_top_n: int = Field(default=30, ge=1, description="Candidates the index's trained scorer reads.")
    trained_blend: float = Field(default=0.5, ge=0, le=1, description="Weight of the trained scorer's probability "
                                                                      "against the first-stage score.")
    late_top_n: int = Field(default=20, ge=1, description="Candidates rescored by MaxSim over token vectors.")
    late_blend: float = Field(default=0.5, ge=0, le=1, description="Weight of the MaxSim score.")
    late_tokens: Literal["embedder", "fp32"] = Field(
        default="embedder", description="Where MaxSim's token vectors come from: 'embedder', the embedding backend "
                                        "(int8 ONNX when ingest.embed_backend resolves to it); 'fp32', the torch model.")


class SearchSettings(Section):
    """Query analysis, candidate generation, fusion and reranking."""

    top_k: int = Field(default=5, ge=1, le=TOP_K_MAX, description="Results shown by `citewise search`.")
    candidates: int = Field(default=100, ge=1, description="Candidates taken from each retriever before fusion.")
    query_threads: int = Field(default=1, ge=0, description="torch threads while embedding queries (and "
                                                            "late-interaction passages); 0 = the process default. "
                                                            "One is fastest for one short text, most of all on a "
                                                            "busy machine: extra threads spin-wait.")
    sources: list[Literal["dense", "bm25"]] = Field(default_factory=lambda: ["dense", "bm25"],
                                                    description="First-stage retrievers.")
    dense_vectors: Literal["auto", "embedder", "trained"] = Field(
        default="auto",
        description="What the dense retriever searches: 'embedder' the shipped embedder's vectors; 'trained' the "
                    "corpus as the index's trained encoder embeds it (`citewise train` publishes those vectors "
                    "with its scorer when they rank its held-out questions' passages at least as well); 'auto' "
                    "the trained ones when the index has them. Evidence selection and verification keep the "
                    "embedder's cosines either way (their cut-offs are on its scale).")
    fusion: Literal["rrf", "score"] = Field(
        default="score", description="rrf: reciprocal rank fusion; score: weighted z-score fusion, which keeps "
                                     "how far ahead a candidate is (docs/retrieval.md).")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    fusion_weights: dict[str, float] = Field(default_factory=lambda: {"dense": 1.0, "bm25": 1.0},
                                             description="Weight of each source in fusion.")
    fusion_normalization: Literal["z", "minmax"] = Field(default="z", description="Score normalization "
                                                                                  "for score fusion.")
    analysis: QueryAnalysisSettings = Field(default_factory=QueryAnalysisSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
