"""Shows chosen string fields of a JSON object while the model is still writing it."""

from __future__ import annotations

from typing import Callable


class JsonFieldStreamer:
    """Fed raw JSON text piece by piece; emits the characters of string values under `keys`.

    The writer must produce JSON (so a small model cannot break the structure), but a user
    wants to watch the answer appear, not braces and evidence numbers.
    """

    def __init__(self, keys: set[str], emit: Callable[[str, str], None]) -> None:
        self.keys = keys
        self.emit = emit
        self._in_string = False
        self._escape = False
        self._buf = ""
        self._last_string = ""
        self._expect_value_for = ""
        self._current_key = ""
        self._emitting = False

    def feed(self, text: str) -> None:
        for ch in text:
            self._step(ch)

    def _step(self, ch: str) -> None:
        if self._in_string:
            if self._escape:
                self._escape = False
                if self._emitting:
                    self.emit(self._current_key, {"n": "\n", "t": " ", '"': '"', "\\": "\\", "/": "/"}.get(ch, ""))
                else:
                    self._buf += ch
                return
            if ch == "\\":
                self._escape = True
                return
            if ch == '"':
                self._in_string = False
                if self._emitting:
                    self._emitting = False
                    self.emit(self._current_key, "\n")
                else:
                    self._last_string = self._buf
                self._expect_value_for = ""
                return
            if self._emitting:
                self.emit(self._current_key, ch)
            else:
                self._buf += ch
            return
        if ch == '"':
            self._in_string = True
            self._buf = ""
            if self._expect_value_for in self.keys:
                self._emitting = True
                self._current_key = self._expect_value_for
            return
        if ch == ":":
            self._expect_value_for = self._last_string
        elif not ch.isspace():
            self._expect_value_for = ""
