"""Request bodies of the HTTP API: strict where citewise decides, lenient where OpenAI clients send extras."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from generate.research import MAX_QUESTION_CHARS
from retrieval.settings import TOP_K_MAX


class ReportOptions(BaseModel):
    """Per-request overrides of the `research.*` settings; unset fields keep the server's settings."""

    model_config = ConfigDict(extra="forbid")

    max_rounds: int | None = Field(None, ge=1, le=6, description="Search rounds at most.")
    plan: Literal["auto", "always", "never"] | None = Field(None, description="Ask the search model for queries.")
    time_budget_s: float | None = Field(None, gt=0, le=600, description="No new search round starts after this.")
    writer_max_tokens: int | None = Field(None, ge=16, le=2048, description="Tokens the writer may generate.")
    max_statements: int | None = Field(None, ge=1, le=10, description="Cited statements at most.")

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    check: bool = Field(False, description="Treat the question as a claim and give a verdict.")
    stream: bool = Field(False, description="Answer with Server-Sent Events: research steps, tokens, citations, "
                                            "then the whole report.")
    options: ReportOptions = Field(default_factory=ReportOptions)


class SearchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(5, ge=1, le=TOP_K_MAX, description="Passages returned; the bounds of search.top_k.")
    options: SearchOptions = Field(default_factory=SearchOptions)


class TextDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255, description="File name; its extension names the format "
                                                                "(.md, .txt, .rst, .html, .eml).")
    text: str = Field(min_length=1)


class TextUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[TextDocument] = Field(min_length=1, max_length=100)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's chat completion request; sampling fields are accepted and ignored (reports are greedy)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="Always `citewise`.", json_schema_extra={"enum": ["citewise"]})
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
