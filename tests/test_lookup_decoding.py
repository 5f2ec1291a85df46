"""Prompt-lookup decoding writes exactly what greedy decoding writes: a drafted token is kept only where greedy
decoding under the grammar picks it, and the batch-invariant kernels (llama_loader.py) make a verifying pass
compute each position's logits bit for bit as a one-token pass would."""

from __future__ import annotations

import json

import pytest

from generate.writer import report_schema
from ingest.backends.constrained_decoding import lookup_draft
from ingest.backends.llama_cpp_generator import LlamaCppGenerator
from ingest.backends.llama_loader import INVARIANT_BATCH
from ingest.core.model_resolver import ModelResolver


@pytest.mark.unit
def test_a_draft_is_what_followed_the_latest_earlier_match() -> None:
    history = [1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3]
    assert lookup_draft(history, max_ngram=3, max_draft=2) == [7, 8]  # the latest earlier "1 2 3"
    assert lookup_draft([4, 5, 6, 4, 5], max_ngram=3, max_draft=4) == [6, 4, 5]
    assert lookup_draft([1, 2, 3, 4], max_ngram=3, max_draft=4) == []  # nothing repeats
    assert lookup_draft([5, 5], max_ngram=3, max_draft=4) == []  # too short for a 2-gram match


PROMPTS = [
    ("Who designed the Velmora lighthouse?",
     ["The Velmora lighthouse was designed by the engineer Ada Quist in 1887.",
      "Its lamp burned colza oil until 1921, when the keepers converted it to electricity."]),
    ("What is the walrus operator?",
     ["This is a proposal for creating a way to assign to variables within an expression using the notation "
      "NAME := expr.", "During discussion of this PEP, the operator became informally known as the walrus operator."]),
    ("How tall is the tower?", ["The tower is 31 metres tall and its light can be seen from 40 kilometres away."]),
]


def test_lookup_decoding_writes_exactly_what_plain_greedy_decoding_writes() -> None:
    path = ModelResolver().gguf_path("qwen2.5-coder-0.5b-instruct")
    plain = LlamaCppGenerator(path, n_ctx=2048, lookup_draft=0)
    lookup = LlamaCppGenerator(path, n_ctx=2048, lookup_draft=32)
    assert lookup.lookup_draft == INVARIANT_BATCH - 1  # capped to what the kernels keep exact
    accepted = 0
    for question, sentences in PROMPTS:
        evidence = "\n".join(f"[{i}] {s}" for i, s in enumerate(sentences, 1))
        messages = [{"role": "system", "content": "Answer from the numbered evidence. Reply with JSON only."},
                    {"role": "user", "content": f"Evidence:\n{evidence}\n\nQuestion: {question}"}]
        schema = report_schema(len(sentences), 2)
        a = plain.chat(messages, schema=schema, max_tokens=96)
        b = lookup.chat(messages, schema=schema, max_tokens=96)
        assert b.text == a.text
        assert b.completion_tokens == a.completion_tokens
        json.loads(b.text)
        assert a.drafted_tokens == 0
        accepted += b.accepted_tokens
    assert accepted > 0  # the drafts were used, not only checked
