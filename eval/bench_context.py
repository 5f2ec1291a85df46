"""Context benchmark: each step of the cheap `llm` context path measured on the same chunks.

Three paths, each adding one step, and a fourth beside them:

- `naive`: one independent call per chunk with the whole document in the prompt (as much of it as
  fits the model's context window), KV cache dropped before every call;
- `window`: the bounded window instead (document opening, text just before the chunk, the chunk),
  still dropping the KV cache before every call;
- `optimized`: the bounded window with the document part's KV state reused across its chunks (what
  `context_mode=llm` runs);
- `document`: one call per document from its opening, its sentence shared by the document's chunks
  (`context_scope=document`): a different product, not a faster way to the same contexts.

All use the same token budget and stop rule. Documents are interleaved (every path on one document,
then the next) so that a change in machine load hits all alike. No path reads or writes the context cache.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from generate.engine import Engine
from ingest.core.settings import Settings
from ingest.context import StructureContextualizer
from ingest.discovery import discover
from ingest.core.errors import DocumentError
from ingest.llm_context import LlmContextualizer
from ingest.parser import UnstructuredParser
from ingest.core.progress import NullProgress, Progress
from ingest.core.types import ChunkedDocument


class _NoCache:
    """Every context is generated: the benchmark measures the model, not the cache."""

    def cached_contexts(self, keys: list[str]) -> dict[str, str]:
        return {}

    def cache_context(self, key: str, context: str, source: str) -> None:
        pass


def load_chunked(folder: Path, comps: Engine, docs: int, max_chunks: int) -> list[ChunkedDocument]:
    """The first `docs` documents (by path) of a folder, chunked, each cut to its first `max_chunks` chunks."""
    s = comps.settings.ingest
    found = sorted((f for f in discover([folder], s.include, s.exclude) if f.reason is None), key=lambda f: f.path)
    parser = UnstructuredParser()
    embedder = comps.embedder
    from ingest.chunker import StructureChunker

    chunker = StructureChunker(embedder, min(s.chunk_tokens, embedder.max_tokens))
    out: list[ChunkedDocument] = []
    for item in found:
        if len(out) >= docs:
            break
        try:
            chunked = chunker.chunk(parser.parse(str(item.path.resolve()), item.path.read_bytes(), item.fmt or "text"))
        except DocumentError:
            continue
        chunked.chunks = chunked.chunks[:max_chunks]
        if chunked.chunks:
            out.append(chunked)
    return out


def bench_context(folder: Path, settings: Settings, docs: int = 3, max_chunks: int = 8,
                  progress: Progress | None = None,
                  on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Figures for every path; `on_row` receives each document's timings as soon as all paths are done."""
    progress = progress or NullProgress()
    comps = Engine(settings)
    chunked = load_chunked(folder, comps, docs, max_chunks)
    model = comps.fast_model
    model.chat([{"role": "user", "content": "Say ok."}], max_tokens=2)  # load before timing
    embedder = comps.embedder
    structure = StructureContextualizer("structure", embedder, embedder.max_tokens)
    # The whole document, up to what fits the context window beside the chunk and the reply
    # (English prose runs about 4 characters a token; 3 leaves room for code and numbers).
    whole = 3 * (settings.models.context_window - 700)
    paths: dict[str, LlmContextualizer] = {}
    window = settings.ingest.context_doc_chars
    for name, reuse, doc_chars in (("naive", False, whole), ("window", False, window), ("optimized", True, window),
                                   ("document", True, window)):
        # naive: no "text before the chunk" part, the whole document is in the prompt already
        neighbour = 0 if name == "naive" else settings.ingest.context_neighbour_chars
        ingest = settings.ingest.model_copy(update={
            "context_timeout_s": 1e9, "context_doc_chars": doc_chars,
            "context_neighbour_chars": neighbour, "context_skip": "never",
            "context_scope": "document" if name == "document" else "chunk"})
        paths[name] = LlmContextualizer(model if reuse else _ColdPrompts(model), structure, _NoCache(), ingest)
    seconds = {name: 0.0 for name in paths}
    contexts: dict[str, list[str]] = {name: [] for name in paths}
    n_chunks = sum(len(d.chunks) for d in chunked)
    for name in paths:
        progress.stage(f"ctx-{name}", n_chunks)
    per_doc: list[dict[str, Any]] = []
    for doc in chunked:
        row: dict[str, Any] = {"source": doc.doc.source, "chunks": len(doc.chunks)}
        for name, ctx in paths.items():
            model.reset()  # each path starts the document cold: the optimized one pays for its prefix once
            t0 = time.perf_counter()
            outcome = ctx.contextualize(doc, _Renamed(progress, f"ctx-{name}"))
            took = time.perf_counter() - t0
            if outcome.failure:
                raise RuntimeError(f"{name} failed on {doc.doc.source}: {outcome.failure}")
            seconds[name] += took
            row[f"{name}_s"] = round(took, 2)
            contexts[name].extend(c.context for c in doc.chunks)
        per_doc.append(row)
        if on_row is not None:
            on_row(row)
    same = sum(a == b for a, b in zip(contexts["window"], contexts["optimized"]))
    result: dict[str, Any] = {"folder": str(folder), "documents": len(chunked), "chunks": n_chunks,
                              "model": model.name, "settings": {k: v for k, v in settings.ingest.model_dump().items()
                                                                if k.startswith("context_")},
                              "identical_contexts_window_vs_optimized": same, "per_document": per_doc,
                              "examples": contexts["optimized"][:6], "examples_naive": contexts["naive"][:6]}
    for name, ctx in paths.items():
        u = ctx.usage
        result[name] = {"seconds": round(seconds[name], 2),
                        "chunks_per_s": round(n_chunks / seconds[name], 3) if seconds[name] else None,
                        "prompt_tokens": u.prompt_tokens, "cached_prompt_tokens": u.cached_tokens,
                        "generated_tokens": u.completion_tokens, "prefill_s": round(u.prefill_s, 2),
                        "decode_s": round(u.decode_s, 2)}
    result["speedup"] = round(seconds["naive"] / seconds["optimized"], 2) if seconds["optimized"] else None
    result["speedup_window"] = round(seconds["naive"] / seconds["window"], 2) if seconds["window"] else None
    result["speedup_document"] = round(seconds["naive"] / seconds["document"], 2) if seconds["document"] else None
    result["examples_document"] = contexts["document"][:6]
    return result


class _ColdPrompts:
    """The model with its KV cache dropped before every call: the baselines pay for each whole prompt."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = model.name

    def chat(self, messages: list[dict[str, str]], **options: Any) -> Any:
        self.model.reset()
        return self.model.chat(messages, **options)

    def yes_probability(self, messages: list[dict[str, str]], yes: str = "yes", no: str = "no") -> Any:
        self.model.reset()
        return self.model.yes_probability(messages, yes, no)

    def count_tokens(self, text: str) -> int:
        return int(self.model.count_tokens(text))

    def warm_up(self) -> None:
        self.model.warm_up()


class _Renamed:
    """Progress for one path under its own bar (the contextualizer reports to the 'context' stage)."""

    def __init__(self, inner: Progress, name: str) -> None:
        self.inner = inner
        self.name = name

    def stage(self, name: str, total: int | None) -> None:
        self.inner.stage(self.name, total)

    def advance(self, name: str, n: int = 1) -> None:
        self.inner.advance(self.name, n)

    def log(self, message: str) -> None:
        self.inner.log(message)
