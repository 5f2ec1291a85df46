"""Text helpers shared by every layer."""

from __future__ import annotations


def normalize_ws(text: str) -> str:
    """Runs of whitespace (newlines included) as one space: how quotes and statements are compared."""
    return " ".join(text.split())
