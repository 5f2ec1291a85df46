"""Reranking with a sentence-transformers CrossEncoder from a local folder the user configured."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ingest.core.errors import ModelUnavailableError
from ingest.core.offline import apply_offline_env
from retrieval.blend import blend_head
from retrieval.stages import Ranked


class CrossEncoderReranker:
    """Reads query and passage together, which a bi-encoder cannot; loaded once on first use."""

    name = "cross-encoder"

    def __init__(self, path: Path, top_n: int = 50, blend: float = 1.0, batch_size: int = 16,
                 max_length: int = 512) -> None:
        self.path = Path(path)
        self.top_n = top_n
        self.blend = blend
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                if not (self.path / "config.json").is_file():
                    raise ModelUnavailableError(f"no cross-encoder at {self.path} (expected a model folder with "
                                                "config.json); set search.rerank.cross_encoder_path")
                apply_offline_env()
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(str(self.path), device="cpu", max_length=self.max_length,
                                           local_files_only=True)
            return self._model

    def warm_up(self) -> None:
        self.model  # noqa: B018 (loading is the point)

    def rerank(self, query: str, ranked: Ranked, texts: dict[int, str]) -> tuple[Ranked, dict[str, Any]]:
        head = [cid for cid, _ in ranked[: self.top_n] if cid in texts]
        if not head:
            return list(ranked), {"scored": 0}
        raw = self.model.predict([(query, texts[cid]) for cid in head], batch_size=self.batch_size,
                                 show_progress_bar=False)
        scores = {cid: float(s) for cid, s in zip(head, raw)}
        return blend_head(ranked, scores, self.blend), {"scored": len(scores), "scores": scores}
