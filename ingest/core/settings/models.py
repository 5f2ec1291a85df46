"""Which models run, and how."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ingest.core.settings.base import Section


class ModelSettings(Section):
    """Which models to run. A value is a built-in name (see `citewise models`) or a local path."""

    cache_dir: Path | None = Field(
        default=None,
        description="Where assembled GGUF files live; default $XDG_DATA_HOME/citewise/models.",
    )
    embedder: str = Field(
        default="all-MiniLM-L6-v2", min_length=1,
        description="Built-in embedder name or a sentence-transformers model folder.",
    )
    writer: str = Field(
        default="qwen2.5-coder-1.5b-instruct", min_length=1,
        description="GGUF used to write reports: built-in name or a .gguf path.",
    )
    fast: str = Field(
        default="qwen2.5-coder-0.5b-instruct", min_length=1,
        description="Small GGUF for chunk context and query analysis: built-in name or a .gguf path.",
    )
    threads: int = Field(default=0, ge=0, description="CPU threads for models; 0 means all cores.")
    context_window: int = Field(
        default=4096, ge=512, description="llama.cpp context (tokens) for the writer and the fast model."
    )
    lookup_draft: int = Field(
        default=8, ge=0, le=32,
        description="Tokens drafted from the prompt per step of constrained (JSON) decoding and verified in one "
                    "pass (prompt lookup): a report restates its evidence, so most drafts are kept; the output is "
                    "exactly greedy decoding's. 0 decodes one token per pass.")
    lookup_ngram: int = Field(
        default=3, ge=2, le=8,
        description="Longest run of recent tokens looked up in the prompt to draft from (shorter runs are tried "
                    "next, down to 2).")
