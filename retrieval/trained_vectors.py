"""The corpus as the index's trained encoder embeds it: vectors `citewise train` publishes beside a bi-encoder
scorer (`vectors.npz` in its generation folder), searched by the dense first stage instead of the embedder's.

The scorer is the shipped embedder fine-tuned on the corpus's questions, so searching with it decides which
candidates there are, where as a rerank stage it only reorders the ones the embedder found. Whoever reads the
vectors keeps them in step with the index: chunks removed since they were written are dropped, chunks added
since are encoded on first use (logged: one encoder pass each), so a search never misses a chunk nor returns a
removed one. `citewise train` writes them; an ingest that adds chunks stores them caught up again (under the
training lock), so that readers, every CLI search among them, do not each encode what it added.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from ingest.core.errors import ModelUnavailableError
from ingest.core.index import Index
from ingest.core.progress import NullProgress, Progress
from ingest.store.dense_spec import DenseSpec
from ingest.store.faiss_index import FaissIndex
from retrieval.training.pair_builder import chunk_passage

VECTORS_FILE = "vectors.npz"
#: Chunks read and encoded together: bounds memory on a large corpus, and progress moves in these steps.
BATCH = 256

#: texts -> one unit vector per text (the trained encoder).
Encode = Callable[[list[str]], np.ndarray]
log = logging.getLogger("citewise.retrieval")


class TrainedVectors:
    """One trained encoder's vectors of an index's chunks, searched exactly (a flat FAISS index in memory)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, encode: Encode, generation: int | None,
                 source: Path | None = None) -> None:
        """`generation` is the index generation the vectors were read at (None: unknown, check on first use);
        `source` the folder they were saved in, which `--explain` names."""
        self.encode = encode
        self.source = source
        self._lock = threading.Lock()
        self._generation = generation
        self._dense = FaissIndex(int(vectors.shape[1]), DenseSpec()) if vectors.ndim == 2 and vectors.shape[1] else None
        if self._dense is not None:
            self._dense.add(np.asarray(ids, dtype=np.int64), vectors)

    def __len__(self) -> int:
        return len(self._dense) if self._dense is not None else 0

    @classmethod
    def encode_corpus(cls, index: Index, encode: Encode, progress: Progress | None = None,
                      save_to: Path | None = None) -> TrainedVectors:
        """Every chunk of `index` encoded as the rerank stages read it (context line, then text), saved in the
        folder `save_to` when given (under a temporary name first, so a reader never loads half a file)."""
        generation = index.generation()  # read first: a write after it makes the next search catch up
        ids = np.array(sorted(index.chunk_ids()), dtype=np.int64)
        ids, vectors = _encode_chunks(index, ids, encode, progress or NullProgress())
        if save_to is not None:
            _write(Path(save_to), ids, vectors, generation)
        return cls(ids, vectors, encode, generation, save_to)

    @classmethod
    def load(cls, folder: Path, encode: Encode) -> TrainedVectors | None:
        """The vectors saved in `folder`, or None when there are none."""
        path = Path(folder) / VECTORS_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path) as saved:
                ids, vectors, generation = saved["ids"], saved["vectors"], int(saved["generation"])
        except Exception as exc:  # numpy and zipfile raise several unrelated types for a damaged file
            raise ModelUnavailableError(f"the trained encoder's corpus vectors {path} are unreadable ({exc}); run "
                                        "`citewise train` again, or search with search.dense_vectors = "
                                        "'embedder'") from exc
        return cls(ids, vectors, encode, generation, Path(folder))

    def describe(self) -> str:
        where = f" from {self.source}" if self.source is not None else ""
        return f"{len(self)} chunks{where}"

    def warm_up(self, index: Index) -> None:
        self.catch_up(index)

    def catch_up(self, index: Index, progress: Progress | None = None) -> tuple[int, int]:
        """Follow `index` now: (chunks dropped, chunks encoded) since the vectors were last read."""
        with self._lock:
            return self._follow(index, progress or NullProgress())

    def save(self, folder: Path) -> None:
        """Store what it holds now as `folder`'s vectors (atomically), so the next reader starts from here."""
        with self._lock:
            ids = self._dense.ids() if self._dense is not None else np.zeros(0, dtype=np.int64)
            vectors = self._dense.vectors(ids) if self._dense is not None else np.zeros((0, 0), dtype=np.float32)
            generation = self._generation
        _write(Path(folder), ids, vectors, generation)
        self.source = Path(folder)

    def search(self, index: Index, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        if not queries:
            return []
        asked = self.encode(queries)
        with self._lock:  # a catch-up changes the FAISS index under a concurrent search otherwise
            self._follow(index, NullProgress())
            if self._dense is None or not len(self._dense):
                return [[] for _ in queries]
            scores, ids = self._dense.search(asked, k)
        return [[(int(i), float(s)) for s, i in zip(srow, irow) if i >= 0] for srow, irow in zip(scores, ids)]

    def _follow(self, index: Index, progress: Progress) -> tuple[int, int]:
        """Drop chunks the index no longer has and encode the ones it gained since the vectors were read."""
        generation = index.generation()
        if generation == self._generation:
            return 0, 0
        live = np.array(sorted(index.chunk_ids()), dtype=np.int64)
        have = self._dense.ids() if self._dense is not None else np.zeros(0, dtype=np.int64)
        gone = np.setdiff1d(have, live, assume_unique=True)
        if self._dense is not None:
            self._dense.remove(gone)
        missing = np.setdiff1d(live, have, assume_unique=True)
        added = 0
        if len(missing):
            log.info("encoding %d chunks added to %s since its trained encoder's vectors were stored",
                     len(missing), index.path)
            ids, vectors = _encode_chunks(index, missing, self.encode, progress)
            if len(ids):
                if self._dense is None:
                    self._dense = FaissIndex(int(vectors.shape[1]), DenseSpec())
                self._dense.add(ids, vectors)
                added = len(ids)
        self._generation = generation
        return len(gone), added


def _write(folder: Path, ids: np.ndarray, vectors: np.ndarray, generation: int | None) -> None:
    """Under a temporary name first, then renamed: a reader never loads half a file."""
    path = folder / VECTORS_FILE
    partial = path.with_name("vectors.partial.npz")
    np.savez(partial, ids=ids, vectors=vectors, generation=np.int64(-1 if generation is None else generation))
    if path.exists():
        os.chmod(partial, stat.S_IMODE(path.stat().st_mode))  # readers (replicas) kept what they could read
    partial.replace(path)


def _encode_chunks(index: Index, ids: np.ndarray, encode: Encode,
                   progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the chunks among `ids` that the index still holds when they are read."""
    kept: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    progress.stage("re-embed", len(ids))
    for lo in range(0, len(ids), BATCH):
        batch = [int(i) for i in ids[lo:lo + BATCH]]
        rows = index.chunks(batch)
        found = [i for i in batch if i in rows]  # removed by a writer since the ids were listed
        if found:
            kept.append(np.array(found, dtype=np.int64))
            parts.append(np.asarray(encode([chunk_passage(rows[i]) for i in found]), dtype=np.float32))
        progress.advance("re-embed", len(batch))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(kept), np.concatenate(parts)
