"""Settings for the research loop and the report writer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ResearchSettings(BaseModel):
    """How hard `citewise ask` searches before it writes, and how much the writer may read and write."""

    model_config = ConfigDict(validate_assignment=True)  # an override (a CLI option) is checked like a file

    max_rounds: int = Field(default=2, ge=1, le=6, description="Search rounds at most (the first uses the question).")
    time_budget_s: float = Field(default=60.0, gt=0, description="No new search round starts after this.")
    plan: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Ask the fast model for search queries: 'auto' only when a round found too little.",
    )
    max_queries: int = Field(default=3, ge=1, le=6, description="Queries the planner may add per round.")
    chunks_per_query: int = Field(default=8, ge=1, le=50, description="Chunks retrieved for each query.")
    rerank: list[Literal["late", "llm", "cross-encoder"]] | None = Field(
        default=["late"],
        description="Reranking stages for the research loop's searches (none: the same as search.rerank.stages). "
                    "A report can afford a second more per search than an interactive search can.",
    )
    pool_chunks: int = Field(default=12, ge=1, le=100, description="Chunks whose sentences compete as evidence.")
    evidence_sentences: int = Field(default=6, ge=1, le=40, description="Evidence sentences the writer reads.")
    evidence_documents: int = Field(default=3, ge=0, le=20,
                                    description="Documents the evidence sentences may come from (0: any).")
    evidence_tokens: int = Field(default=256, ge=32, description="Word-piece budget for all evidence sentences.")
    evidence_rank_weight: float = Field(
        default=0.6, ge=0, le=2,
        description="Weight of a sentence's chunk rank (search order) beside its similarity to the question.",
    )
    evidence_document_margin: float | None = Field(
        default=0.1, ge=0,
        description="Another document joins the evidence only when its best sentence scores within this of the "
                    "best document's (none: no limit beyond evidence_documents).",
    )
    enough_similarity: float = Field(
        default=0.55, ge=0, le=1,
        description="Stop searching once the best evidence sentence is this similar to the question.",
    )
    writer_max_tokens: int = Field(default=300, ge=16, description="Tokens the writer may generate.")
    max_statements: int = Field(default=3, ge=1, le=10, description="Cited statements in a report at most.")
    support_similarity: float = Field(
        default=0.3, ge=0, le=1,
        description="A citation counts only if statement and quote are at least this similar (embedder cosine).",
    )
    relevance_floor: float = Field(
        default=0.35, ge=0, le=1,
        description="A citation counts only if its quote is at least this similar to the question (embedder "
                    "cosine); with no evidence sentence this close, the report says the documents do not answer "
                    "and the writer is not called. Chosen on tuning slices, see the README.",
    )
