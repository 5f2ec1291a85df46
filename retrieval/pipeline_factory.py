"""Builds a `RetrievalPipeline` from `SearchSettings`: the one place settings pick stages."""

from __future__ import annotations

from typing import Callable

from generate.generator import Generator
from ingest.embedder import Embedder
from ingest.errors import ConfigError
from ingest.store.local_index import LocalIndex
from retrieval.bm25_source import Bm25Source
from retrieval.cross_encoder_reranker import CrossEncoderReranker
from retrieval.dense_source import DenseSource
from retrieval.late_interaction_reranker import LateInteractionReranker
from retrieval.llm_query_analyzer import LlmQueryAnalyzer
from retrieval.llm_reranker import LlmReranker
from retrieval.pipeline import RetrievalPipeline
from retrieval.query_cache import QueryCache
from retrieval.rrf_fusion import RrfFusion
from retrieval.score_fusion import ScoreFusion
from retrieval.settings import SearchSettings
from retrieval.stages import CandidateSource, Fusion, Reranker
from retrieval.token_encoder import late_token_encoder


class PipelineFactory:
    """Holds the index, the embedder and a model provider ('fast' or 'writer' -> Generator), and
    shares heavy parts (caches, cross-encoder) between the pipelines it builds."""

    def __init__(self, index: LocalIndex, embedder: Embedder, models: Callable[[str], Generator] | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.models = models
        self._caches: dict[tuple[str, int], QueryCache] = {}
        self._cross_encoders: dict[str, CrossEncoderReranker] = {}

    def texts(self, ids: list[int]) -> dict[int, str]:
        """Chunk text with its context line (title, sections): what a reranker should read."""
        rows = self.index.chunks(ids)
        return {cid: f"{r.context}\n{r.text}" if r.context else r.text for cid, r in rows.items()}

    def _model(self, role: str) -> Generator:
        if self.models is None:
            raise ConfigError("this search configuration needs a language model, but none was provided")
        return self.models(role)

    def build(self, s: SearchSettings, candidates: int | None = None) -> RetrievalPipeline:
        sources: list[CandidateSource] = []
        for name in s.sources:
            if name == "dense":
                sources.append(DenseSource(self.index, self.embedder, s.query_threads))
            else:
                sources.append(Bm25Source(self.index))
        fusion: Fusion
        if s.fusion == "rrf":
            fusion = RrfFusion(s.rrf_k, s.fusion_weights, s.analysis.generated_weight)
        else:
            fusion = ScoreFusion(s.fusion_weights, s.fusion_normalization, max(candidates or s.candidates, 1),
                                 s.analysis.generated_weight)
        analyzer = None
        a = s.analysis
        if a.enabled:
            key = (str(a.cache_dir), a.cache_size)
            cache = self._caches.setdefault(key, QueryCache(a.cache_dir, a.cache_size))
            analyzer = LlmQueryAnalyzer(self._model(a.model), tuple(a.modes), a.max_queries, a.max_tokens,
                                        cache=cache)
        rerankers: list[Reranker] = []
        r = s.rerank
        for stage in r.stages:
            if stage == "llm":
                rerankers.append(LlmReranker(self._model(r.llm_model), r.llm_top_n, r.llm_budget_s, r.llm_blend,
                                             r.llm_passage_chars))
            elif stage == "late":
                encoder = late_token_encoder(self.embedder, r.late_tokens, s.query_threads)
                rerankers.append(LateInteractionReranker(encoder, r.late_top_n, r.late_blend))
            else:
                if r.cross_encoder_path is None:
                    raise ConfigError("the cross-encoder rerank stage needs search.rerank.cross_encoder_path "
                                      "(a local sentence-transformers CrossEncoder folder)")
                key_ce = f"{r.cross_encoder_path}|{r.cross_encoder_top_n}|{r.cross_encoder_blend}"
                if key_ce not in self._cross_encoders:
                    self._cross_encoders[key_ce] = CrossEncoderReranker(r.cross_encoder_path, r.cross_encoder_top_n,
                                                                        r.cross_encoder_blend)
                rerankers.append(self._cross_encoders[key_ce])
        return RetrievalPipeline(sources, fusion, self.texts, candidates or s.candidates, analyzer, rerankers)
