"""What removing a document did: the index's part, and what training had kept of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Removal:
    """The chunks removed, and the outcome for the trained encoder's stored vectors and the training questions
    (each {} when there was nothing to do). Those two are reported, not raised: the document is gone from the
    index either way, and what could not be updated now is caught up by the next reader or training run."""

    chunks: int
    trained_vectors: dict[str, Any] = field(default_factory=dict)
    training_items: dict[str, Any] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """One line for each derived part left as it was, and why."""
        return [f"{what} not updated: {done.get('error') or done.get('skipped')}"
                for what, done in (("trained encoder vectors", self.trained_vectors),
                                   ("training questions", self.training_items))
                if done.get("error") or done.get("skipped")]
