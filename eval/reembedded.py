"""Dense search over the corpus re-embedded with a run's trained bi-encoder: does fine-tuning the first stage
pay, beyond reranking its head with the same model?

The trained scorer is the shipped MiniLM fine-tuned on the index's questions. Used as the `trained` rerank
stage it reorders only the candidates the original embedder and BM25 found; used as the embedder it decides
which candidates there are. Measuring that needs no new index: every chunk is encoded as the rerank stage
reads it (`chunk_passage`), the vectors are kept in the run folder, and an index wrapper answers dense
searches from them while everything else (BM25, chunk text, fusion) is the real index's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ingest.core.embedder import Embedder
from ingest.core.errors import ConfigError
from ingest.core.index import Index
from ingest.core.progress import Progress
from ingest.store.dense_spec import DenseSpec
from ingest.store.faiss_index import FaissIndex
from retrieval.pipeline_factory import PipelineFactory
from retrieval.trained_scorer import OnnxTrainedScorer
from retrieval.training.pair_builder import chunk_passage

#: The eval-only first part of a system name: the rest is any retrieval system, built over the re-embedded corpus.
PREFIX = "reembedded+"
BATCH = 256


def check_reembedded(systems: list[str], train_folds: int | None, train: str | None) -> None:
    """Refuse, before any index is built, a re-embedded system without a scorer this run trains (the index's own
    scorer may have been trained on the very queries asked)."""
    for name in systems:
        if name.startswith(PREFIX) and not train_folds and not train:
            raise ConfigError(f"{name}: a re-embedded system searches with a scorer this run trains: add "
                              "--train-folds K or --train synthetic")


def described(name: str, describe: Callable[[str], str]) -> str:
    """A system's description (`describe` names the retrieval parts), saying when the corpus was re-embedded."""
    if name.startswith(PREFIX):
        return ("corpus and queries embedded with the run's trained encoder (bi-encoder scorer); "
                + describe(name.removeprefix(PREFIX)))
    return describe(name)


class ReembeddedIndex:
    """The real index, except that dense searches run over the trained encoder's vectors of its chunks (an exact
    FAISS index built once, as the index's own flat one)."""

    def __init__(self, index: Index, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index = index
        self._dense = FaissIndex.build(vectors.shape[1], DenseSpec(), ids, vectors)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    def search_dense(self, query_vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        scores, ids = self._dense.search(query_vectors, k)
        return [[(int(i), float(s)) for s, i in zip(srow, irow) if i >= 0] for srow, irow in zip(scores, ids)]


class _EncoderEmbedder:
    """Queries embedded by the trained encoder; anything else (token vectors for late interaction, token
    counts) is the original embedder's."""

    def __init__(self, base: Embedder, scorer: OnnxTrainedScorer) -> None:
        self._base = base
        self._scorer = scorer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._scorer.vectors(texts)


def reembedded_factory(factory: PipelineFactory, scorer: OnnxTrainedScorer, folder: Path,
                       progress: Progress) -> PipelineFactory:
    """Pipelines over the corpus as `scorer` embeds it (vectors cached in `folder`), with `scorer` also as the
    trained rerank stage."""
    cache = Path(folder) / "reembedded.npz"
    index = factory.index
    if cache.is_file():
        saved = np.load(cache)
        ids, vectors = saved["ids"], saved["vectors"]
    else:
        ids = np.array(sorted(index.chunk_ids()), dtype=np.int64)
        progress.log(f"re-embedding {len(ids)} chunks with the trained encoder of {folder.name}")
        parts = []
        for lo in range(0, len(ids), BATCH):
            rows = index.chunks([int(i) for i in ids[lo:lo + BATCH]])
            parts.append(scorer.vectors([chunk_passage(rows[int(i)]) for i in ids[lo:lo + BATCH]]))
        vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
        partial = cache.with_name("reembedded.partial.npz")
        np.savez(partial, ids=ids, vectors=vectors)
        partial.replace(cache)
    reembedded: Any = ReembeddedIndex(index, ids, vectors)  # an Index by delegation
    return PipelineFactory(reembedded, _EncoderEmbedder(factory.embedder, scorer), factory.models,
                           factory.query_cache, trained=scorer)
