"""Synthetic unit vectors shaped like sentence embeddings, for benchmarking the dense index at any size.

Uniform random unit vectors are unrealistically hard for approximate search (no neighbourhoods) and unlike
real data. These follow a three-level Gaussian mixture, topics > documents > chunks, plus one direction all
vectors share (real MiniLM embeddings are anisotropic), then are normalized. The noise scales were fitted so
that 11.8k synthetic vectors match the SciFact MiniLM index (11,786 chunks): mean cosine of random pairs
0.10 (real 0.11), of the nearest neighbour 0.87 (0.83), of the 10th 0.50 (0.56), of the 100th 0.43 (0.41),
norm of the mean vector 0.31 (0.34).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

CHUNKS_PER_DOC = 6
CHUNKS_PER_TOPIC = 1000
DOC_SPREAD = 1.2
CHUNK_SPREAD = 0.65
SHARED = 0.45

DESCRIPTION = (f"Gaussian mixture on the unit sphere: topics (1 per {CHUNKS_PER_TOPIC} vectors) > documents "
               f"(~{CHUNKS_PER_DOC} chunks each, spread {DOC_SPREAD}) > chunks (spread {CHUNK_SPREAD}) plus a shared "
               f"direction ({SHARED}), normalized; fitted to SciFact MiniLM neighbour similarities. Queries are "
               "chunks of unseen documents of the same topics.")


class SyntheticVectors:
    """A reproducible corpus and held-out queries from the mixture (queries are never in the corpus)."""

    def __init__(self, n: int, dim: int = 384, seed: int = 0) -> None:
        self.n = n
        self.dim = dim
        rng = np.random.default_rng(seed)
        self._rng = rng
        self._shared = rng.standard_normal(dim).astype(np.float32)
        self._shared /= np.linalg.norm(self._shared)
        n_topics = max(8, n // CHUNKS_PER_TOPIC)
        n_docs = max(1, n // CHUNKS_PER_DOC)
        self.topics = self._noise(n_topics, 1.0)
        self._doc_topic = rng.integers(0, n_topics, n_docs)
        self._doc_offset = self._noise(n_docs, DOC_SPREAD)

    def _noise(self, rows: int, scale: float) -> np.ndarray:
        return self._rng.standard_normal((rows, self.dim), dtype=np.float32) * np.float32(scale / np.sqrt(self.dim))

    def _chunks(self, centres: np.ndarray) -> np.ndarray:
        x = centres + self._noise(len(centres), CHUNK_SPREAD) + np.float32(SHARED) * self._shared
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def corpus_blocks(self, block: int = 100_000) -> Iterator[np.ndarray]:
        """The n corpus vectors in blocks, so peak memory stays near the vectors themselves."""
        for start in range(0, self.n, block):
            rows = min(block, self.n - start)
            docs = self._rng.integers(0, len(self._doc_offset), rows)
            centres = self.topics[self._doc_topic[docs]] + self._doc_offset[docs]
            yield self._chunks(centres)

    def corpus(self) -> np.ndarray:
        out = np.empty((self.n, self.dim), dtype=np.float32)
        start = 0
        for block in self.corpus_blocks():
            out[start:start + len(block)] = block
            start += len(block)
        return out

    def queries(self, count: int) -> np.ndarray:
        """Chunks of new documents in existing topics: realistic neighbours, never a copy of a corpus vector."""
        topics = self._rng.integers(0, len(self.topics), count)
        return self._chunks(self.topics[topics] + self._noise(count, DOC_SPREAD))
