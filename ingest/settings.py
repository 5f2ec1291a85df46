"""Settings for the data-preparation side: models, parsing, chunking, embedding and the index."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelSettings(BaseModel):
    """Which models to run. A value is a built-in name (see `citewise models`) or a local path."""

    model_config = ConfigDict(validate_assignment=True)  # an override (a CLI option) is checked like a file

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


class IngestSettings(BaseModel):
    """How files become chunks and vectors."""

    model_config = ConfigDict(validate_assignment=True)  # an override (a CLI option) is checked like a file

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
    context_reuse_prefix: bool = Field(
        default=True,
        description="llm mode: reuse the document prefix's KV state across its chunks; false makes every "
                    "chunk a fresh call (the naive baseline, for benchmarks).",
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


class IndexSettings(BaseModel):
    """Where the index lives and how its BM25 side analyses text."""

    model_config = ConfigDict(validate_assignment=True)  # an override (a CLI option) is checked like a file

    path: Path = Field(default=Path("citewise-index"), description="Index directory.")
    bm25_stemmer: str | None = Field(
        default="english", description="Snowball stemmer language for BM25, or null for none."
    )
    bm25_stopwords: str | None = Field(default="en", description="Stopword list for BM25, or null.")
    bm25_neighbours: int = Field(
        default=0, ge=0, le=8,
        description="Chunks before and after a chunk, in its document, whose text its BM25 entry also holds, for "
                    "short documents whose terms spread over a few chunks (abstracts). Search still returns and "
                    "quotes the chunk alone. 1 lifted BM25 on SciFact train from nDCG@10 0.684 to 0.702 (fused "
                    "0.729 to 0.735), but on squad-wiki's long articles it ranks an answer's neighbours beside it: "
                    "fused answer-hit@1 fell from 0.921 to 0.829. A writer (`citewise ingest`) applies a change by "
                    "rebuilding BM25 only; readers search what the index holds.",
    )
    dense_index: Literal["auto", "flat", "hnsw"] = Field(
        default="auto",
        description="FAISS index type: 'flat' is exact, 'hnsw' approximate; 'auto' is flat below exact_below "
                    "vectors and HNSW from there on (`citewise eval bench-search` measures the trade).",
    )
    exact_below: int = Field(
        default=20_000, ge=0,
        description="With dense_index=auto: collections smaller than this use exact search (one flat scan of 20k "
                    "384-d vectors measured 2.3 ms p50 on 2 cores at load 6.5, 12-23 ms at load 13; its "
                    "cost grows linearly, HNSW's barely; see `eval bench-search`). "
                    "An HNSW index shrinking below half of it returns to exact search.",
    )
    hnsw_m: int = Field(default=32, ge=4, le=128, description="HNSW links per vector (memory and recall).")
    hnsw_ef_construction: int = Field(
        default=64, ge=8, description="HNSW build beam width: higher builds slower with a better graph."
    )
    hnsw_ef_search: int = Field(
        default=512, ge=1,
        description="HNSW search beam width (at least k is used): recall against latency; applies at query time. "
                    "512 gave recall@10 0.952 on 1M synthetic vectors (`eval bench-search --ef-search`).",
    )
    rebuild_removed_fraction: float = Field(
        default=0.2, gt=0, le=1,
        description="HNSW cannot delete: removed chunks are filtered out of results, and a writer rebuilds the "
                    "graph from the store once they exceed this fraction of its vectors.",
    )
