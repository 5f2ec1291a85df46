"""The batch-invariant kernels on the installed llama.cpp: passes of 2 to INVARIANT_BATCH rows on two threads give
every position the logits llama.cpp's one-token passes on one thread give it, bit for bit, also past the context
length where a one-row pass on two threads splits attention differently. Prompt-lookup decoding's exactness
(constrained_decoding.py) rests on it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ingest.backends.llama_loader import INVARIANT_BATCH, load_llama
from ingest.core.model_resolver import ModelResolver

FACTS = ("The Velmora lighthouse was designed by the engineer Ada Quist in 1887. Its lamp burned colza oil until "
         "1921, when the keepers converted it to electricity. ")
#: About 400 tokens of context before the positions compared: beyond where two-thread one-row passes diverge.
TEXT = FACTS * 10 + "Question: who designed it? Answer: The Velmora lighthouse was designed by the engineer Ada Quist"


def _logits_in_passes(llm: Any, prefix: list[int], rest: list[int], size: int) -> list[np.ndarray]:
    """Evaluate `prefix` from an empty cache, then `rest` in passes of `size` rows; each position's logits."""
    import llama_cpp

    llm.reset()
    llm.eval(prefix)
    out = []
    for start in range(0, len(rest), size):
        part = rest[start:start + size]
        llm._batch.set_batch(batch=part, n_past=llm.n_tokens, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.n_tokens += len(part)
        out += [np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i), shape=(llm.n_vocab(),)).copy()
                for i in range(len(part))]
    return out


def test_passes_of_two_to_the_invariant_batch_compute_what_one_token_passes_on_one_thread_compute() -> None:
    path = ModelResolver().gguf_path("qwen2.5-coder-0.5b-instruct")
    llm = load_llama(path, n_ctx=1024, threads=1, threads_batch=2, n_batch=256, seed=0)  # one-row passes: 1 thread
    try:
        tokens = llm.tokenize(TEXT.encode("utf-8"), add_bos=False)
        assert len(tokens) > 300
        prefix, rest = tokens[:-2 * INVARIANT_BATCH], tokens[-2 * INVARIANT_BATCH:]
        one_by_one = _logits_in_passes(llm, prefix, rest, 1)
        for size in (2, INVARIANT_BATCH):
            batched = _logits_in_passes(llm, prefix, rest, size)
            for position, (a, b) in enumerate(zip(one_by_one, batched)):
                assert np.array_equal(a, b), f"pass of {size}: position {position} differs by {np.abs(a - b).max()}"
    finally:
        llm.close()
