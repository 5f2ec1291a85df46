"""An evaluation's systems that differ only in verification share the writer's calls: the same prompt is written
once and replayed, any other prompt is a new call."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.shared_writes import SharedWrites
from tests.fakes import FakeGenerator, fake_researcher
from tests.test_located_citation import NORMANS, _numbers_the_wrong_sentence

pytestmark = pytest.mark.unit

ASK = [{"role": "user", "content": "Question: when?"}]


def test_the_same_call_is_replayed_and_its_seconds_counted_once() -> None:
    model = FakeGenerator(["first reply"])  # a second real call would run out of script and fail
    shared = SharedWrites(model)
    first = shared.chat(ASK, schema={"type": "object"}, max_tokens=50)
    assert shared.take_replayed_s() == 0.0
    streamed: list[str] = []
    again = shared.chat(ASK, schema={"type": "object"}, max_tokens=50, on_text=streamed.append)
    assert again.text == first.text == "first reply" and "".join(streamed) == "first reply"
    assert len(model.calls) == 1 and shared.replays == 1
    assert shared.take_replayed_s() == pytest.approx(first.total_s) and shared.take_replayed_s() == 0.0
    again.text = "changed by a caller"
    assert shared.chat(ASK, schema={"type": "object"}, max_tokens=50).text == "first reply"


@pytest.mark.parametrize("change", [{"messages": [{"role": "user", "content": "Question: why?"}]},
                                    {"schema": None}, {"max_tokens": 51}, {"stop": ["\n"]}])
def test_any_other_call_reaches_the_model(change: dict[str, object]) -> None:
    model = FakeGenerator(reply="text")
    shared = SharedWrites(model)
    call: dict[str, object] = {"messages": ASK, "schema": {"type": "object"}, "max_tokens": 50, "stop": None}
    shared.chat(**call)  # type: ignore[arg-type]
    shared.chat(**{**call, **change})  # type: ignore[arg-type]
    assert len(model.calls) == 2 and shared.replays == 0


def test_two_research_loops_judge_one_draft_each_their_own_way() -> None:
    writer_only, _, model = fake_researcher(NORMANS, [_numbers_the_wrong_sentence], max_rounds=1,
                                            citation_choice="writer", relevance_floor=0.2, support_similarity=0.3,
                                            enough_similarity=0.2)
    located, _, _ = fake_researcher(NORMANS, [], max_rounds=1, citation_choice="specifics",
                                    relevance_floor=0.2, support_similarity=0.3, enough_similarity=0.2)
    shared = SharedWrites(model)
    writer_only.writer.model = located.writer.model = shared
    question = "When was the name of the Normans first recorded in Latin?"
    declined, answered = writer_only.run(question), located.run(question)
    assert len(model.calls) == 1 and shared.replays == 1  # the second loop's writer was never called
    assert not declined.answered and answered.answered
    assert [c.located for st in answered.statements for c in st.citations] == [True]


def test_kept_drafts_are_replayed_by_a_resumed_run_and_a_cut_line_costs_only_its_call(tmp_path: Path) -> None:
    store = tmp_path / "writes.jsonl"
    first = SharedWrites(FakeGenerator(["kept reply", "second reply"], name="writer"))
    first.keep_in(store)
    first.chat(ASK, max_tokens=50)
    first.chat(ASK, max_tokens=60)
    with store.open("a") as fh:
        fh.write('{"key": "cut sho')  # a process killed while writing a record
    resumed = SharedWrites(FakeGenerator(["written again"], name="writer"))
    resumed.keep_in(store)
    assert resumed.chat(ASK, max_tokens=50).text == "kept reply" and resumed.replays == 1
    assert resumed.chat(ASK, max_tokens=60).text == "second reply"
    assert resumed.chat(ASK, max_tokens=70).text == "written again"  # a new call, appended on its own line
    again = SharedWrites(FakeGenerator([], name="writer"))
    again.keep_in(store)
    assert again.chat(ASK, max_tokens=70).text == "written again"
    other = SharedWrites(FakeGenerator(["another model's text"], name="other-writer"))
    other.keep_in(store)
    assert other.chat(ASK, max_tokens=50).text == "another model's text"  # another model never replays a draft
