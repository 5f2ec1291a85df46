"""The paired comparison under every reports table: a difference's interval, read item by item."""

from __future__ import annotations

from typing import Any

import pytest

from eval.paired import paired_intervals, paired_lines

pytestmark = pytest.mark.unit


def share(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {"correct": sum(r["ok"] for r in rows) / max(len(rows), 1)}


def rows(system: str, oks: list[bool], prefix: str = "q") -> list[dict[str, Any]]:
    return [{"system": system, "query_id": f"{prefix}{i}", "ok": ok} for i, ok in enumerate(oks)]


def test_identical_systems_differ_by_nothing_with_certainty() -> None:
    same = [True, False] * 20
    got = paired_intervals(rows("a", same) + rows("b", same), "a", ["b"], share, ["correct"])
    assert got["b"]["correct"] == {"difference": 0.0, "low": 0.0, "high": 0.0, "items": 40.0}


def test_one_item_in_forty_is_an_interval_around_zero_and_every_item_is_not() -> None:
    base = [True] * 40
    one = paired_intervals(rows("a", base) + rows("b", [False] + [True] * 39), "a", ["b"], share, ["correct"])
    assert one["b"]["correct"]["difference"] == pytest.approx(-0.025)
    assert one["b"]["correct"]["low"] < 0 and one["b"]["correct"]["high"] == 0.0
    half = paired_intervals(rows("a", base) + rows("b", [False, True] * 20), "a", ["b"], share, ["correct"])
    assert half["b"]["correct"]["difference"] == pytest.approx(-0.5)
    assert half["b"]["correct"]["high"] < -0.3  # far from zero: a measured difference


def test_only_items_both_systems_answered_are_paired_and_seeded_draws_repeat() -> None:
    mixed = rows("a", [True] * 10) + rows("b", [True] * 10) + rows("b", [False] * 5, prefix="only-b")
    got = paired_intervals(mixed, "a", ["b"], share, ["correct", "absent"])
    assert got["b"]["correct"]["items"] == 10 and got["b"]["correct"]["difference"] == 0.0
    assert "absent" not in got["b"]  # a metric the aggregate does not give is left out, not zero
    again = paired_intervals(rows("a", [True, False] * 10) + rows("b", [False, True] * 10), "a", ["b"], share,
                             ["correct"])
    assert again == paired_intervals(rows("a", [True, False] * 10) + rows("b", [False, True] * 10), "a", ["b"],
                                     share, ["correct"])
    assert paired_intervals(rows("a", [True]), "a", ["c"], share, ["correct"]) == {}


def test_the_table_names_the_baseline_and_the_interval() -> None:
    got = paired_intervals(rows("a", [True] * 10) + rows("b", [False] * 10), "a", ["b"], share, ["correct"])
    text = "\n".join(paired_lines(got, "a"))
    assert "Paired against a" in text and "| b | correct | 10 | -1.000 | -1.000 to -1.000 |" in text
    assert paired_lines({}, "a") == []


def test_a_metric_undefined_on_a_draw_is_missing_there_not_an_error() -> None:
    def auc_like(rs: list[dict[str, Any]]) -> dict[str, float | None]:
        kinds = {r["ok"] for r in rs}
        return {"auc": 0.5 if len(kinds) == 2 else None}

    got = paired_intervals(rows("a", [True, False]) + rows("b", [True, False]), "a", ["b"], auc_like, ["auc"])
    assert got["b"]["auc"]["difference"] == 0.0
