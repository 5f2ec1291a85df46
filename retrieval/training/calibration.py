"""Platt scaling and held-out metrics: numpy only, so the scoring path applies calibration without torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Platt:
    """P(answers) = sigmoid(a * logit + b), fitted on held-out pairs the model never trained on.

    A fine-tuned classifier's raw sigmoid is overconfident and its 0.5 sits wherever training left it;
    two numbers fitted afterwards make 0.5 mean the same on every corpus.
    """

    a: float = 1.0
    b: float = 0.0

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        z = self.a * np.asarray(logits, dtype=np.float64) + self.b
        return (1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"method": "platt", "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Platt:
        return cls(float(row["a"]), float(row["b"]))

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray, iterations: int = 100) -> Platt:
        """Newton's method on the log loss, with Platt's smoothed targets ((n+ + 1) / (n+ + 2) and
        1 / (n- + 2)): with few held-out pairs, or only one class, the fit stays finite and modest. The slope
        is kept positive (a model no better than chance gets a = 0, a constant base rate)."""
        raw = np.asarray(logits, dtype=np.float64)
        # Fitted on standardized scores: Newton's method from (1, 0) diverges on scores far from zero (a
        # bi-encoder's scaled cosines sit around 15), and a and b are mapped back to the raw scale after.
        centre, spread = (float(raw.mean()), float(raw.std())) if len(raw) else (0.0, 1.0)
        spread = spread if spread > 1e-12 else 1.0
        x = (raw - centre) / spread
        y = np.asarray(labels, dtype=np.float64) > 0.5
        pos, neg = int(y.sum()), int((~y).sum())
        t = np.where(y, (pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0))

        def loss(a: float, b: float) -> float:
            z = a * x + b
            return float(np.sum(np.logaddexp(0.0, z) - t * z))

        a, b = 1.0, 0.0
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(a * x + b, -60.0, 60.0)))
            w = np.maximum(p * (1.0 - p), 1e-12)
            grad = np.array([np.sum((p - t) * x), np.sum(p - t)])
            hess = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]]) + 1e-9 * np.eye(2)
            step = np.linalg.solve(hess, grad)
            # A full Newton step overshoots where the sigmoid is flat (few positives, scores far apart) and can
            # run off to slopes of 1e10; halving it until the loss falls keeps every step a descent, and the
            # smoothed targets give the loss a finite minimum to converge to.
            scale, current = 1.0, loss(a, b)
            while scale > 1e-8 and not loss(a - scale * step[0], b - scale * step[1]) <= current:
                scale /= 2.0
            a, b = a - scale * step[0], b - scale * step[1]
            if np.max(np.abs(scale * step)) < 1e-9:
                break
        if not (a > 0 and np.isfinite(a) and np.isfinite(b)):  # worse than chance on held-out pairs: a falling
            # slope would turn the ranking upside down, so say the base rate for every pair
            return cls(0.0, float(np.log(t.mean() / (1.0 - t.mean()))) if len(t) else 0.0)
        return cls(float(a / spread), float(b - a * centre / spread))


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half): the chance a positive outranks a negative. None with one class."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) > 0.5
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return None
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def question_auc(scores: np.ndarray, labels: np.ndarray, groups: list[str]) -> float | None:
    """Mean AUC within each group (a question at one level, sentence or chunk) holding both labels: how well
    a question's own passages are ordered, which is what reranking and evidence selection use. Pooled AUC
    also asks that scores compare across questions, which a similarity does less well than it ranks."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels) > 0.5
    by: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    found = [a for ix in by.values() if (a := auc(s[ix], y[ix])) is not None]
    return float(np.mean(found)) if found else None


