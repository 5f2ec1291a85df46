"""What a data step made and what it left out, so `citewise train` can say why a set is smaller than asked."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DataSummary:
    """Counts of one data step (synthetic questions, labels, negatives); `dropped` maps a reason to a count.

    `chunks_resumed` are chunks an earlier, interrupted run had already finished: skipped, not redone.
    """

    chunks_done: int = 0
    chunks_resumed: int = 0
    items: int = 0
    answerable: int = 0
    unanswerable: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, other: DataSummary) -> None:
        self.chunks_done += other.chunks_done
        self.chunks_resumed += other.chunks_resumed
        self.items += other.items
        self.answerable += other.answerable
        self.unanswerable += other.unanswerable
        self.dropped.update(other.dropped)
        self.seconds += other.seconds

    def to_dict(self) -> dict[str, Any]:
        return {"chunks_done": self.chunks_done, "chunks_resumed": self.chunks_resumed, "items": self.items,
                "answerable": self.answerable, "unanswerable": self.unanswerable,
                "dropped": dict(sorted(self.dropped.items())), "seconds": round(self.seconds, 2)}

    def describe(self) -> str:
        """One line for the CLI: what was written and what was dropped, by reason."""
        line = f"{self.items} items ({self.answerable} answerable, {self.unanswerable} not)"
        if self.chunks_done or self.chunks_resumed:
            line += f" from {self.chunks_done} chunks"
        if self.chunks_resumed:
            line += f" ({self.chunks_resumed} chunks already done by an earlier run)"
        if self.dropped:
            line += "; dropped " + ", ".join(f"{n} {reason}" for reason, n in sorted(self.dropped.items()))
        return line
