"""FAISS vectors keyed by chunk id (inner product over unit vectors = cosine)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


class FaissIndex:
    """An exact inner-product index wrapped in an id map so vectors carry their chunk ids."""

    def __init__(self, dim: int) -> None:
        import faiss

        self.dim = dim
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @classmethod
    def load(cls, path: Path, dim: int) -> FaissIndex:
        import faiss

        self = cls.__new__(cls)
        self.dim = dim
        self._index = faiss.read_index(str(path))
        if self._index.d != dim:
            raise ValueError(f"{path} holds {self._index.d}-d vectors, expected {dim}")
        return self

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) arrays of shape (n_queries, k); missing slots have id -1."""
        k = max(1, min(k, len(self))) if len(self) else 1
        if not len(self):
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        return self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def save(self, path: Path) -> None:
        """Write to a temporary name, fsync, then rename: a reader never sees half a file."""
        import faiss

        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
