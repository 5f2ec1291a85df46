"""Which models run, and how."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from ingest.core.settings.base import Section


class ModelSettings(Section):
    """Which models to run. A value is a built-in name (see `citewise models`) or a local path."""

    cache_dir: Path | None = Field(
        default=None,
        description="Where assembled GGUF files live; default $XDG_DATA_HOME/citewise/models.",
    )
    backend: Literal["llama-cpp", "openai"] = Field(
        default="llama-cpp",
        description="Where the writer and the fast model run: 'llama-cpp' embedded in this process (GGUF files), "
                    "'openai' on a model server behind the OpenAI chat API at base_url (writer and fast then name "
                    "the server's models).")
    base_url: str | None = Field(
        default=None, description="The model server's OpenAI API root, e.g. http://gpu-box:8080/v1 (backend openai).")
    api_key: SecretStr | None = Field(default=None, description="Bearer key for the model server, if it needs one.")
    request_timeout_s: float = Field(
        default=300.0, gt=0, le=3600, description="Seconds a model server call may take before it is retried.")
    request_retries: int = Field(
        default=3, ge=0, le=10,
        description="Retries of a failed model server call (connection, timeout, 5xx), with backoff; never once "
                    "text has been streamed.")
    schema_format: Literal["auto", "json_schema", "json_object"] = Field(
        default="auto",
        description="How JSON schemas travel to the model server: 'json_schema' (the OpenAI form, vLLM, llama.cpp's "
                    "server), 'json_object' with a schema (llama-cpp-python's server); 'auto' tries both.")
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
    batch_invariant: bool = Field(
        default=False,
        description="Load GGUF models with llama.cpp kernels whose results do not depend on how many tokens a "
                    "forward pass holds (flash attention, weights in their file layout, no one-row passes), so "
                    "prompt-lookup decoding writes exactly what one-token greedy decoding writes, whatever "
                    "lookup_draft is. Off (default): repacked weight layouts, which decode faster on x86 CPUs; "
                    "the wording may then differ where two tokens nearly tie (docs/writer-decoding.md).")
    lookup_draft: int = Field(
        default=8, ge=0, le=32,
        description="Tokens drafted from the prompt per step of constrained (JSON) decoding and verified in one "
                    "pass (prompt lookup): a report restates its evidence, so most drafts are kept. With "
                    "batch_invariant on, at most 6 per pass, the most for which a pass's results are exact; "
                    "0 decodes one token per pass.")
    lookup_ngram: int = Field(
        default=3, ge=2, le=8,
        description="Longest run of recent tokens looked up in the prompt to draft from (shorter runs are tried "
                    "next, down to 2).")
