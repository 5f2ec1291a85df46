"""What the index, the chunker and the search need from an embedder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np


class TokenCounter(Protocol):
    """The embedder's own tokenizer: chunk sizes must match what it will see at embedding time."""

    def count_tokens(self, text: str) -> int: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...


class Embedder(TokenCounter, Protocol):
    """Unit-length vectors for texts, plus the facts an index records about them."""

    name: str

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    @property
    def precision(self) -> str: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...

    def warm_up(self) -> None:
        """Load the model now (once), so the first request does not pay for it."""
        ...
