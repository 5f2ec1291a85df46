"""What search and reports need from a scorer citewise trained for one index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ingest.core.index import Index


class EvidenceRanking(Protocol):
    """A learned ordering of candidate evidence sentences from their features (`retrieval.sentence_ranker`)."""

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """One probability per row of features, that the sentence is the one answering the question."""
        ...


class CorpusVectors(Protocol):
    """The corpus as a trained encoder embeds it, searched by the dense first stage in place of the embedder's
    vectors (`citewise train` publishes them with a bi-encoder scorer when they rank better)."""

    def warm_up(self, index: Index) -> None:
        """Catch up with `index` now (encode the chunks added since the vectors were written)."""
        ...

    def search(self, index: Index, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        """Per query, up to `k` (chunk id, cosine) of `index`'s current chunks, best first."""
        ...

    def describe(self) -> str:
        """Where the vectors come from and how many, for `--explain`."""
        ...


class Scorer(Protocol):
    """Reads a question and a passage together and says how likely the passage answers it.

    Probabilities, calibrated on held-out training items, so that one cut-off (0.5) means the same on
    every corpus; hand-tuned similarity thresholds did not carry from one corpus to the next.
    """

    name: str

    def warm_up(self) -> None:
        """Load the model now (once), so the first request does not pay for it."""
        ...

    def probabilities(self, question: str, passages: list[str]) -> np.ndarray:
        """One probability in [0, 1] per passage, in the order given."""
        ...

    def answered(self, probabilities: list[float]) -> float:
        """The probability that the question is answered by one of the passages shown, from their
        `probabilities`: whether the documents answer at all, which decides stopping and declining."""
        ...

    def corpus_vectors(self) -> CorpusVectors | None:
        """The corpus vectors published with the scorer, or None (a cross-encoder, or vectors that did not rank
        held-out questions better, or `train.reembed = "never"`)."""
        ...

    def sentence_ranker(self) -> EvidenceRanking | None:
        """The evidence ranking trained beside the scorer (`citewise train`), or None when there is none or it
        did not beat the hand-set ranking on held-out questions."""
        ...

    def corroboration(self) -> EvidenceRanking | None:
        """Which other sentences of a cited passage are evidence too (trained beside the evidence ranking), or
        None when there is none or what it added on held-out questions' passages was not mostly evidence."""
        ...
