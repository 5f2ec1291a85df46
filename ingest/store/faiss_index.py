"""FAISS vectors keyed by chunk id (inner product over unit vectors = cosine), exact or HNSW."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ingest.store.dense_spec import DenseSpec


SINGLE_THREAD_BELOW = 16  # queries per call under which a search runs on one thread


def set_faiss_threads(threads: int) -> None:
    """OpenMP threads for the calling thread's next FAISS calls; 0 means every core, like the other settings."""
    import faiss

    faiss.omp_set_num_threads(threads or os.cpu_count() or 1)


class FaissIndex:
    """Vectors in an id map so they carry their chunk ids, over a flat (exact) or HNSW (approximate) index.

    FAISS's HNSW cannot remove vectors, so removed ids become tombstones: they are filtered out inside every
    search (an id selector, so k live results still come back) until the owner rebuilds the graph. Tombstones
    are not saved: a loaded file's ids beyond the store's are removed again by the catch-up sync.

    Adds use `threads`; a search of a few queries uses one thread: HNSW cannot split one query anyway, and a
    flat scan split over busy cores waits on spinning OpenMP workers, which costs far more than it saves.
    """

    def __init__(self, dim: int, spec: DenseSpec | None = None, threads: int = 0) -> None:
        import faiss

        self.dim = dim
        self.spec = spec or DenseSpec()
        self.ef_search = self.spec.ef_search or 0
        self.threads = threads
        if self.spec.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, int(self.spec.m or 32), faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = int(self.spec.ef_construction or 40)
        else:
            inner = faiss.IndexFlatIP(dim)
        self._index: Any = faiss.IndexIDMap2(inner)
        self._reset_tombstones()

    @classmethod
    def load(cls, path: Path, dim: int, spec: DenseSpec, threads: int = 0) -> FaissIndex:
        """Read a saved index; the file must hold the type the manifest names."""
        import faiss

        self = cls.__new__(cls)
        self.dim = dim
        self.spec = spec
        self.ef_search = spec.ef_search or 0
        self.threads = threads
        self._index = faiss.read_index(str(path))
        if self._index.d != dim:
            raise ValueError(f"{path} holds {self._index.d}-d vectors, expected {dim}")
        inner = faiss.downcast_index(self._index.index)
        found = "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat" if isinstance(inner, faiss.IndexFlat) else "?"
        if found != spec.kind:
            raise ValueError(f"{path} holds a {found} index, the manifest says {spec.kind}")
        self._reset_tombstones()
        return self

    @classmethod
    def build(cls, dim: int, spec: DenseSpec, ids: np.ndarray, vectors: np.ndarray, threads: int = 0) -> FaissIndex:
        self = cls(dim, spec, threads)
        self.add(ids, vectors)
        return self

    def _reset_tombstones(self) -> None:
        self._removed = np.zeros(0, dtype=np.int64)
        self._params: Any = None
        self._selector: Any = None  # referenced here so FAISS never reads a freed selector

    def __len__(self) -> int:
        """Live vectors (tombstones excluded)."""
        return int(self._index.ntotal) - len(self._removed)

    @property
    def removed(self) -> int:
        """Tombstoned vectors still in the graph."""
        return len(self._removed)

    def ids(self) -> np.ndarray:
        """Live ids, sorted."""
        import faiss

        stored = np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64))
        return np.setdiff1d(stored, self._removed, assume_unique=True) if len(self._removed) else stored

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids` (live ones), in that order: what a copy of the index is saved from."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.reconstruct_batch(ids), dtype=np.float32)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        if len(self._removed) and len(np.intersect1d(ids, self._removed)):
            raise ValueError("ids removed from an HNSW graph can only come back through a rebuild")
        set_faiss_threads(self.threads)
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        if self.spec.kind == "flat":
            set_faiss_threads(self.threads)
            self._index.remove_ids(ids)
            return
        self._removed = np.union1d(self._removed, ids)
        self._params = None

    def _search_params(self) -> Any:
        import faiss

        if self.spec.kind != "hnsw":
            return None
        if self._params is None or self._params.efSearch != self.ef_search:
            params = faiss.SearchParametersHNSW()
            params.efSearch = int(self.ef_search or 16)
            if len(self._removed):
                self._selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(self._removed))
                params.sel = self._selector
            self._params = params
        return self._params

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) arrays of shape (n_queries, k); missing slots have id -1. Never a removed id."""
        if not len(self):
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        k = max(1, min(k, len(self)))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        params = self._search_params()
        set_faiss_threads(1 if len(queries) < SINGLE_THREAD_BELOW else self.threads)
        if params is None:
            return self._index.search(queries, k)
        return self._index.search(queries, k, params=params)

    def describe(self) -> dict[str, Any]:
        """What stats show: the type, its parameters and the live and tombstoned counts."""
        out = dict(self.spec.to_dict(), vectors=len(self), removed=self.removed)
        if self.spec.kind == "hnsw":
            out["ef_search"] = self.ef_search
        return out

    def save(self, path: Path) -> None:
        """Write to a temporary name, fsync, then rename: a reader never sees half a file."""
        import faiss

        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
