"""One writer call per distinct prompt across the systems of an evaluation that differ only after the write.

Systems such as `citewise-located` change how a draft is verified, not what the writer is shown; the writer
is greedy and deterministic, so a second system asking it the same messages would get the same text at the
same cost. Replaying the first call's completion halves such a comparison's time and makes the pairing pure:
both systems judge one and the same draft. A prompt that differs in any way (other evidence, another
question) is a new call, so a replay can never hand a system a draft written for something else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any, Callable

from ingest.core.generator import Completion, Generator, Message


class SharedWrites:
    """A `Generator` that records each chat completion of the model it wraps and replays it for the same call.

    `take_replayed_s()` returns the measured seconds of the writes replayed since it was last called, so a
    replaying system's report time can count its write once, as the system that made the call measured it.
    """

    def __init__(self, model: Generator) -> None:
        self.model = model
        self.name = model.name
        self._done: dict[str, Completion] = {}
        self._replayed_s = 0.0
        self.replays = 0

    def chat(self, messages: list[Message], *, schema: dict[str, Any] | None = None, max_tokens: int = 256,
             stop: list[str] | None = None, on_text: Callable[[str], None] | None = None) -> Completion:
        key = hashlib.sha256(json.dumps([messages, schema, max_tokens, stop], sort_keys=True).encode()).hexdigest()
        done = self._done.get(key)
        if done is None:
            done = self._done[key] = self.model.chat(messages, schema=schema, max_tokens=max_tokens, stop=stop,
                                                     on_text=on_text)
            return replace(done)
        self.replays += 1
        self._replayed_s += done.total_s
        if on_text is not None and done.text:
            on_text(done.text)
        return replace(done)

    def take_replayed_s(self) -> float:
        took, self._replayed_s = self._replayed_s, 0.0
        return took

    def yes_probability(self, messages: list[Message], yes: str = "yes", no: str = "no") -> tuple[float, Completion]:
        return self.model.yes_probability(messages, yes, no)

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def warm_up(self) -> None:
        self.model.warm_up()
