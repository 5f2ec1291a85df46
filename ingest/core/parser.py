"""What the ingest pipeline needs from a parser, so in-process and pooled (or remote) parsing are swappable."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Protocol

from ingest.core.errors import DocumentError
from ingest.core.types import ParsedDocument


class Parser(Protocol):
    """Turns file bytes into a ParsedDocument; `parse_many` streams results in input order."""

    def parse(self, source: str, data: bytes, fmt: str) -> ParsedDocument: ...

    def use_temp_dir(self, path: Path) -> None:
        """Where temporary copies of documents go (under the index, so none outlive a killed run elsewhere)."""
        ...

    def parse_many(
        self, jobs: Iterable[tuple[str, bytes, str]]
    ) -> Iterator[tuple[str, ParsedDocument | DocumentError]]: ...

    def close(self) -> None: ...
