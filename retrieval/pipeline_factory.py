"""Builds retrieval pipelines and searchers from `SearchSettings`: the one place settings pick stages."""

from __future__ import annotations

from typing import Callable

from ingest.core.embedder import Embedder
from ingest.core.errors import ConfigError, ModelUnavailableError
from ingest.core.generator import Generator
from ingest.core.index import Index
from ingest.core.scorer import CorpusVectors, Scorer
from ingest.core.settings import SearchSettings
from retrieval.bm25_source import Bm25Source
from retrieval.cross_encoder_reranker import CrossEncoderReranker
from retrieval.dense_source import DenseSource
from retrieval.late_interaction_reranker import LateInteractionReranker
from retrieval.llm_reranker import LlmReranker
from retrieval.pipeline import RetrievalPipeline
from retrieval.query_cache import QueryCache
from retrieval.query_writer import QueryWriter, RewriteOptions
from retrieval.rrf_fusion import RrfFusion
from retrieval.score_fusion import ScoreFusion
from retrieval.searcher import Searcher
from retrieval.stages import CandidateSource, Fusion, Reranker
from retrieval.token_encoder import late_token_encoder
from retrieval.trained_reranker import TrainedReranker
from retrieval.trained_scorer import OnnxTrainedScorer
from retrieval.training.pair_builder import chunk_passage

#: "fast" or "writer" -> the shared model of that role.
ModelProvider = Callable[[str], Generator]


class PipelineFactory:
    """Holds the index, the embedder and a model provider, and shares the heavy parts it builds (query
    writers with their caches, cross-encoders) between every pipeline it builds."""

    def __init__(self, index: Index, embedder: Embedder, models: ModelProvider | None = None,
                 query_cache: QueryCache | None = None, trained: Scorer | None = None,
                 corpus_vectors: CorpusVectors | None = None) -> None:
        """`trained` replaces the scorer published beside the index (an evaluation's per-fold scorers), and
        `corpus_vectors` the vectors published with it (an evaluation's, or a training run's trial)."""
        self.index = index
        self.embedder = embedder
        self.models = models
        self.query_cache = query_cache or QueryCache()
        self._writers: dict[str, QueryWriter] = {}
        self._cross_encoders: dict[str, CrossEncoderReranker] = {}
        self._trained: Scorer | None = trained
        self._corpus_vectors = corpus_vectors

    def texts(self, ids: list[int]) -> dict[int, str]:
        """Chunk text with its context line (title, sections): what a reranker should read."""
        return {cid: chunk_passage(r) for cid, r in self.index.chunks(ids).items()}

    def _model(self, role: str) -> Generator:
        if self.models is None:
            raise ConfigError("this search configuration needs a language model, but none was provided")
        return self.models(role)

    def trained_scorer(self) -> Scorer:
        """The scorer `citewise train` published for this index, shared by every pipeline over it."""
        scorer = self.find_trained_scorer()
        if scorer is None:
            raise ModelUnavailableError(f"index {self.index.path} has no trained scorer for the 'trained' "
                                        f"rerank stage: run `citewise train --index {self.index.path}` first")
        return scorer

    def find_trained_scorer(self) -> Scorer | None:
        """The same shared scorer, or None when the index has none (for uses that work without one)."""
        if self._trained is None:
            self._trained = OnnxTrainedScorer.find(self.index.path)
        return self._trained

    def corpus_vectors(self) -> CorpusVectors | None:
        """The trained encoder's vectors of the corpus, when `citewise train` published them (else None)."""
        if self._corpus_vectors is not None:
            return self._corpus_vectors
        scorer = self.find_trained_scorer()
        return scorer.corpus_vectors() if scorer is not None else None

    def _required_corpus_vectors(self) -> CorpusVectors:
        """For search.dense_vectors = 'trained': the vectors, or a clear error when there are none."""
        vectors = self.corpus_vectors()
        if vectors is None:
            raise ModelUnavailableError(
                f"search.dense_vectors is 'trained' but index {self.index.path} has no trained encoder vectors: "
                f"run `citewise train --index {self.index.path}` with a bi-encoder scorer (train.reembed), or set "
                "search.dense_vectors to 'auto' or 'embedder'")
        return vectors

    def query_writer(self, role: str = "fast") -> QueryWriter:
        """The one query writer of a model role: query analysis and research planning share its cache."""
        if role not in self._writers:
            self._writers[role] = QueryWriter(self._model(role), self.query_cache)
        return self._writers[role]

    def searcher(self, s: SearchSettings) -> Searcher:
        """A searcher whose "hybrid" mode runs the pipeline `s` configures, and "dense"/"bm25" one source."""
        single = s.model_copy(update={"analysis": s.analysis.model_copy(update={"enabled": False}),
                                      "rerank": s.rerank.model_copy(update={"stages": []})})
        pipelines = {"hybrid": self.build(s),
                     "dense": self.build(single.model_copy(update={"sources": ["dense"]})),
                     "bm25": self.build(single.model_copy(update={"sources": ["bm25"]}))}
        return Searcher(self.index, self.embedder, pipelines)

    def build(self, s: SearchSettings, candidates: int | None = None) -> RetrievalPipeline:
        sources: list[CandidateSource] = []
        for name in s.sources:
            if name == "dense":
                trained = {"auto": self.corpus_vectors, "trained": self._required_corpus_vectors}.get(s.dense_vectors)
                if s.dense_vectors == "trained":
                    self._required_corpus_vectors()  # refused when the pipeline is built, not at its first query
                sources.append(DenseSource(self.index, self.embedder, s.query_threads, trained))
            else:
                sources.append(Bm25Source(self.index))
        fusion: Fusion
        if s.fusion == "rrf":
            fusion = RrfFusion(s.rrf_k, s.fusion_weights, s.analysis.generated_weight)
        else:
            fusion = ScoreFusion(s.fusion_weights, s.fusion_normalization, max(candidates or s.candidates, 1),
                                 s.analysis.generated_weight)
        a = s.analysis
        analyzer = None
        if a.enabled:
            analyzer = self.query_writer(a.model).analyzer(RewriteOptions(tuple(a.modes), a.max_queries,
                                                                          a.max_tokens))
        return RetrievalPipeline(sources, fusion, self.texts, candidates or s.candidates, analyzer,
                                 self._rerankers(s))

    def _rerankers(self, s: SearchSettings) -> list[Reranker]:
        rerankers: list[Reranker] = []
        r = s.rerank
        for stage in r.stages:
            if stage == "llm":
                rerankers.append(LlmReranker(self._model(r.llm_model), r.llm_top_n, r.llm_budget_s, r.llm_blend,
                                             r.llm_passage_chars))
            elif stage == "late":
                encoder = late_token_encoder(self.embedder, r.late_tokens, s.query_threads)
                rerankers.append(LateInteractionReranker(encoder, r.late_top_n, r.late_blend))
            elif stage == "trained":
                rerankers.append(TrainedReranker(self.trained_scorer(), r.trained_top_n, r.trained_blend))
            else:
                if r.cross_encoder_path is None:
                    raise ConfigError("the cross-encoder rerank stage needs search.rerank.cross_encoder_path "
                                      "(a local sentence-transformers CrossEncoder folder)")
                key = f"{r.cross_encoder_path}|{r.cross_encoder_top_n}|{r.cross_encoder_blend}"
                if key not in self._cross_encoders:
                    self._cross_encoders[key] = CrossEncoderReranker(r.cross_encoder_path, r.cross_encoder_top_n,
                                                                     r.cross_encoder_blend)
                rerankers.append(self._cross_encoders[key])
        return rerankers
