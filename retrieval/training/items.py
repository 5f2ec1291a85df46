"""One training question, whatever wrote it: the data-preparation model, the writer, or the user's labels."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Origin = Literal["synthetic", "qrels", "squad"]


@dataclass(frozen=True)
class TrainingItem:
    """A question tied to the chunk it was asked about, and whether that chunk answers it.

    `answer` and `sentence` are copied verbatim from the chunk's stored text (an item whose span is not
    found there is dropped, as a quote would be); both are None for a near miss (`answerable` False),
    which looks answerable from the chunk but is not. `negatives` are chunk ids the search ranks high
    for the question that are not its source.
    """

    question: str
    chunk_id: int
    doc_id: str
    answerable: bool
    origin: Origin
    answer: str | None = None
    sentence: str | None = None
    negatives: tuple[int, ...] = field(default=())
    #: The labels' other evidence sentences for this question in the same document (SciFact lists several per
    #: claim): positives where sentences are ranked, and never picked as the evidence sentence's negatives.
    more_evidence: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["negatives"] = list(self.negatives)
        row["more_evidence"] = list(self.more_evidence)
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> TrainingItem:
        return cls(**{**row, "negatives": tuple(row.get("negatives", ())),
                      "more_evidence": tuple(row.get("more_evidence", ()))})
