"""Differences between two results folders, metric by metric."""

from __future__ import annotations

from pathlib import Path

from eval.run_folder import load_results


def compare_runs(a: Path, b: Path) -> str:
    ra, rb = load_results(a), load_results(b)
    lines = [f"A: {a} ({ra['environment']['git_commit']})", f"B: {b} ({rb['environment']['git_commit']})", "",
             "| system | metric | A | B | B - A |", "|---|---|---|---|---|"]
    for system in [s for s in ra["metrics"] if s in rb["metrics"]]:
        for metric in [m for m in ra["metrics"][system] if m in rb["metrics"][system]]:
            va, vb = ra["metrics"][system][metric], rb["metrics"][system][metric]
            lines.append(f"| {system} | {metric} | {va:.4f} | {vb:.4f} | {vb - va:+.4f} |")
    only = sorted(set(ra["metrics"]) ^ set(rb["metrics"]))
    if only:
        lines += ["", "systems in only one run: " + ", ".join(only)]
    settings_a, settings_b = ra["environment"]["settings"], rb["environment"]["settings"]
    changed = [f"{sec}.{k}: {settings_a[sec].get(k)!r} -> {settings_b[sec].get(k)!r}"
               for sec in settings_a for k in settings_a[sec] if settings_a[sec].get(k) != settings_b.get(sec, {}).get(k)]
    if changed:
        lines += ["", "settings changed: " + "; ".join(changed)]
    return "\n".join(lines)
