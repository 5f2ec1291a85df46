"""The evidence ranking `citewise train` learns for one index: how much a candidate sentence's pooled cosine,
its token-level match (MaxSim) and its chunk's search rank each count, fitted on the index's own training
questions instead of set by hand (`research.evidence_rank_weight`). numpy only: no torch on this path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: The features, in this order, of one candidate sentence.
FEATURES = ("cosine", "maxsim", "chunk_prior")


def maxsim(question_tokens: np.ndarray, sentence_tokens: list[np.ndarray]) -> np.ndarray:
    """Mean over the question's word pieces of the best cosine with any word piece of each sentence.

    A pooled vector averages a sentence into one point, so a long sentence about the question's topic
    outscores the short one naming what was asked; MaxSim asks that each word of the question find its
    own match, which is what a sentence holding the answer to a factual question tends to have."""
    if not len(question_tokens):
        return np.zeros(len(sentence_tokens), dtype=np.float32)
    return np.array([float((question_tokens @ s.T).max(axis=1).mean()) if len(s) else 0.0
                     for s in sentence_tokens], dtype=np.float32)


def features(cosine: np.ndarray, token_match: np.ndarray, chunk_prior: np.ndarray) -> np.ndarray:
    """One row per candidate sentence, columns as FEATURES."""
    return np.stack([np.asarray(cosine, dtype=np.float64), np.asarray(token_match, dtype=np.float64),
                     np.asarray(chunk_prior, dtype=np.float64)], axis=1)


@dataclass(frozen=True)
class SentenceRanker:
    """P(a candidate sentence is the one that answers) = sigmoid(w . standardized features + b).

    Logistic regression on the index's training questions: every candidate sentence the research loop
    would weigh for a question, labelled by whether it holds the answer. A dozen numbers, fitted in
    seconds, yet they differ between corpora (how much the search rank should count differs most), which
    is what a single hand-set weight could not follow.
    """

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    questions: int = 0
    held_out: dict[str, Any] | None = None

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - np.array(self.mean)) / np.array(self.scale)
        return z @ np.array(self.weights) + self.bias

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-np.clip(self.logits(x), -60.0, 60.0)))).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "weights": list(self.weights), "bias": self.bias,
                "mean": list(self.mean), "scale": list(self.scale), "questions": self.questions,
                "held_out": self.held_out}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> SentenceRanker:
        if list(row.get("features", [])) != list(FEATURES):
            raise ValueError(f"the evidence ranker was fitted on features {row.get('features')}, not {list(FEATURES)}")
        n = len(FEATURES)
        weights, mean, scale = (tuple(float(v) for v in row[k]) for k in ("weights", "mean", "scale"))
        if not (len(weights) == len(mean) == len(scale) == n) or min(scale) <= 0:
            raise ValueError("the evidence ranker's weights do not match its features")
        return cls(weights, float(row["bias"]), mean, scale, int(row.get("questions", 0)), row.get("held_out"))

    @classmethod
    def fit(cls, x: np.ndarray, labels: np.ndarray, questions: int = 0, l2: float = 1.0,
            iterations: int = 50) -> SentenceRanker:
        """Newton's method on the L2-penalized log loss of standardized features. The penalty keeps the
        weights finite when a corpus's positives are separable by one feature, and small when there are
        few training questions."""
        x = np.asarray(x, dtype=np.float64)
        y = (np.asarray(labels) > 0.5).astype(np.float64)
        mean = x.mean(axis=0) if len(x) else np.zeros(len(FEATURES))
        scale = x.std(axis=0) if len(x) else np.ones(len(FEATURES))
        scale = np.where(scale > 1e-9, scale, 1.0)
        z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
        w = np.zeros(z.shape[1])
        penalty = np.diag([l2] * (z.shape[1] - 1) + [0.0])  # the bias is not penalized
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -60.0, 60.0)))
            grad = z.T @ (p - y) + penalty @ w
            hess = (z * (p * (1.0 - p))[:, None]).T @ z + penalty + 1e-9 * np.eye(len(w))
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.max(np.abs(step)) < 1e-9:
                break
        return cls(tuple(float(v) for v in w[:-1]), float(w[-1]), tuple(float(v) for v in mean),
                   tuple(float(v) for v in scale), questions)
