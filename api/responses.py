"""Response bodies of the HTTP API, so /docs shows them and schemathesis checks what the server sends."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class SearchHitOut(BaseModel):
    rank: int
    score: float
    doc_id: str
    title: str
    source: str
    section: list[str]
    page: int | None
    start: int = Field(description="Character offset of the passage in the stored document text.")
    end: int
    text: str


class SearchResponse(BaseModel):
    query: str
    hits: list[SearchHitOut]


class DocumentOut(BaseModel):
    id: str
    source: str
    title: str
    format: str
    content_hash: str
    n_chunks: int
    n_chars: int
    ingested_at: float


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class DocumentText(DocumentOut):
    length: int = Field(description="Characters in the whole stored text.")
    start: int
    end: int
    text: str = Field(description="The stored text from start to end, exactly as quotes are checked against.")


class Removed(BaseModel):
    removed: str = Field(description="The id of the removed document.")
    source: str
    chunks: int
    warnings: list[str] = Field(default_factory=list, description="What training kept of the document and could "
                                "not be updated now (the trained encoder's vectors, the training questions), and why.")


class JobOut(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "interrupted"]
    created: float
    updated: float
    files: list[dict[str, Any]] = Field(description="name, staged and final path of each uploaded file.")
    progress: dict[str, dict[str, int | None]] = Field(description="Per stage: done and total.")
    result: dict[str, Any] | None = Field(description="The ingest summary, file by file where something failed.")
    error: dict[str, str] | None
    note: str


class JobList(BaseModel):
    jobs: list[JobOut]


class UploadAccepted(BaseModel):
    job: JobOut
    status_url: str


class CitationOut(BaseModel):
    number: int = Field(description="The source number the report's [n] markers use.")
    evidence: int = Field(description="The evidence number the writer cited.")
    doc_id: str
    source: str
    title: str
    section: list[str]
    page: int | None
    start: int
    end: int
    quote: str = Field(description="Verified verbatim against the stored document at start:end.")
    support: float
    corroborating: bool = Field(
        default=False, description="Added by verification, not chosen by the writer: another sentence of a cited "
                                   "passage (shown to the writer or not) that the index's corroboration model "
                                   "finds to be evidence too.")
    located: bool = Field(
        default=False, description="Chosen by verification in place of the writer's number, none of whose sentences "
                                   "passed: the shown sentence holding every name and number the statement gives "
                                   "beyond the question (research.citation_choice = specifics).")


class StatementOut(BaseModel):
    text: str
    citations: list[CitationOut]
    status: Literal["cited", "unsupported"]
    problems: list[str]


class EvidenceOut(BaseModel):
    number: int
    chunk_id: int
    doc_id: str
    source: str
    title: str
    headings: list[str]
    page: int | None
    start: int
    end: int
    text: str
    score: float
    similarity: float
    found_by: list[str]
    probability: float | None = Field(
        default=None, description="The index's trained scorer: probability the sentence answers the question "
                                  "(null when the index has no trained scorer).")
    corroboration: float | None = Field(
        default=None, description="The index's corroboration model: probability the sentence is evidence too when "
                                  "another sentence of its passage is cited (null without such a model, or when no "
                                  "sentence of its passage was cited).")
    shown: bool = Field(
        default=True, description="Whether the writer read this sentence. False for a sentence of a cited passage "
                                  "that only a corroborating citation cites, added by verification.")


class TraceStepOut(BaseModel):
    step: str
    round: int
    seconds: float
    detail: dict[str, Any]


class ReportOut(BaseModel):
    question: str
    answered: bool
    answer: str
    verdict: str | None = Field(description="For claims: supports, contradicts or not enough evidence.")
    statements: list[StatementOut] = Field(description="Statements with at least one verified citation.")
    unsupported: list[StatementOut] = Field(description="Drafted statements no citation of which passed.")
    sources: list[CitationOut] = Field(description="Each cited quote once, in source-number order.")
    evidence: list[EvidenceOut]
    trace: list[TraceStepOut]
    stop_reason: str
    timings: dict[str, float]
    tokens: dict[str, int]
    models: dict[str, str]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    parts: dict[str, str]
    index: str


class ModelOut(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]


class ChatMessageOut(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    finish_reason: Literal["stop"]


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCitation(BaseModel):
    number: int
    doc_id: str
    title: str
    source: str
    section: list[str]
    page: int | None
    start: int
    end: int
    quote: str


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    citations: list[ChatCitation] = Field(description="Each verified quote the Markdown's [n] markers point at.")
