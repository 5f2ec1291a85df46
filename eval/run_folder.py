"""A results folder: rows.jsonl (checkpoint, appended per query), results.json, report.md, charts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator


class RunFolder:
    """Writes one evaluation run; an interrupted run resumes from the rows it already wrote."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @classmethod
    def new(cls, root: Path, kind: str, dataset: str) -> RunFolder:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cls(Path(root) / f"{stamp}-{kind}-{dataset}")

    @property
    def rows_file(self) -> Path:
        return self.path / "rows.jsonl"

    def rows(self) -> Iterator[dict[str, Any]]:
        if self.rows_file.exists():
            with self.rows_file.open() as fh:
                for line in fh:
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except json.JSONDecodeError:  # a row cut short by an interruption
                            continue

    def done(self) -> set[tuple[str, str]]:
        return {(r["system"], r["query_id"]) for r in self.rows()}

    def append(self, row: dict[str, Any]) -> None:
        with self.rows_file.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()

    def write_results(self, results: dict[str, Any], report_md: str) -> None:
        (self.path / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
        (self.path / "report.md").write_text(report_md)


def load_results(path: Path) -> dict[str, Any]:
    file = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
    return json.loads(file.read_text())