def metrics(probabilities: np.ndarray, labels: np.ndarray, groups: list[str] | None = None) -> dict[str, Any]:
    """Held-out AUC (pooled, and within each of `groups` when given), accuracy at 0.5 and log loss of
    calibrated probabilities."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(labels) > 0.5
    out = {"pairs": int(len(p)), "positives": int(y.sum()), "auc": auc(p, y),
           "accuracy": float(np.mean((p >= 0.5) == y)) if len(p) else None,
           "log_loss": float(-np.mean(np.where(y, np.log(p), np.log(1 - p)))) if len(p) else None}
    if groups is not None:
        out["question_auc"] = question_auc(p, y, groups)
    return out


def answerability_examples(logits: np.ndarray, labels: np.ndarray, questions: list[str]) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """Question-level examples for "is this question answered by any passage shown?": the best score among a
    held-out question's passages (label 1 when one of them answers it), and for an answerable question the
    best score once its answering passages are taken away (label 0: what the search shows when the corpus
    lacks the answer). Near-miss questions, with no answering passage, give a 0 from all their passages."""
    x, t, _ = _answerability_rows(logits, labels, questions)
    return x, t


def _answerability_rows(logits: np.ndarray, labels: np.ndarray,
                        questions: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`answerability_examples` with each 0's kind: True for a near miss, False for an answer taken away."""
    s, y = np.asarray(logits, dtype=np.float64), np.asarray(labels) > 0.5
    by: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        by.setdefault(q, []).append(i)
    features, targets, near = [], [], []
    for ix in by.values():
        scores, answers = s[ix], y[ix]
        if answers.any():
            features.append(scores.max())
            targets.append(1.0)
            near.append(False)
        if (~answers).any():
            features.append(scores[~answers].max())
            targets.append(0.0)
            near.append(not answers.any())
    return np.array(features), np.array(targets), np.array(near, dtype=bool)


@dataclass(frozen=True)
class Answerability:
    """P(the question is answered by one of the passages shown) from the best passage's calibrated logit.

    A passage's probability says whether that passage answers, on a held-out mix of one answer to many
    non-answers; whether the documents answer at all is a different question, asked of the best passage
    against the best passage when the answer is missing, so it gets its own two numbers, fitted on
    held-out questions (`answerability_examples`) rather than a threshold set by hand.
    """

    calibration: Platt
    questions: int
    auc: float | None
    #: The AUC against each kind of negative apart. Near misses (questions written to look answerable from a
    #: passage that does not answer them) are what declining must catch and the harder kind; the answer taken
    #: away is what a question about something the corpus lacks looks like. The pooled `auc` mixes them.
    near_miss_auc: float | None = None
    missing_answer_auc: float | None = None

    def probability(self, passage_probabilities: list[float]) -> float:
        if not passage_probabilities:
            return 0.0
        best = float(np.clip(max(passage_probabilities), 1e-7, 1 - 1e-7))
        return float(self.calibration.probabilities(np.array([np.log(best / (1.0 - best))]))[0])

    def to_json(self) -> dict[str, Any]:
        return {**self.calibration.to_json(), "feature": "best passage's calibrated logit (sentence level)",
                "questions": self.questions, "auc": self.auc, "near_miss_auc": self.near_miss_auc,
                "missing_answer_auc": self.missing_answer_auc}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Answerability:
        return cls(Platt.from_json(row), int(row.get("questions", 0)), row.get("auc"), row.get("near_miss_auc"),
                   row.get("missing_answer_auc"))

    @classmethod
    def fit(cls, calibrated_logits: np.ndarray, labels: np.ndarray, questions: list[str]) -> Answerability | None:
        """None when the held-out questions cannot teach it (no example of one side): the reader then keeps
        the passage probabilities' own cut-off."""
        x, t, near = _answerability_rows(calibrated_logits, labels, questions)
        if len(set(t.tolist())) < 2:
            return None
        platt = Platt.fit(x, t)
        apart = [auc(x[keep], t[keep]) for keep in ((t == 1) | near, (t == 1) | ((t == 0) & ~near))]
        return cls(platt, int(len(set(questions))), auc(x, t), *apart)
