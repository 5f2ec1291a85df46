"""A results folder: rows.jsonl (checkpoint, appended per query), results.json, report.md, charts."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator


class RunFolder:
    """Writes one evaluation run; an interrupted run resumes from the rows it already wrote.

    With `commit`, every row records the commit that wrote it, and the results say when a resumed run's
    rows came from more than one: a report is stamped with the commit that finished it, which need not be
    the one that wrote most of its rows."""

    def __init__(self, path: Path, commit: str | None = None) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.commit = commit
        self.rows_before = sum(1 for _ in self.rows())

    @classmethod
    def new(cls, root: Path, kind: str, dataset: str, commit: str | None = None) -> RunFolder:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cls(Path(root) / f"{stamp}-{kind}-{dataset}", commit)

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
        if self.commit:
            row = {**row, "commit": self.commit}
        with self.rows_file.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()

    def write_results(self, results: dict[str, Any], report_md: str) -> None:
        if self.rows_before:
            by_commit = Counter(str(r.get("commit") or "not recorded")[:12] for r in self.rows())
            results = {**results, "resumed": {"rows_before": self.rows_before, "rows_by_commit": dict(by_commit)}}
            report_md = report_md.rstrip("\n") + "\n\n" + (
                f"Resumed: {self.rows_before} rows were written before this session (its seconds are the "
                "session's); rows by commit: " + ", ".join(f"{c} ({n})" for c, n in by_commit.most_common())
                + ".\n")
        (self.path / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
        (self.path / "report.md").write_text(report_md)


def load_results(path: Path) -> dict[str, Any]:
    file = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
    return json.loads(file.read_text())
