"""Request bodies of the HTTP API: strict where citewise decides, lenient where OpenAI clients send extras."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.core.settings import MAX_QUESTION_CHARS, TOP_K_MAX, ResearchOptions


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    check: bool = Field(False, description="Treat the question as a claim and give a verdict.")
    stream: bool = Field(False, description="Answer with Server-Sent Events: research steps, tokens, citations, "
                                            "then the whole report.")
    options: ResearchOptions = Field(default_factory=ResearchOptions,  # type: ignore[arg-type]
                                     description="Overrides of research.* settings for this report, within the same bounds.")


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
