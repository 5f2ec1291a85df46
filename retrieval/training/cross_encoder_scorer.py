"""The cross-encoder kind of scorer: question and passage read together, one logit out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ingest.core.offline import apply_offline_env
from ingest.core.settings import TrainSettings
from retrieval.training.pairs import TrainingPair
from retrieval.training.trainable_scorer import ScorerKind

#: Positives are few beside their negatives; up to this weight puts them back in balance in the loss.
MAX_POSITIVE_WEIGHT = 4.0


class CrossEncoderScorer:
    """A sentence-transformers CrossEncoder: from the shipped MiniLM with a fresh one-logit head, or a saved run.

    It reads both texts at once, so it can judge whether the passage answers rather than resembles the
    question; but its head starts from nothing, and it needs more data and time than a CPU budget gives.
    """

    kind: ScorerKind = "cross-encoder"

    def __init__(self, source: Path, settings: TrainSettings, fresh: bool) -> None:
        apply_offline_env()
        from sentence_transformers import CrossEncoder

        self.settings = settings
        kwargs: dict[str, Any] = {"num_labels": 1} if fresh else {}
        self.encoder = CrossEncoder(str(source), max_length=settings.max_length, device="cpu",
                                    local_files_only=True, **kwargs)
        self.model = self.encoder.model
        self._loss_fn: Any = None

    def batches(self, rows: list[TrainingPair], epoch: int) -> list[list[Any]]:
        """Sentence pairs are a few dozen word pieces and chunk pairs up to max_length; mixed at random,
        most of a batch would be padding. So the shuffled rows are sorted by length within windows of
        32 batches, cut into batches, and the batches shuffled."""
        rng = np.random.default_rng(self.settings.seed + epoch)
        size = self.settings.batch_size
        order = rng.permutation(len(rows))
        window = size * 32
        out: list[list[Any]] = []
        for start in range(0, len(rows), window):
            part = sorted(order[start: start + window].tolist(),
                          key=lambda j: len(rows[j].question) + len(rows[j].passage))
            out += [part[k: k + size] for k in range(0, len(part), size)]
        return [out[i] for i in rng.permutation(len(out))]

    def loss(self, rows: list[TrainingPair], batch: list[Any]) -> Any:
        import torch

        if self._loss_fn is None:
            positives = max(1.0, float(sum(p.label > 0.5 for p in rows)))
            weight = torch.tensor(min(MAX_POSITIVE_WEIGHT, max(1.0, (len(rows) - positives) / positives)))
            self._loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weight)
        chosen = [rows[j] for j in batch]
        logits = self.model(**self._features(chosen)).logits.view(-1)
        return self._loss_fn(logits, torch.tensor([p.label for p in chosen], dtype=torch.float32))

    def logits(self, rows: list[TrainingPair], batch: int = 32) -> np.ndarray:
        import torch

        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(rows), batch):
                features = self._features(rows[start: start + batch])
                out.append(self.model(**features).logits.view(-1).float().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def save(self, folder: Path) -> None:
        self.encoder.save(str(folder))

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_length": self.settings.max_length}

    def _features(self, rows: list[TrainingPair]) -> Any:
        return self.encoder.tokenizer([p.question for p in rows], [p.passage for p in rows], padding=True,
                                      truncation="longest_first", max_length=self.settings.max_length,
                                      return_tensors="pt")
