"""How files become chunks and vectors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ingest.core.settings.base import Section


class IngestSettings(Section):
    """How files become chunks and vectors."""

    include: list[str] = Field(
        default_factory=list,
        description="Glob patterns (relative to each given folder) a file must match; empty means all.",
    )
    exclude: list[str] = Field(
        default_factory=lambda: [".git/**", "**/.git/**", "**/__pycache__/**", "**/.venv/**", "**/node_modules/**"],
        description="Glob patterns of files to skip.",
    )
    max_file_mb: float = Field(default=64.0, gt=0, description="Larger files are refused, not read.")
    parse_workers: int = Field(
        default=2, ge=0, description="Parser processes (parsing overlaps embedding); 0 parses in-process."
    )
    parse_timeout_s: float = Field(default=300.0, gt=0, description="A file that takes longer to parse fails.")
    chunk_tokens: int = Field(
        default=200,
        ge=32,
        description="Most word pieces in one chunk; the rest of the embedder's window is kept for context.",
    )
    embed_batch_size: int = Field(
        default=8, ge=1, description="Texts per forward pass; small length-sorted batches stay in CPU cache."
    )
    embed_backend: Literal["auto", "onnx-int8", "torch", "plain"] = Field(
        default="auto",
        description="'onnx-int8': a fused int8 ONNX build of the embedder, made once into the model cache "
                    "(BERT-family models); 'torch': the fp32 model in length-sorted batches; 'plain': stock "
                    "sentence-transformers encode; 'auto': onnx-int8 where supported, else torch.",
    )
    context_mode: Literal["none", "structure", "llm"] = Field(
        default="structure",
        description="Text embedded and indexed with each chunk: none; the title and section trail; or llm, "
                    "a sentence from the fast model plus that trail. Changing it re-contextualizes the index.",
    )
    context_doc_chars: int = Field(
        default=1200, ge=0,
        description="llm mode: characters of the document's opening shown for every chunk; the prompt "
                    "prefix they form is evaluated once per document and its KV state reused.",
    )
    context_neighbour_chars: int = Field(
        default=240, ge=0, description="llm mode: characters of text just before the chunk shown with it."
    )
    context_chunk_chars: int = Field(
        default=700, ge=100, description="llm mode: characters of the chunk itself shown to the model."
    )
    context_max_new_tokens: int = Field(
        default=40, ge=8, le=256,
        description="llm mode: most tokens generated per chunk; generation also stops at the first sentence end.",
    )
    context_timeout_s: float = Field(
        default=900.0, gt=0,
        description="llm mode: a document whose contexts take longer falls back to structure context.",
    )
    context_skip: Literal["never", "named"] = Field(
        default="never",
        description="llm mode: 'named' keeps the structure trail alone, with no model call, for a chunk that is "
                    "its whole document or whose own text names the document's title.",
    )
    context_scope: Literal["chunk", "document"] = Field(
        default="chunk",
        description="llm mode: 'chunk' writes a sentence for every chunk, so the model reads the whole corpus; "
                    "'document' writes one sentence per document from its opening and gives it to all its chunks "
                    "beside their own section trail: one call per document (context_skip is then unused).",
    )
    commit_every: int = Field(
        default=16, ge=1, description="Documents per store transaction; a crash loses at most this batch."
    )
    commit_every_s: float = Field(
        default=60.0, ge=0,
        description="Seconds of work after which a short batch is stored anyway: in llm mode 16 documents can be "
                    "an hour of model calls; a crash then loses about this much, plus the document in progress.",
    )
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="Where files are parsed, chunked, contextualized and embedded: 'local' (this process and its "
                    "parser workers) or 'ray' (actors on a Ray cluster; needs `pip install citewise[ray]`). Either "
                    "way this process commits whole documents, so an interrupted run is finished by running it again.",
    )
    ray_address: str = Field(
        default="",
        description="ray executor: the cluster to join ('HOST:PORT' of the head, or 'auto' for the one `ray start` "
                    "runs on this machine); empty starts a private single-node Ray for the run.",
    )
    ray_workers: int = Field(
        default=0, ge=0,
        description="ray executor: worker actors, each holding a parser, the embedder and (llm mode) the fast model, "
                    "and taking one CPU; 0 starts one per CPU the cluster offers.",
    )
    ray_shared_paths: list[str] = Field(
        default_factory=list,
        description="ray executor: folders every node sees at the same path; their files are read by the workers, "
                    "all others are sent from this machine as bytes.",
    )
