"""Sentence offsets, the streamed-field extractor and the writer's JSON recovery."""

from __future__ import annotations

import pytest

from generate.field_stream import JsonFieldStreamer
from generate.writer import parse_draft, report_schema
from ingest.core.errors import GenerationError
from ingest.core.generator import Completion
from retrieval.sentences import sentence_spans

pytestmark = pytest.mark.unit


def test_sentence_spans_are_exact_offsets() -> None:
    text = 'Intro\n\nDr. Smith et al. found it. It rose by 3.5 %. "Quoted." Then J. Doe left!\n- item one'
    spans = sentence_spans(text)
    got = [text[s:e] for s, e in spans]
    assert got == ["Intro", "Dr. Smith et al. found it.", "It rose by 3.5 %.", '"Quoted."', "Then J. Doe left!",
                   "- item one"]
    assert sentence_spans(text, 7, 33) == [(7, 33)]


def test_streamer_emits_only_the_chosen_fields() -> None:
    out: list[str] = []
    s = JsonFieldStreamer({"answer", "text"}, lambda key, ch: out.append(ch))
    raw = '{"answerable": true, "answer": "It is \\"x\\" ok", "statements": [{"text": "A b.", "evidence": [1]}]}'
    for i in range(0, len(raw), 3):
        s.feed(raw[i:i + 3])
    assert "".join(out) == 'It is "x" ok\nA b.\n'


def test_a_reply_cut_off_by_the_token_limit_keeps_its_finished_statements() -> None:
    raw = ('{"answerable": true, "answer": "Yes.", "statements": [{"text": "One.", "evidence": [1]}, '
           '{"text": "Two is cut')
    draft = parse_draft(Completion(text=raw, finish_reason="length"), 3)
    assert draft.answerable and draft.statements == [("One.", [1])]


def test_schema_allows_only_shown_evidence_numbers_and_no_answer_without_evidence() -> None:
    schema = report_schema(3, 4)
    yes = schema["anyOf"][0]["properties"]
    assert yes["statements"]["items"]["properties"]["evidence"]["items"]["enum"] == [1, 2, 3]
    assert yes["statements"]["minItems"] == 1
    assert report_schema(0, 4)["properties"]["answerable"] == {"const": False}
    assert schema["anyOf"][1]["properties"]["statements"] == {"const": []}


def test_a_reply_cut_off_before_any_whole_statement_cites_nothing() -> None:
    draft = parse_draft(Completion(text='{"statements": [{"text": "Half a sen', finish_reason="length"), 3)
    assert not draft.answerable and draft.statements == []
    with pytest.raises(GenerationError):
        parse_draft(Completion(text='{"statements": [{"text": "Half a sen', finish_reason="stop"), 3)
