"""BM25 over chunk texts with bm25s; the analyzer (stemmer, stopwords) is a setting."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np


class Bm25Analyzer:
    """Lower-cases, drops stopwords and stems; the same analyzer must serve index and query."""

    def __init__(self, stemmer: str | None = "english", stopwords: str | None = "en") -> None:
        self.stemmer_name = stemmer
        self.stopwords = stopwords
        self._stemmer: Any = None

    def tokens(self, texts: list[str]) -> list[list[str]]:
        import bm25s

        if self.stemmer_name and self._stemmer is None:
            import Stemmer

            self._stemmer = Stemmer.Stemmer(self.stemmer_name)
        out = bm25s.tokenize(texts, stopwords=self.stopwords, stemmer=self._stemmer, return_ids=False,
                             show_progress=False)
        return [list(t) for t in out]


class Bm25Index:
    """A bm25s retriever plus the chunk id of each indexed row, and how many neighbouring chunks on
    each side each row's text holds (recorded, so a reader knows what it searches)."""

    def __init__(self, analyzer: Bm25Analyzer, retriever: Any = None, ids: np.ndarray | None = None,
                 neighbours: int = 0) -> None:
        self.analyzer = analyzer
        self.neighbours = neighbours
        self._retriever = retriever
        self._ids = ids if ids is not None else np.zeros(0, dtype=np.int64)

    @classmethod
    def build(cls, analyzer: Bm25Analyzer, ids: list[int], texts: list[str], neighbours: int = 0) -> Bm25Index:
        import bm25s

        if not ids:
            return cls(analyzer, neighbours=neighbours)
        retriever = bm25s.BM25()
        retriever.index(analyzer.tokens(texts), show_progress=False)
        return cls(analyzer, retriever, np.asarray(ids, dtype=np.int64), neighbours)

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """(chunk id, score) pairs, best first; only chunks sharing at least one term."""
        if self._retriever is None:
            return []
        tokens = self.analyzer.tokens([query])[0]
        if not tokens:
            return []
        scores = self._retriever.get_scores(tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def save(self, directory: Path) -> None:
        """Write into a temporary folder and rename it into place."""
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        np.save(tmp / "ids.npy", self._ids)
        meta = {"stemmer": self.analyzer.stemmer_name, "stopwords": self.analyzer.stopwords,
                "neighbours": self.neighbours, "empty": self._retriever is None}
        (tmp / "analyzer.json").write_text(json.dumps(meta))
        if self._retriever is not None:
            self._retriever.save(str(tmp / "bm25s"))
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        shutil.rmtree(directory, ignore_errors=True)
        os.replace(tmp, directory)

    @classmethod
    def load(cls, directory: Path, analyzer: Bm25Analyzer) -> Bm25Index:
        import bm25s

        meta = json.loads((directory / "analyzer.json").read_text())
        if meta["stemmer"] != analyzer.stemmer_name or meta["stopwords"] != analyzer.stopwords:
            raise ValueError("analyzer changed")
        ids = np.load(directory / "ids.npy")
        retriever = None if meta["empty"] else bm25s.BM25.load(str(directory / "bm25s"))
        return cls(analyzer, retriever, ids, int(meta.get("neighbours", 0)))
