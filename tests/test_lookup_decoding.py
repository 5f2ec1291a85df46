"""Prompt-lookup decoding writes exactly what greedy decoding writes: a drafted token is kept only where greedy
decoding under the grammar picks it, and with the batch-invariant kernels (llama_loader.py) a verifying pass
computes each position's logits bit for bit as a one-token pass would. The reference is llama-cpp-python's own
grammar-constrained greedy decoding, one token per pass (on one thread, where a one-row pass is exact)."""

from __future__ import annotations

import json

import pytest

from generate.writer import report_schema
from ingest.backends.constrained_decoding import lookup_draft
from ingest.backends.llama_cpp_generator import LlamaCppGenerator
from ingest.backends.llama_loader import INVARIANT_BATCH, load_llama
from ingest.core.model_resolver import ModelResolver


@pytest.mark.unit
def test_a_draft_is_what_followed_the_latest_earlier_match() -> None:
    history = [1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3]
    assert lookup_draft(history, max_ngram=3, max_draft=2) == [7, 8]  # the latest earlier "1 2 3"
    assert lookup_draft([4, 5, 6, 4, 5], max_ngram=3, max_draft=4) == [6, 4, 5]
    assert lookup_draft([1, 2, 3, 4], max_ngram=3, max_draft=4) == []  # nothing repeats
    assert lookup_draft([5, 5], max_ngram=3, max_draft=4) == []  # too short for a 2-gram match


HARBOUR = ["The harbour of Velmora was dug by hand between 1841 and 1849 by workers from the inland valleys.",
           "Its outer breakwater, 410 metres of granite blocks, was finished in 1853 after two winter storms.",
           "A lighthouse was added at the end of the breakwater in 1887, designed by the engineer Ada Quist.",
           "The lamp burned colza oil until 1921, when the keepers converted it to electricity.",
           "Fishing boats still use the inner basin every morning, landing mostly herring and cod.",
           "The customs house on the quay was rebuilt after a fire in 1902 and now holds the town museum.",
           "Ferries to the islands leave from the north pier twice a day in summer and once in winter.",
           "The harbour master's records from 1850 to 1950 are kept in the regional archive.",
           "A storm surge in 1953 flooded the quay and damaged the old fish market beyond repair.",
           "The new fish market opened in 1958 on the site of the former rope works.",
           "Dredging keeps the entrance at a depth of six metres at low tide.",
           "Since 1994 the harbour has been managed by a trust of the town and the fishermen's guild."]

PROMPTS = [
    ("Who designed the Velmora lighthouse?",
     ["The Velmora lighthouse was designed by the engineer Ada Quist in 1887.",
      "Its lamp burned colza oil until 1921, when the keepers converted it to electricity."]),
    # long enough that the reply is decoded past the context length where one-row passes on two threads diverge
    ("When was the harbour built, and what happened to its fish market?", HARBOUR),
]


def _messages(question: str, sentences: list[str]) -> list[dict[str, str]]:
    evidence = "\n".join(f"[{i}] {s}" for i, s in enumerate(sentences, 1))
    return [{"role": "system", "content": "Answer from the numbered evidence. Reply with JSON only."},
            {"role": "user", "content": f"Evidence:\n{evidence}\n\nQuestion: {question}"}]


def test_lookup_decoding_writes_exactly_what_one_token_greedy_decoding_writes() -> None:
    from llama_cpp import LlamaGrammar

    path = ModelResolver().gguf_path("qwen2.5-coder-0.5b-instruct")
    plain = LlamaCppGenerator(path, n_ctx=2048, lookup_draft=0, batch_invariant=True)
    lookup = LlamaCppGenerator(path, n_ctx=2048, lookup_draft=32, batch_invariant=True)
    assert lookup.lookup_draft == INVARIANT_BATCH - 1  # capped to what the kernels keep exact
    reference = load_llama(path, n_ctx=2048, threads=1, threads_batch=2, n_batch=256, seed=0)
    accepted = 0
    try:
        for question, sentences in PROMPTS:
            messages = _messages(question, sentences)
            schema = report_schema(len(sentences), 2)
            tokens = plain.prompt_tokens(messages)
            reference.reset()
            expected = reference.create_completion(
                tokens, max_tokens=64, temperature=0.0, repeat_penalty=1.0,
                grammar=LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False))["choices"][0]["text"]
            for generator in (plain, lookup):
                generator.reset()  # a cold cache, as the reference has
                done = generator.chat(messages, schema=schema, max_tokens=64)
                assert done.text == expected, (generator.lookup_draft, done.text, expected)
                assert done.prompt_tokens == len(tokens)
                accepted += done.accepted_tokens
    finally:
        reference.close()
    assert accepted > 0  # the drafts were used, not only checked
    assert len(plain.prompt_tokens(_messages(*PROMPTS[-1]))) > 300
