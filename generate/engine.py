"""The composition root: settings in, every component built once and shared (models load lazily, once).

The interfaces (CLI, HTTP API) and the evaluation suite build one `Engine` from the loaded settings and
ask it for what they need. Tests pass their own components (a loaded embedder, a fake model) through
the constructor instead of reaching into it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Callable

from generate.gatherer import Gatherer
from generate.guard import addresses_the_model
from generate.removal import Removal
from generate.researcher import Researcher
from generate.verifier import CitationVerifier
from generate.writer import ReportWriter
from ingest.backends.llama_cpp_generator import LlamaCppGenerator
from ingest.backends.sentence_transformer_embedder import SentenceTransformerEmbedder
from ingest.chunker import StructureChunker
from ingest.context import Contextualizer, StructureContextualizer
from ingest.core.embedder import Embedder
from ingest.core.errors import CitewiseError, ConfigError, IndexBusyError
from ingest.core.executor import Executor
from ingest.core.generator import Generator
from ingest.core.index import Index, WritableIndex
from ingest.core.model_resolver import ModelResolver
from ingest.core.offline import apply_offline_env
from ingest.core.parser import Parser
from ingest.core.progress import Progress
from ingest.core.settings import Settings
from ingest.llm_context import ContextCache, LlmContextualizer
from ingest.pipeline import Ingestor, IngestSummary
from ingest.preparer import DocumentPreparer, LocalExecutor, WorkerParts
from ingest.store.bm25_index import Bm25Analyzer
from ingest.store.local_index import LocalIndex
from retrieval.evidence import EvidenceSelector
from retrieval.pipeline_factory import PipelineFactory
from retrieval.query_cache import QueryCache
from retrieval.rrf_fusion import RrfFusion
from retrieval.searcher import Searcher
from retrieval.trained_scorer import OnnxTrainedScorer
from retrieval.token_encoder import late_token_encoder
from retrieval.training.item_store import ItemStore


log = logging.getLogger("citewise.engine")

#: Indexes whose searcher and researcher an engine keeps at once (a server has one).
MAX_INDEXES = 4


class Engine:
    """The application's object graph over one `Settings`. Cheap to create; heavy parts load on first use.

    `searcher(index)` and `researcher(index)` return the same objects for the same index, so their
    caches (query rewrites and plans, loaded rerankers) outlive a request.
    """

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, parser: Parser | None = None,
                 fast_model: Generator | None = None, writer_model: Generator | None = None,
                 guard: Callable[[str], bool] | None = addresses_the_model, executor: Executor | None = None) -> None:
        """Components given here are used instead of being built from the settings; `guard` drops evidence
        that reads as an instruction to the model before the writer sees it (None keeps everything, to show
        that verification alone keeps instructions uncited)."""
        apply_offline_env()  # before any library that reads these variables is imported
        self.settings = settings
        self.guard = guard
        self._embedder = embedder
        self._parser = parser
        self._fast = fast_model
        self._writer = writer_model
        self._executor = executor
        # Per opened index; the index is kept with them so its id cannot be reused while they exist. Bounded:
        # a process that opens many indexes one after another (an evaluation) does not keep them all.
        self._built: OrderedDict[int, tuple[Index, PipelineFactory, Searcher, Researcher | None]] = OrderedDict()

    # -- models -------------------------------------------------------------------------------------
    @cached_property
    def resolver(self) -> ModelResolver:
        return ModelResolver(self.settings.models.cache_dir)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            s = self.settings
            self._embedder = SentenceTransformerEmbedder(
                self.resolver.embedder_path(s.models.embedder), name=s.models.embedder,
                batch_size=s.ingest.embed_batch_size, backend=s.ingest.embed_backend, threads=s.models.threads,
                cache_dir=self.resolver.cache_dir)
        return self._embedder

    @property
    def fast_model(self) -> Generator:
        """The small model (chunk context, query writing); loaded on first call, then shared."""
        if self._fast is None:
            self._fast = self._generator(self.settings.models.fast)
        return self._fast

    @property
    def writer_model(self) -> Generator:
        """The model that writes reports; the same object as the fast model when both settings agree."""
        if self._writer is None:
            m = self.settings.models
            self._writer = self.fast_model if m.writer == m.fast else self._generator(m.writer)
        return self._writer

    def _generator(self, name: str) -> Generator:
        """A model by name, embedded (a built-in GGUF or a .gguf path) or on the configured model server."""
        m = self.settings.models
        if m.backend == "openai":
            if not m.base_url:
                raise ConfigError("models.backend is 'openai' but models.base_url is not set (the server's /v1 URL)")
            from ingest.backends.openai_generator import OpenAIGenerator

            key = m.api_key.get_secret_value() if m.api_key else None
            return OpenAIGenerator(m.base_url, name, key, m.request_timeout_s, m.request_retries, m.schema_format)
        # the file is found (or assembled from its parts) when the model first loads
        return LlamaCppGenerator(lambda: self.resolver.gguf_path(name), name=name, n_ctx=m.context_window,
                                 threads=m.threads, lookup_draft=m.lookup_draft, lookup_ngram=m.lookup_ngram,
                                 batch_invariant=m.batch_invariant)

    def model(self, role: str) -> Generator:
        """'fast' or 'writer': how retrieval stages ask for a language model without knowing the settings."""
        return self.writer_model if role == "writer" else self.fast_model

    # -- the index and ingest -----------------------------------------------------------------------
    @property
    def parser(self) -> Parser:
        if self._parser is None:
            s = self.settings.ingest
            if s.parse_workers == 0:
                from ingest.parser import UnstructuredParser

                self._parser = UnstructuredParser()
            else:
                from ingest.pooled_parser import PooledParser

                self._parser = PooledParser(s.parse_workers, s.parse_timeout_s)
        return self._parser

    @cached_property
    def analyzer(self) -> Bm25Analyzer:
        return Bm25Analyzer(self.settings.index.bm25_stemmer, self.settings.index.bm25_stopwords)

    def embedder_info(self) -> dict[str, Any]:
        """What an index records about its embedder (read from the model folder: no model is loaded)."""
        e = self.embedder
        return {"name": self.settings.models.embedder, "dim": e.dim,
                "max_seq_length": getattr(e, "max_seq_length", e.max_tokens + 2), "precision": e.precision}

    def open_index(self, path: Path | None = None, writable: bool = False) -> LocalIndex:
        s = self.settings
        llm = s.ingest.context_mode == "llm"
        recorded = {"chunking": {"max_tokens": s.ingest.chunk_tokens}, "context_mode": s.ingest.context_mode,
                    "context_model": s.models.fast if llm else None,
                    "context_scope": s.ingest.context_scope if llm else None}
        return LocalIndex(path or s.index.path, self.embedder_info(), self.analyzer, recorded, writable=writable,
                          index_settings=s.index, threads=s.models.threads)

    def ingestor(self, index: WritableIndex, progress: Progress | None = None) -> Ingestor:
        preparer = self.preparer(self.contextualizer(index))
        remote = self._executor is not None or self.settings.ingest.executor == "ray"
        executor = self.executor if remote else LocalExecutor(self.parser, preparer)
        return Ingestor(index, preparer, executor, self.embedder, self.settings.ingest, progress)

    def ingest(self, index: WritableIndex, paths: list[Path], progress: Progress | None = None,
               reader: Index | None = None) -> IngestSummary:
        """Ingest `paths`, then store the trained encoder's vectors caught up with what was added (when the
        index has them), so readers, each CLI search among them, do not each encode the new chunks first.

        `reader`: the index a server searches; its scorer's vectors catch up in memory too, not only on disk."""
        summary = self.ingestor(index, progress).ingest_paths(paths)
        if summary.chunks_added or summary.ingested:
            summary.trained_vectors = self.store_trained_vectors(index, progress, reader)
            summary.training_items = self.forget_training_items(index)  # a re-ingested file's old chunks
        return summary

    def remove_document(self, index: WritableIndex, doc_id: str, reader: Index | None = None) -> Removal:
        """Remove a document from the store, FAISS and BM25, and what training kept of it: its chunks'
        vectors from the trained encoder's stored ones and the training questions written about it (with the
        sentences they copied), so training keeps no copy of a removed document."""
        chunks = index.remove_document(doc_id)
        index.flush()
        return Removal(chunks, self.store_trained_vectors(index, reader=reader), self.forget_training_items(index))

    def forget_training_items(self, index: Index) -> dict[str, Any]:
        """Drop the training questions about chunks the index no longer holds; reported, not raised, like the
        vectors: the write itself succeeded, and the next `citewise train` drops them before anything else."""
        try:
            gone = ItemStore.for_index(index.path).forget(index.chunk_ids)
        except IndexBusyError:
            return {"skipped": "a `citewise train` is writing the training set; it drops them when it next starts"}
        except (CitewiseError, OSError) as exc:
            log.warning("training questions about removed chunks of %s were not dropped: %s", index.path, exc)
            return {"error": str(exc)}
        return {"forgotten": gone} if gone else {}

    def store_trained_vectors(self, index: Index, progress: Progress | None = None,
                              reader: Index | None = None) -> dict[str, Any]:
        """The index's trained vectors brought up to date on disk; a failure is reported, not raised: the
        ingest itself succeeded, and readers catch up (or say what is damaged) on their own."""
        try:
            found = (self.pipeline_factory(reader).find_trained_scorer() if reader is not None
                     else OnnxTrainedScorer.find(index.path))
            if not isinstance(found, OnnxTrainedScorer):
                return {}
            return found.store_corpus_vectors(index, progress)
        except (CitewiseError, OSError) as exc:  # a full disk, say: the next reader encodes what is missing
            log.warning("the trained encoder's vectors of %s were not stored again: %s", index.path, exc)
            return {"error": str(exc)}

    def preparer(self, contextualizer: Contextualizer) -> DocumentPreparer:
        s = self.settings
        chunker = StructureChunker(self.embedder, min(s.ingest.chunk_tokens, self.embedder.max_tokens))
        return DocumentPreparer(chunker, contextualizer)

    @property
    def executor(self) -> Executor:
        """The cluster executor (setting ingest.executor = ray), built once: its workers outlive one run."""
        if self._executor is None:
            from ingest.executors.ray_executor import RayExecutor

            self._executor = RayExecutor(partial(build_worker_parts, self.settings), self.settings.ingest)
        return self._executor

    def worker_parts(self, cache: ContextCache | None) -> WorkerParts:
        """What a cluster worker builds on its node: this engine's components, parsing in-process."""
        from ingest.parser import UnstructuredParser

        if self.settings.ingest.context_mode == "llm" and cache is None:
            raise ConfigError("llm context mode needs the index's context cache")
        return WorkerParts(UnstructuredParser(), self.preparer(self.contextualizer(cache)), self.embedder)

    def contextualizer(self, cache: ContextCache | None) -> Contextualizer:
        """The setting's context mode; `llm` caches its sentences in `cache` (the index)."""
        s = self.settings.ingest
        if s.context_mode != "llm":
            return StructureContextualizer(s.context_mode, self.embedder, self.embedder.max_tokens)
        assert cache is not None
        structure = StructureContextualizer("structure", self.embedder, self.embedder.max_tokens)
        return LlmContextualizer(self.fast_model, structure, cache, s)

    # -- search and reports, built once per index ---------------------------------------------------
    @cached_property
    def query_cache(self) -> QueryCache:
        a = self.settings.search.analysis
        return QueryCache(a.cache_dir, a.cache_size)

    def pipeline_factory(self, index: Index) -> PipelineFactory:
        return self._parts(index)[1]

    def searcher(self, index: Index) -> Searcher:
        """`search(..., mode="hybrid")` runs the configured pipeline (settings `search.*`)."""
        return self._parts(index)[2]

    def researcher(self, index: Index) -> Researcher:
        """The ask path over one opened index; its searches rerank as `research.rerank` says."""
        built = self._parts(index)
        if built[3] is None:
            built = (*built[:3], self._build_researcher(index, built[1]))
            self._built[id(index)] = built
        assert built[3] is not None
        return built[3]

    def researcher_over(self, index: Index, factory: PipelineFactory) -> Researcher:
        """A researcher built on `factory`'s parts instead of the shared ones (an evaluation's per-fold scorer);
        not cached: the caller keeps it."""
        return self._build_researcher(index, factory)

    def warm_up_parts(self, index: Index) -> dict[str, Callable[[], None]]:
        """Every model the search and report paths over `index` load, by role, derived from the built objects."""
        return {**self.researcher(index).parts(), "search": self.searcher(index).warm_up}

    def _parts(self, index: Index) -> tuple[Index, PipelineFactory, Searcher, Researcher | None]:
        if id(index) not in self._built:
            factory = PipelineFactory(index, self.embedder, self.model, self.query_cache)
            self._built[id(index)] = (index, factory, factory.searcher(self.settings.search), None)
            while len(self._built) > MAX_INDEXES:
                self._built.popitem(last=False)
        self._built.move_to_end(id(index))
        return self._built[id(index)]

    def _build_researcher(self, index: Index, factory: PipelineFactory) -> Researcher:
        s, r = self.settings.search, self.settings.research
        if r.rerank is not None:
            s = s.model_copy(update={"rerank": s.rerank.model_copy(update={"stages": list(r.rerank)})})
        search = factory.searcher(s) if r.rerank is not None else self.searcher(index)
        # An index without a published scorer takes the cosine path unchanged; one with a scorer has its
        # probabilities drive evidence, stopping and declining, or only rank the evidence
        # (research.use_trained_scorer).
        found = factory.find_trained_scorer() if r.use_trained_scorer != "never" else None
        scorer = found if r.use_trained_scorer == "auto" else None
        ranker = found if r.use_trained_scorer == "evidence" else None
        # A learned evidence ranking comes with the scorer; without one the hand-set rule applies unchanged.
        trained = found or (factory.find_trained_scorer() if "auto" in (r.evidence_ranking, r.corroboration)
                            else None)
        learned = trained.sentence_ranker if trained is not None and r.evidence_ranking == "auto" else None
        corroboration = trained.corroboration if trained is not None and r.corroboration == "auto" else None
        tokens = (late_token_encoder(self.embedder, s.rerank.late_tokens, s.query_threads)
                  if learned or corroboration else None)
        selector = EvidenceSelector(self.embedder, r.evidence_sentences, r.evidence_tokens,
                                    rank_weight=r.evidence_rank_weight, max_documents=r.evidence_documents,
                                    document_margin=r.evidence_document_margin, scorer=scorer, ranker=ranker,
                                    scored_sentences=r.scored_sentences, document_probability=r.answer_probability,
                                    tokens=tokens, learned=learned, corroboration=corroboration,
                                    neighbours=index.chunks, passage_chunks=r.corroboration_chunks)
        planner = factory.query_writer("fast") if r.plan != "never" else None
        gatherer = Gatherer(search, selector, planner, RrfFusion(s.rrf_k), guard=self.guard)
        writer = ReportWriter(self.writer_model, r.writer_max_tokens, r.max_statements)
        verifier = CitationVerifier(index.document_text, self.embedder, r.support_similarity, r.relevance_floor,
                                    lambda name: index.documents_with_word(name, r.common_name_documents)
                                    >= r.common_name_documents, r.citation_probability, r.relevance_scope,
                                    r.citation_choice, r.enough_similarity, r.answer_probability,
                                    corroboration_probability=r.corroboration_probability if corroboration else None)
        return Researcher(gatherer, writer, verifier, r)

    def close(self) -> None:
        """Stop parser processes and cluster workers; models and indexes are closed by their owners."""
        if self._parser is not None:
            self._parser.close()
        if self._executor is not None:
            self._executor.close()


def build_worker_parts(settings: Settings, cache: ContextCache | None) -> WorkerParts:
    """Runs in each cluster worker: an engine over the driver's settings builds the same components there.

    A worker takes one CPU, so its models use one thread unless `models.threads` says otherwise.
    """
    if settings.models.threads == 0:
        settings = settings.model_copy(deep=True)
        settings.models.threads = 1
    return Engine(settings).worker_parts(cache)
