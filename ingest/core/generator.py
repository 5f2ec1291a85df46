"""What citewise needs from a language model, so backends (embedded llama.cpp, a model server) are swappable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

Message = dict[str, str]


@dataclass
class Completion:
    """One model call: the text and what it cost, so every report can account for its seconds."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    total_s: float = 0.0
    finish_reason: str = ""
    drafted_tokens: int = 0  # prompt-lookup drafts verified, and how many of them were kept
    accepted_tokens: int = 0

    def timings(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cached_tokens": self.cached_tokens, "prefill_s": round(self.prefill_s, 3),
                "decode_s": round(self.decode_s, 3), "total_s": round(self.total_s, 3)}


@dataclass
class Usage:
    """Running totals over many calls (a report makes several)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    total_s: float = 0.0

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        self.cached_tokens += c.cached_tokens
        self.prefill_s += c.prefill_s
        self.decode_s += c.decode_s
        self.total_s += c.total_s


class Generator(Protocol):
    """A chat model that can be held to a JSON schema and asked for a yes/no probability.

    Greedy and deterministic: the same messages give the same text, which evaluations rely on.
    """

    name: str

    def chat(self, messages: list[Message], *, schema: dict[str, Any] | None = None, max_tokens: int = 256,
             stop: list[str] | None = None, on_text: Callable[[str], None] | None = None) -> Completion: ...

    def yes_probability(self, messages: list[Message], yes: str = "yes", no: str = "no") -> tuple[float, Completion]:
        ...

    def count_tokens(self, text: str) -> int: ...

    def warm_up(self) -> None:
        """Load the model now (once), so the first request does not pay for it."""
        ...
