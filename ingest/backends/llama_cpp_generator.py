"""llama.cpp behind the Generator protocol: loaded lazily and once, one call at a time, greedy."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ingest.backends.constrained_decoding import ConstrainedDecoder
from ingest.backends.llama_loader import INVARIANT_BATCH, load_llama
from ingest.core.errors import GenerationError, ModelUnavailableError
from ingest.core.generator import Completion, Message

class LlamaCppGenerator:
    """A GGUF model. Temperature 0 and a fixed seed: the same prompt always gives the same text.

    A lock serialises calls because a llama.cpp context is not thread-safe. Prompts are passed as
    token lists, so llama-cpp-python keeps the KV cache of the longest prefix shared with the
    previous call: callers that put the stable part of a prompt first pay for it once.
    """

    def __init__(self, model_path: Path | Callable[[], Path], name: str = "", n_ctx: int = 4096, threads: int = 0,
                 seed: int = 0, n_batch: int = 256, lookup_draft: int = 8, lookup_ngram: int = 3,
                 batch_invariant: bool = False) -> None:
        """`model_path` may be a function that finds (or assembles) the file: it is called when the model
        loads, so building the object graph neither does that work nor fails on a model that is missing.
        `lookup_draft` tokens at most are drafted from the prompt per step of constrained decoding (0: none),
        matching the last `lookup_ngram` tokens at most (see constrained_decoding.py); `batch_invariant`
        loads the kernels with which that is exactly greedy decoding, and caps the draft to match
        (see llama_loader.py)."""
        self.lock = threading.RLock()
        self._find_path = model_path if callable(model_path) else None
        self._model_path = None if callable(model_path) else Path(model_path)
        self.name = name or self.model_path.stem
        self.n_ctx = n_ctx
        self.threads = threads
        self.seed = seed
        self.n_batch = n_batch
        self.batch_invariant = batch_invariant
        self.lookup_draft = min(lookup_draft, INVARIANT_BATCH - 1) if batch_invariant else lookup_draft
        self.lookup_ngram = lookup_ngram
        self._llm: Any = None
        self._formatter: Any = None

    @property
    def model_path(self) -> Path:
        with self.lock:
            if self._model_path is None:
                assert self._find_path is not None
                self._model_path = Path(self._find_path())
            return self._model_path

    def _load(self) -> Any:
        with self.lock:
            if self._llm is None:
                import os

                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                threads = self.threads or (os.cpu_count() or 1)
                try:
                    llm = load_llama(self.model_path, n_ctx=self.n_ctx, threads=threads, threads_batch=threads,
                                     n_batch=self.n_batch, seed=self.seed, flash_attn=self.batch_invariant,
                                     repack=not self.batch_invariant)
                except (ValueError, RuntimeError, OSError) as exc:
                    raise ModelUnavailableError(f"cannot load GGUF model {self.model_path}: {exc}") from exc
                template = llm.metadata.get("tokenizer.chat_template")
                if not template:
                    raise ModelUnavailableError(f"{self.model_path} has no chat template; use an instruct model")
                eos = llm.detokenize([llm.token_eos()]).decode("utf-8", "ignore")
                bos = llm.detokenize([llm.token_bos()]).decode("utf-8", "ignore") if llm.token_bos() >= 0 else ""
                self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                                      add_generation_prompt=True)
                self._llm = llm
            return self._llm

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        """The chat template applied and tokenized: what the model actually reads."""
        llm = self._load()
        prompt = self._formatter(messages=messages).prompt
        return llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def warm_up(self) -> None:
        """Load the model now (once), so the first request does not pay for it."""
        self._load()

    def chat(self, messages: list[Message], *, schema: dict[str, Any] | None = None, max_tokens: int = 256,
             stop: list[str] | None = None, on_text: Callable[[str], None] | None = None) -> Completion:
        """Greedy completion, held to `schema` by a grammar when given."""
        from llama_cpp import LlamaGrammar

        with self.lock:
            llm = self._load()
            tokens = self.prompt_tokens(messages)
            if len(tokens) + max_tokens > self.n_ctx:
                raise GenerationError(f"prompt of {len(tokens)} tokens plus {max_tokens} to generate exceeds "
                                      f"the {self.n_ctx}-token context of {self.name}")
            started = time.perf_counter()
            try:
                if schema is not None:
                    grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
                    decoder = ConstrainedDecoder(llm, self.lookup_draft, self.lookup_ngram,
                                                 min_rows=2 if self.batch_invariant else 1)
                    done = decoder.decode(tokens, grammar, max_tokens, on_text)
                    return Completion(
                        text=done.text, prompt_tokens=len(tokens), completion_tokens=done.generated,
                        cached_tokens=done.cached, prefill_s=done.prefill_s, decode_s=done.decode_s,
                        total_s=time.perf_counter() - started, finish_reason=done.finish,
                        drafted_tokens=done.drafted, accepted_tokens=done.accepted)
                self._perf_reset()
                text, finish = self._decode_free(llm, tokens, max_tokens, stop, on_text)
            except (ValueError, RuntimeError) as exc:
                raise GenerationError(f"{self.name} failed: {exc}") from exc
            total = time.perf_counter() - started
            perf = self._perf()
            return Completion(
                text=text, prompt_tokens=len(tokens), completion_tokens=perf["n_eval"],
                cached_tokens=max(0, len(tokens) - perf["n_p_eval"]), prefill_s=perf["t_p_eval_s"],
                decode_s=perf["t_eval_s"], total_s=total, finish_reason=finish,
            )

    @staticmethod
    def _decode_free(llm: Any, tokens: list[int], max_tokens: int, stop: list[str] | None,
                     on_text: Callable[[str], None] | None) -> tuple[str, str]:
        parts: list[str] = []
        finish = ""
        for chunk in llm.create_completion(tokens, max_tokens=max_tokens, temperature=0.0, stop=stop or [],
                                           stream=True):
            choice = chunk["choices"][0]
            piece = choice.get("text") or ""
            if piece:
                parts.append(piece)
                if on_text:
                    on_text(piece)
            finish = choice.get("finish_reason") or finish
        return "".join(parts), finish

    def yes_probability(self, messages: list[Message], yes: str = "yes", no: str = "no") -> tuple[float, Completion]:
        """P(yes) / (P(yes) + P(no)) for the reply's first token: a relevance score without decoding."""
        import llama_cpp
        import numpy as np

        with self.lock:
            llm = self._load()
            tokens = self.prompt_tokens(messages)
            if len(tokens) >= self.n_ctx:
                raise GenerationError(f"prompt of {len(tokens)} tokens exceeds the {self.n_ctx}-token context")
            self._perf_reset()
            started = time.perf_counter()
            keep = min(llm.longest_token_prefix(llm._input_ids.tolist(), tokens), len(tokens) - 1)
            llm.n_tokens = keep
            llm.eval(tokens[keep:])
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
            yes_ids = self._first_tokens(llm, yes)
            no_ids = self._first_tokens(llm, no)
            top = float(logits.max())
            p_yes = sum(math.exp(float(logits[i]) - top) for i in yes_ids)
            p_no = sum(math.exp(float(logits[i]) - top) for i in no_ids)
            total = time.perf_counter() - started
            score = p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.0
            return score, Completion(text="", prompt_tokens=len(tokens), cached_tokens=keep, prefill_s=total,
                                     total_s=total)

    @staticmethod
    def _first_tokens(llm: Any, word: str) -> set[int]:
        """First token of the word in its common spellings (`yes`, `Yes`, ` yes`)."""
        ids = set()
        for variant in (word, word.capitalize(), " " + word, " " + word.capitalize()):
            toks = llm.tokenize(variant.encode("utf-8"), add_bos=False, special=False)
            if toks:
                ids.add(toks[0])
        return ids

    def _perf_reset(self) -> None:
        import llama_cpp

        llama_cpp.llama_perf_context_reset(self._llm.ctx)

    def _perf(self) -> dict[str, Any]:
        import llama_cpp

        data = llama_cpp.llama_perf_context(self._llm.ctx)
        return {"n_p_eval": int(data.n_p_eval), "n_eval": int(data.n_eval),
                "t_p_eval_s": data.t_p_eval_ms / 1000.0, "t_eval_s": data.t_eval_ms / 1000.0}

    def reset(self) -> None:
        """Drop the KV cache of the previous prompt: the next call evaluates its whole prompt again (for
        benchmarks of what prefix reuse saves; not part of the Generator protocol)."""
        with self.lock:
            if self._llm is not None:
                self._llm.reset()

    def close(self) -> None:
        with self.lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
