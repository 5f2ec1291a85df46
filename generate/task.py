"""What a report is asked to do with its question."""

from __future__ import annotations

from enum import Enum


class Task(str, Enum):
    """ANSWER a question, or CHECK a claim (the report then carries a verdict)."""

    ANSWER = "answer"
    CHECK = "check"
