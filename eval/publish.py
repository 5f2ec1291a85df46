"""Keep a run's report in the repository: a dated, commit-stamped copy of its report.md under eval/reports/.

The copy starts with where the figures came from (command, commit, machine, load), so a reader can
tell what a number was measured on and re-run it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from eval.run_folder import load_results
from ingest.core.errors import InvalidRequestError

REPORTS = Path(__file__).resolve().parent / "reports"


def publish(run_dir: Path, to: Path = REPORTS, note: str = "") -> Path:
    """Copy `run_dir`'s report.md to `to` as YYYY-MM-DD-KIND-DATASET-COMMIT.md, headed by its provenance."""
    report = run_dir / "report.md"
    if not report.is_file():
        raise InvalidRequestError(f"{run_dir} is not an eval run folder (no report.md)")
    results: dict[str, Any] = load_results(run_dir) if (run_dir / "results.json").is_file() else {}
    env = results.get("environment") or {}
    commit = str(env.get("git_commit") or "unknown")
    stamp = _run_date(run_dir)
    kind = str(results.get("kind") or _kind(run_dir))
    dataset = Path(str(results.get("dataset") or results.get("folder") or results.get("index") or "run")).name
    name = f"{stamp}-{kind}-{_slug(dataset)}-{commit[:7]}.md"
    machine = env.get("machine") or {}
    lines = [f"<!-- published from {run_dir.name} -->", "",
             f"- Measured: {stamp}, at commit `{commit}`",
             f"- Command: `{env.get('command') or 'citewise eval ' + kind}`",
             f"- Machine: {machine.get('cpu', 'unknown')}, {machine.get('cores', '?')} cores, "
             f"{machine.get('memory_gb', '?')} GB; Python {machine.get('python', '?')}"]
    if note:
        lines.append(f"- Note: {note}")
    to.mkdir(parents=True, exist_ok=True)
    target = _free_name(to, name, lines[0])
    target.write_text("\n".join(lines) + "\n\n" + report.read_text())
    return target


def _free_name(to: Path, name: str, header: str) -> Path:
    """`name`, or `name` with -2, -3, ... when another run's report already has it (two runs of one kind on one
    dataset and commit, such as a benchmark of two models); publishing the same run again replaces its file."""
    stem, n = name[: -len(".md")], 1
    target = to / name
    while target.exists() and target.read_text().split("\n", 1)[0] != header:
        n += 1
        target = to / f"{stem}-{n}.md"
    return target


def _run_date(run_dir: Path) -> str:
    match = re.match(r"(\d{4})(\d{2})(\d{2})-", run_dir.name)
    if match:
        return "-".join(match.groups())
    return time.strftime("%Y-%m-%d", time.localtime(run_dir.stat().st_mtime))


def _kind(run_dir: Path) -> str:
    parts = run_dir.name.split("-")
    return parts[2] if len(parts) > 2 else "run"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "run"
