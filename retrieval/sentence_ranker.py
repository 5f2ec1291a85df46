"""The evidence ranking `citewise train` learns for one index: how much a candidate sentence's pooled cosine,
its token-level match (MaxSim), its chunk's search rank and its place in its chunk each count, fitted on the
index's own training questions instead of set by hand (`research.evidence_rank_weight`). numpy only: no torch
on this path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: The features, in this order, of one candidate sentence. `position` is where the sentence starts in its
#: chunk (0 first, near 1 last): abstracts state their findings last, encyclopedia paragraphs name their
#: topic first, and which way it counts (if at all) is learned per corpus. A ranking fitted before a feature
#: existed names the ones it uses and keeps working.
FEATURES = ("cosine", "maxsim", "chunk_prior", "position")
#: What says which other sentences of a cited passage are evidence too (a corroboration model). Its `position` is
#: the place in the passage (the cited chunk and the chunks around it, `EvidenceSelector.passages`), not in one
#: chunk; the chunks around a cited one were never ranked, so the chunk's rank is left out.
CORROBORATION_FEATURES = ("cosine", "maxsim", "position")


def maxsim(question_tokens: np.ndarray, sentence_tokens: list[np.ndarray]) -> np.ndarray:
    """Mean over the question's word pieces of the best cosine with any word piece of each sentence.

    A pooled vector averages a sentence into one point, so a long sentence about the question's topic
    outscores the short one naming what was asked; MaxSim asks that each word of the question find its
    own match, which is what a sentence holding the answer to a factual question tends to have."""
    if not len(question_tokens):
        return np.zeros(len(sentence_tokens), dtype=np.float32)
    return np.array([float((question_tokens @ s.T).max(axis=1).mean()) if len(s) else 0.0
                     for s in sentence_tokens], dtype=np.float32)


def features(cosine: np.ndarray, token_match: np.ndarray, chunk_prior: np.ndarray,
             position: np.ndarray) -> np.ndarray:
    """One row per candidate sentence, columns as FEATURES."""
    return np.stack([np.asarray(v, dtype=np.float64) for v in (cosine, token_match, chunk_prior, position)],
                    axis=1)


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
    names: tuple[str, ...] = FEATURES  # the FEATURES it was fitted on, in the order of its weights

    def logits(self, x: np.ndarray) -> np.ndarray:
        """`x` has every column of FEATURES; the ranking reads the ones it was fitted on."""
        columns = [FEATURES.index(n) for n in self.names]
        z = (np.asarray(x, dtype=np.float64)[:, columns] - np.array(self.mean)) / np.array(self.scale)
        return z @ np.array(self.weights) + self.bias

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-np.clip(self.logits(x), -60.0, 60.0)))).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"features": list(self.names), "weights": list(self.weights), "bias": self.bias,
                "mean": list(self.mean), "scale": list(self.scale), "questions": self.questions,
                "held_out": self.held_out}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> SentenceRanker:
        names = tuple(str(n) for n in row.get("features") or [])
        if not names or len(set(names)) != len(names) or not set(names) <= set(FEATURES):
            raise ValueError(f"the evidence ranker was fitted on features {list(names)}; this version computes "
                             f"{list(FEATURES)}")
        weights, mean, scale = (tuple(float(v) for v in row[k]) for k in ("weights", "mean", "scale"))
        if not (len(weights) == len(mean) == len(scale) == len(names)) or min(scale) <= 0:
            raise ValueError("the evidence ranker's weights do not match its features")
        return cls(weights, float(row["bias"]), mean, scale, int(row.get("questions", 0)), row.get("held_out"),
                   names)

    @classmethod
    def fit(cls, x: np.ndarray, labels: np.ndarray, questions: int = 0, l2: float = 1.0,
            iterations: int = 50, names: tuple[str, ...] = FEATURES) -> SentenceRanker:
        """Newton's method on the L2-penalized log loss of standardized features (`x` has every column of
        FEATURES; `names` picks the ones to fit). The penalty keeps the weights finite when a corpus's positives
        are separable by one feature, and small when there are few training questions."""
        x = np.asarray(x, dtype=np.float64)[:, [FEATURES.index(n) for n in names]]
        y = (np.asarray(labels) > 0.5).astype(np.float64)
        mean = x.mean(axis=0) if len(x) else np.zeros(len(names))
        scale = x.std(axis=0) if len(x) else np.ones(len(names))
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
                   tuple(float(v) for v in scale), questions, names=tuple(names))
