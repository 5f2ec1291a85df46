"""Greedy decoding held to a grammar, with optional prompt-lookup drafting.

Two costs dominate constrained decoding on a CPU. llama-cpp-python applies a grammar to the whole
151k-token vocabulary at every step; the greedy choice is almost always among the best few logits, so
those are checked first and the whole vocabulary only when none of them fits. And every token is one
forward pass, bound by reading the weights; a report's statements mostly restate evidence sentences
that are in the prompt, so the next few tokens can often be guessed by finding the last few generated
tokens earlier in the prompt (prompt lookup). The guess is verified in one batched pass: each drafted
token is kept only while it is exactly the token greedy decoding under the grammar picks at that
position, so a draft the grammar rejects ends there, and the output is the greedy output, bit for bit
when the model was loaded with batch-invariant kernels (llama_loader.py): then every pass holds between
2 and INVARIANT_BATCH rows, a pass with nothing to draft being padded with one row whose result is
dropped, because a one-row pass on several threads splits attention differently.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass
from typing import Any, Callable

from ingest.core.errors import GenerationError

#: Candidates checked against the grammar before falling back to the whole vocabulary.
TOP_CANDIDATES = 48


@dataclass
class Decoded:
    """What one constrained call produced, with its own accounting (batched drafts would confuse
    llama.cpp's counters, which call any multi-token pass prompt evaluation)."""

    text: str
    finish: str
    generated: int
    prefill_s: float
    decode_s: float
    cached: int = 0  # prompt tokens whose key-value state was kept from the previous call
    drafted: int = 0
    accepted: int = 0


def grammar_pick(sampler: Any, logits: Any, k: int) -> int | None:
    """The highest-logit token among the top k that the grammar accepts, or None."""
    import llama_cpp
    import numpy as np

    n = logits.shape[0]
    ids = np.arange(n) if k >= n else np.argpartition(-logits, k)[:k]
    ids = ids[np.argsort(-logits[ids], kind="stable")]
    data = (llama_cpp.llama_token_data * len(ids))()
    view = np.ctypeslib.as_array(data)
    view["id"] = ids
    view["logit"] = logits[ids]
    view["p"] = 0.0
    arr = llama_cpp.llama_token_data_array(data=data, size=len(ids), selected=-1, sorted=True)
    llama_cpp.llama_sampler_apply(sampler, llama_cpp.ctypes.byref(arr))
    allowed = np.isfinite(view["logit"][: arr.size])
    if not allowed.any():
        return None
    return int(view["id"][: arr.size][allowed.argmax()])


def lookup_draft(history: list[int], max_ngram: int, max_draft: int, min_ngram: int = 2) -> list[int]:
    """The tokens that followed the latest earlier occurrence of the history's last n tokens (n from
    `max_ngram` down to `min_ngram`), at most `max_draft` of them; empty when nothing matches."""
    size = len(history)
    for n in range(min(max_ngram, size - 1), min_ngram - 1, -1):
        tail = history[size - n:]
        for start in range(size - n - 1, -1, -1):
            if history[start:start + n] == tail:
                follow = history[start + n:start + n + max_draft]
                if follow:
                    return follow
    return []


class ConstrainedDecoder:
    """Decodes one reply for a loaded llama-cpp-python `Llama`, the caller holding the model's lock.

    `max_draft` 0 turns prompt lookup off (one new token per forward pass). `min_rows` 2 pads a pass that
    would hold one row (see the module docstring).
    """

    def __init__(self, llm: Any, max_draft: int = 8, max_ngram: int = 3, min_rows: int = 1) -> None:
        self.llm = llm
        self.max_draft = max_draft
        self.max_ngram = max_ngram
        self.min_rows = min_rows

    def decode(self, tokens: list[int], grammar: Any, max_tokens: int,
               on_text: Callable[[str], None] | None) -> Decoded:
        import llama_cpp
        import numpy as np

        llm = self.llm
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar._grammar.encode("utf-8"),
                                                       grammar._root.encode("utf-8"))
        if not sampler:
            raise GenerationError("the JSON schema could not be turned into a grammar")
        n_vocab = llm.n_vocab()
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        parts: list[str] = []
        out = Decoded(text="", finish="length", generated=0, prefill_s=0.0, decode_s=0.0)

        def logits(i: int) -> Any:
            return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i), shape=(n_vocab,))

        def pick(row: Any) -> int:
            token = grammar_pick(sampler, row, TOP_CANDIDATES)
            if token is None:
                token = grammar_pick(sampler, row, n_vocab)
            if token is None:
                raise GenerationError("the grammar allows no next token")
            return token

        def take(token: int) -> None:
            llama_cpp.llama_sampler_accept(sampler, token)
            piece = decoder.decode(llm.detokenize([token]))
            if piece:
                parts.append(piece)
                if on_text:
                    on_text(piece)
            history.append(token)
            out.generated += 1

        history = list(tokens)
        try:
            started = time.perf_counter()
            # at least `min_rows` prompt tokens are evaluated, so the first pick is not a one-row pass either
            keep = max(0, min(llm.longest_token_prefix(llm._input_ids.tolist(), tokens), len(tokens) - self.min_rows))
            llm.n_tokens = keep
            llm.eval(tokens[keep:])
            out.cached = keep
            out.prefill_s = time.perf_counter() - started
            started = time.perf_counter()
            row = logits(-1)
            while out.generated < max_tokens:
                token = pick(row)
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    out.finish = "stop"
                    break
                take(token)
                room = max_tokens - out.generated
                draft = lookup_draft(history, self.max_ngram, min(self.max_draft, room)) if self.max_draft else []
                if not room:
                    break
                pad = [token] * max(0, self.min_rows - 1 - len(draft))  # rows whose result is never used
                j = self._verify(llm, [token, *draft, *pad], draft, pick, take, logits, vocab, out)
                if out.finish == "stop":
                    break
                row = logits(j)
            out.decode_s = time.perf_counter() - started
        finally:
            llama_cpp.llama_sampler_free(sampler)
        out.text = "".join(parts) + decoder.decode(b"", final=True)
        return out

    @staticmethod
    def _verify(llm: Any, batch: list[int], draft: list[int], pick: Callable[[Any], int],
                take: Callable[[int], None], logits: Callable[[int], Any], vocab: Any, out: Decoded) -> int:
        """Evaluate the last taken token, its draft and any padding in one pass; keep the draft while greedy
        agrees.

        Returns the batch position whose logits predict the next token. The key-value cache keeps only
        what was taken: the rejected tail (and the padding) is dropped before the next pass writes over it.
        """
        import llama_cpp

        n_past = llm.n_tokens
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llm._batch.set_batch(batch=batch, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past:n_past + len(batch)] = batch
        out.drafted += len(draft)
        j = 0
        while j < len(draft):
            token = pick(logits(j))
            if token != draft[j]:
                break
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                out.finish = "stop"
                break
            take(token)
            out.accepted += 1
            j += 1
        llm.n_tokens = n_past + 1 + j
        return j
