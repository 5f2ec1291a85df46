"""Labelled (question, passage) pairs the index's scorer learns from, split into training and held-out parts."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: What a pair is, so counts (and a skewed data set) can be seen: the evidence itself, another sentence of the
#: same chunk, a chunk the search ranks high that is not the source, a question the chunk almost answers.
Kind = Literal["positive", "sibling", "hard", "near-miss"]


@dataclass(frozen=True)
class TrainingPair:
    """One question read together with one passage, and whether the passage answers it (1.0) or not (0.0)."""

    question: str
    passage: str
    label: float
    level: Literal["sentence", "chunk"]
    kind: Kind
    origin: str


@dataclass
class PairSet:
    """Training pairs and a held-out slice (whole questions, never seen in training) for calibration and checks."""

    train: list[TrainingPair]
    held_out: list[TrainingPair]
    items: Counter[str] = field(default_factory=Counter)  # items used, by origin
    skipped: int = 0  # items whose chunk is no longer in the index

    @property
    def data_hash(self) -> str:
        """Names the exact data, so an interrupted run resumes only on the same pairs."""
        h = hashlib.sha256()
        for part, pairs in (("train", self.train), ("held_out", self.held_out)):
            h.update(part.encode())
            for p in pairs:
                h.update(json.dumps(asdict(p), sort_keys=True, ensure_ascii=False).encode())
                h.update(b"\n")
        return h.hexdigest()

    def counts(self) -> dict[str, Any]:
        """Items by origin and pairs by part, origin, kind, level and label, for meta.json and the report."""
        def tally(pairs: list[TrainingPair]) -> dict[str, Any]:
            return {"total": len(pairs), "positive": sum(p.label > 0.5 for p in pairs),
                    "by_origin": dict(sorted(Counter(p.origin for p in pairs).items())),
                    "by_kind": dict(sorted(Counter(p.kind for p in pairs).items())),
                    "by_level": dict(sorted(Counter(p.level for p in pairs).items()))}
        return {"items": dict(sorted(self.items.items())), "skipped_items": self.skipped,
                "train": tally(self.train), "held_out": tally(self.held_out)}
