"""One writer call per distinct prompt across the systems of an evaluation that differ only after the write.

Systems such as `citewise-located` change how a draft is verified, not what the writer is shown; the writer
is greedy and deterministic, so a second system asking it the same messages would get the same text at the
same cost. Replaying the first call's completion halves such a comparison's time and makes the pairing pure:
both systems judge one and the same draft. A prompt that differs in any way (other evidence, another
question, another model) is a new call, so a replay can never hand a system a draft written for something else.

Kept in the run folder (`writes.jsonl`), the drafts outlive the process: a run resumed with one more such
system judges the drafts the run already wrote instead of writing them again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
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
        self._store: Path | None = None

    def keep_in(self, store: Path) -> None:
        """Read the completions `store` holds (a run being resumed) and append every new one to it. A line cut
        short by an interruption is skipped: its call is simply made again."""
        self._store = Path(store)
        if not self._store.exists():
            return
        text = self._store.read_text()
        if text and not text.endswith("\n"):  # the next record starts on its own line, not the cut one
            with self._store.open("a") as fh:
                fh.write("\n")
        with self._store.open() as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                    self._done.setdefault(record["key"], Completion(**record["completion"]))
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    def chat(self, messages: list[Message], *, schema: dict[str, Any] | None = None, max_tokens: int = 256,
             stop: list[str] | None = None, on_text: Callable[[str], None] | None = None) -> Completion:
        key = hashlib.sha256(json.dumps([self.name, messages, schema, max_tokens, stop],
                                        sort_keys=True).encode()).hexdigest()
        done = self._done.get(key)
        if done is None:
            done = self._done[key] = self.model.chat(messages, schema=schema, max_tokens=max_tokens, stop=stop,
                                                     on_text=on_text)
            if self._store is not None:
                with self._store.open("a") as fh:
                    fh.write(json.dumps({"key": key, "completion": asdict(done)}) + "\n")
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
