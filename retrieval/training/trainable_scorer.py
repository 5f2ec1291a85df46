"""What the scorer trainer needs from the model it trains: the two kinds it can train share one loop.

The kinds import `ScorerKind` from here; the trainer picks one (`scorer_trainer.trainable_scorer`), so this
module imports neither."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from retrieval.training.pairs import TrainingPair

if TYPE_CHECKING:
    import numpy as np

ScorerKind = Literal["bi-encoder", "cross-encoder"]


class TrainableScorer(Protocol):
    """A torch model being trained as an index's scorer, with its own batches, loss and raw scores.

    The trainer owns everything else (budget, schedule, checkpoints, calibration, publishing), so both
    kinds stop, resume and publish the same way.
    """

    kind: ScorerKind
    #: The Hugging Face module: its parameters are trained, frozen and checkpointed.
    model: Any

    def batches(self, rows: list[TrainingPair], epoch: int) -> list[list[Any]]:
        """One epoch's batches, the same for a seed and epoch (so a run resumes exactly)."""
        ...

    def loss(self, rows: list[TrainingPair], batch: list[Any]) -> Any:
        """The training loss of one batch (a torch scalar)."""
        ...

    def logits(self, rows: list[TrainingPair]) -> np.ndarray:
        """Raw scores of (question, passage) pairs, as the published int8 model computes them."""
        ...

    def save(self, folder: Path) -> None:
        """Weights, config and tokenizer.json: what the publisher exports."""
        ...

    def meta(self) -> dict[str, Any]:
        """What a reader needs to score the same way (kind, lengths, scale), kept in meta.json."""
        ...

