"""Builds configured components from Settings, each once, and shares them (models load lazily)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from api.settings import Settings
from generate.llama_cpp_generator import LlamaCppGenerator
from generate.planner import ResearchPlanner
from generate.research import Researcher
from generate.settings import ResearchSettings
from generate.verifier import CitationVerifier
from generate.writer import ReportWriter
from ingest.chunker import StructureChunker
from ingest.context import Contextualizer, StructureContextualizer
from ingest.embedder import SentenceTransformerEmbedder
from ingest.llm_context import LlmContextualizer
from ingest.models import ModelResolver
from ingest.parser import Parser, UnstructuredParser
from ingest.pooled_parser import PooledParser
from ingest.pipeline import Ingestor
from ingest.progress import Progress
from ingest.store.bm25_index import Bm25Analyzer
from ingest.store.local_index import LocalIndex
from retrieval.evidence import EvidenceSelector
from retrieval.hybrid import HybridSearcher
from retrieval.pipeline_factory import PipelineFactory


class Components:
    """The application's object graph. Cheap to create; heavy parts load on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def resolver(self) -> ModelResolver:
        return ModelResolver(self.settings.models.cache_dir)

    @cached_property
    def embedder(self) -> SentenceTransformerEmbedder:
        s = self.settings
        return SentenceTransformerEmbedder(
            self.resolver.embedder_path(s.models.embedder), name=s.models.embedder,
            batch_size=s.ingest.embed_batch_size, backend=s.ingest.embed_backend, threads=s.models.threads,
            cache_dir=self.resolver.cache_dir,
        )

    @cached_property
    def fast_model(self) -> LlamaCppGenerator:
        """The small GGUF (query analysis, reranking, chunk context); loaded on first call, then shared."""
        m = self.settings.models
        return LlamaCppGenerator(self.resolver.gguf_path(m.fast), name=m.fast, n_ctx=m.context_window,
                                 threads=m.threads)

    @cached_property
    def writer_model(self) -> LlamaCppGenerator:
        """The GGUF that writes reports; the same object as the fast model when both settings agree."""
        m = self.settings.models
        if m.writer == m.fast:
            return self.fast_model
        return LlamaCppGenerator(self.resolver.gguf_path(m.writer), name=m.writer, n_ctx=m.context_window,
                                 threads=m.threads)

    @cached_property
    def parser(self) -> Parser:
        s = self.settings.ingest
        if s.parse_workers == 0:
            return UnstructuredParser()
        return PooledParser(s.parse_workers, s.parse_timeout_s)

    @cached_property
    def analyzer(self) -> Bm25Analyzer:
        return Bm25Analyzer(self.settings.index.bm25_stemmer, self.settings.index.bm25_stopwords)

    def embedder_info(self) -> dict[str, Any]:
        return {"name": self.settings.models.embedder, "dim": self.embedder.dim,
                "max_seq_length": self.embedder.max_seq_length, "precision": self.embedder.precision}

    def open_index(self, path: Path | None = None, writable: bool = False) -> LocalIndex:
        s = self.settings
        llm = s.ingest.context_mode == "llm"
        recorded = {"chunking": {"max_tokens": s.ingest.chunk_tokens}, "context_mode": s.ingest.context_mode,
                    "context_model": s.models.fast if llm else None,
                    "context_scope": s.ingest.context_scope if llm else None}
        return LocalIndex(path or s.index.path, self.embedder_info(), self.analyzer, recorded, writable=writable,
                          index_settings=s.index, threads=s.models.threads)

    def ingestor(self, index: LocalIndex, progress: Progress | None = None) -> Ingestor:
        s = self.settings
        embedder = self.embedder
        chunker = StructureChunker(embedder, min(s.ingest.chunk_tokens, embedder.max_tokens))
        return Ingestor(index, self.parser, chunker, embedder, self.contextualizer(index), s.ingest, progress)

    def contextualizer(self, index: LocalIndex) -> Contextualizer:
        """The setting's context mode; `llm` caches its sentences in the index's store."""
        s = self.settings.ingest
        embedder = self.embedder
        if s.context_mode != "llm":
            return StructureContextualizer(s.context_mode, embedder, embedder.max_tokens)
        structure = StructureContextualizer("structure", embedder, embedder.max_tokens)
        return LlmContextualizer(self.fast_model, structure, index.store, s)

    def model(self, role: str) -> LlamaCppGenerator:
        """'fast' or 'writer': how retrieval stages ask for a language model without importing settings."""
        return self.writer_model if role == "writer" else self.fast_model

    def pipeline_factory(self, index: LocalIndex) -> PipelineFactory:
        return PipelineFactory(index, self.embedder, self.model)

    def searcher(self, index: LocalIndex, rerank: list[str] | None = None) -> HybridSearcher:
        """`search(..., mode="hybrid")` runs the configured pipeline (settings `search.*`); `rerank`
        replaces `search.rerank.stages` (the ask path reranks where a search call would not)."""
        s = self.settings.search
        if rerank is not None:
            s = s.model_copy(deep=True)
            s.rerank.stages = list(rerank)  # type: ignore[arg-type]
        pipeline = self.pipeline_factory(index).build(s)
        return HybridSearcher(index, self.embedder, s.candidates, s.rrf_k, pipeline)

    def researcher(self, index: LocalIndex, research: ResearchSettings | None = None) -> Researcher:
        """The ask path over one opened index; models are the shared ones above. `research` overrides settings."""
        r = research or self.settings.research
        selector = EvidenceSelector(self.embedder, r.evidence_sentences, r.evidence_tokens,
                                    rank_weight=r.evidence_rank_weight, max_documents=r.evidence_documents,
                                    document_margin=r.evidence_document_margin)
        writer = ReportWriter(self.writer_model, r.writer_max_tokens, r.max_statements)
        verifier = CitationVerifier(index.store.document_text, self.embedder, r.support_similarity,
                                    r.relevance_floor)
        planner = None if r.plan == "never" else self.planner
        return Researcher(self.searcher(index, r.rerank), selector, writer, verifier, planner, r)

    @cached_property
    def planner(self) -> ResearchPlanner:
        """Shared, so its cache of planned queries outlives one request."""
        return ResearchPlanner(self.fast_model, self.settings.research.max_queries)

