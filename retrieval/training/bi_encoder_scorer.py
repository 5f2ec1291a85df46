"""The bi-encoder kind of scorer: the shipped MiniLM embedder fine-tuned on the corpus's own questions.

It starts where dense search already is (a model that ranks passages well) and learns the corpus's
questions with in-batch negatives plus a mined hard negative per question (the multiple-negatives
ranking loss), which a CPU budget of minutes moves much further than a cross-encoder's fresh head.
The question and each passage are embedded apart, so a passage's score never depends on its batch.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ingest.core.offline import apply_offline_env
from ingest.core.settings import TrainSettings
from retrieval.training.pairs import TrainingPair
from retrieval.training.trainable_scorer import ScorerKind

#: Cosine similarities times this are the loss's logits (sentence-transformers' default) and the raw score
#: calibration sees: without it a softmax over values in [-1, 1] is nearly flat and learns slowly.
SIMILARITY_SCALE = 20.0
#: Word pieces of a passage when scoring: the base embedder's own limit, so a chunk is read whole as the
#: index embedded it; training reads train.max_length of it, which is cheaper and teaches the same thing.
SCORE_MAX_LENGTH = 256


class BiEncoderScorer:
    """MiniLM with mean pooling and unit-length vectors, exactly as the index's embedder computes them."""

    kind: ScorerKind = "bi-encoder"

    def __init__(self, source: Path, settings: TrainSettings) -> None:
        apply_offline_env()
        from transformers import AutoModel, AutoTokenizer

        self.settings = settings
        self.model = AutoModel.from_pretrained(str(source), local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)

    def batches(self, rows: list[TrainingPair], epoch: int) -> list[list[Any]]:
        """Each question with a positive once per epoch, as (positive, hard negative or -1) row indexes.

        One positive per question and batch: two of the same question's positives in a batch would each
        be the other's in-batch negative. The negative is of the positive's level (sentence or chunk), so
        the loss compares like with like; questions without a positive (near misses) teach this kind
        nothing and are left out.
        """
        rng = np.random.default_rng(self.settings.seed + epoch)
        positives: dict[str, list[int]] = defaultdict(list)
        negatives: dict[str, list[int]] = defaultdict(list)
        for j, p in enumerate(rows):
            (positives if p.label > 0.5 else negatives)[p.question].append(j)
        groups: list[tuple[int, int]] = []
        for question, mine in positives.items():
            pos = mine[int(rng.integers(len(mine)))]
            pool = [j for j in negatives[question] if rows[j].level == rows[pos].level] or negatives[question]
            groups.append((pos, pool[int(rng.integers(len(pool)))] if pool else -1))
        order = rng.permutation(len(groups))
        size = self.settings.batch_size
        return [[groups[i] for i in order[k: k + size]] for k in range(0, len(order), size)]

    def loss(self, rows: list[TrainingPair], batch: list[Any]) -> Any:
        import torch

        questions = self.encode([rows[pos].question for pos, _ in batch], self.settings.max_length)
        passages = [rows[pos].passage for pos, _ in batch] + [rows[neg].passage for _, neg in batch if neg >= 0]
        scores = questions @ self.encode(passages, self.settings.max_length).T * SIMILARITY_SCALE
        return torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))

    def logits(self, rows: list[TrainingPair], batch: int = 32) -> np.ndarray:
        import torch

        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(rows), batch):
                part = rows[start: start + batch]
                q = self.encode([p.question for p in part], SCORE_MAX_LENGTH)
                d = self.encode([p.passage for p in part], SCORE_MAX_LENGTH)
                out.append(((q * d).sum(-1) * SIMILARITY_SCALE).float().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def encode(self, texts: list[str], max_length: int) -> Any:
        """Unit-length mean-pooled vectors (with gradients when training)."""
        import torch

        features = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = self.model(**features).last_hidden_state
        mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_length": SCORE_MAX_LENGTH, "train_max_length": self.settings.max_length,
                "similarity_scale": SIMILARITY_SCALE}
