"""Per-stage progress bars on stderr (counts, rate and ETA), for the CLI."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn,
                           TimeRemainingColumn)
from rich.text import Text

from ingest.console.text import dim


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:7.1f}/s" if task.speed else "        ")


class RichProgress:
    """Implements ingest.progress.Progress with one rich bar per stage."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._bars = Progress(
            TextColumn("{task.description:>8}", markup=False), BarColumn(), MofNCompleteColumn(), _RateColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.console,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bars.stop()

    def stage(self, name: str, total: int | None) -> None:
        if name not in self._tasks:
            self._tasks[name] = self._bars.add_task(name, total=total)
        else:
            self._bars.update(self._tasks[name], total=total)

    def advance(self, name: str, n: int = 1) -> None:
        if name not in self._tasks:
            self.stage(name, None)
        self._bars.advance(self._tasks[name], n)

    def log(self, message: str) -> None:
        if self.console.is_terminal:
            self._bars.console.print(dim(message))  # messages name files: printed as written, not as markup
