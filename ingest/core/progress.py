"""Progress reporting seam: the pipeline reports stages, the interface decides how to show them."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives stage progress; calling `stage` again updates a total that grows as work is found."""

    def stage(self, name: str, total: int | None) -> None: ...

    def advance(self, name: str, n: int = 1) -> None: ...

    def log(self, message: str) -> None: ...


class NullProgress:
    """Reports nothing (--quiet, tests, library use)."""

    def stage(self, name: str, total: int | None) -> None:
        pass

    def advance(self, name: str, n: int = 1) -> None:
        pass

    def log(self, message: str) -> None:
        pass
