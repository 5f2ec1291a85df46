"""Writer speed benchmark: prefill and decode tokens/s of the writer's real prompt under llama.cpp settings.

A report's time is mostly the writer's prefill and decode. This builds the writer prompt a report would
send (the research loop's search and evidence on an index, for one question), then times a cold prefill
and a greedy decode with each `n_batch`, thread and kernel setting, alternating configurations round by
round so a noisy machine slows them alike. Ratios are against the shipped setting (n_batch 256, every core
for both phases, repacked weights without flash attention), measured in the same process. Decode here is
one token per pass; prompt lookup's passes are measured in reports (`citewise-exact`).

    citewise eval bench-writer --index DIR --question "..." [--rounds 2] [--max-tokens 48] [--vary all]
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from generate.engine import Engine
from generate.events import ignore
from generate.task import Task
from eval.environment import environment
from ingest.core.settings import Settings


@dataclass(frozen=True)
class LlamaSetting:
    """One llama.cpp configuration: batch size of a prefill step, threads for decode and for prefill, and
    whether the kernels are the batch-invariant ones (see ingest/backends/llama_loader.py)."""

    n_batch: int
    threads: int
    threads_batch: int
    flash_attn: bool = False
    repack: bool = True

    @property
    def name(self) -> str:
        kernels = f"{'' if self.flash_attn else ' no'} flash attention{', repacked weights' if self.repack else ''}"
        return f"n_batch={self.n_batch} threads={self.threads} threads_batch={self.threads_batch},{kernels}"


#: Which of the shipped setting's knobs a run changes: each model load and prefill costs seconds, so a question
#: about one knob need not pay for the others.
Vary = Literal["all", "kernels", "batch", "threads"]


def settings_to_try(cores: int, vary: Vary = "all") -> list[LlamaSetting]:
    """The shipped setting first, then one change at a time from it (of the knobs `vary` names)."""
    base = LlamaSetting(256, cores, cores)
    # the batch-invariant kernels (models.batch_invariant), and each of their two changes alone
    kernels = [LlamaSetting(256, cores, cores, flash_attn=f, repack=r) for f, r in ((True, False), (True, True),
                                                                                   (False, False))]
    batch = [LlamaSetting(b, cores, cores) for b in (64, 128, 512)]
    threads = [LlamaSetting(256, cores - 1, cores), LlamaSetting(256, cores, cores - 1)] if cores > 1 else []
    chosen = {"kernels": kernels, "batch": batch, "threads": threads}
    return [base, *(t for knob, ts in chosen.items() if vary in ("all", knob) for t in ts)]


def writer_messages(settings: Settings, index: Path, question: str) -> tuple[list[dict[str, str]], int]:
    """The messages the writer would get for `question` on `index`, and how many evidence sentences."""
    engine = Engine(settings)
    with engine.open_index(index) as ix:
        researcher = engine.researcher(ix)
        found = researcher.gatherer.gather(question, settings.research, ignore, time.perf_counter())
        messages = researcher.writer.messages(question, found.evidence, Task.ANSWER)
    return [dict(m) for m in messages], len(found.evidence)


def _time_one(llm: Any, messages: list[dict[str, str]], max_tokens: int) -> dict[str, float]:
    """Cold prefill (one token generated), then a greedy decode of `max_tokens` from a cold cache."""
    llm.reset()
    t0 = time.perf_counter()
    first = llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)
    prefill_s = time.perf_counter() - t0
    llm.reset()
    t0 = time.perf_counter()
    full = llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0)
    total_s = time.perf_counter() - t0
    generated = int(full["usage"]["completion_tokens"])
    decode_s = max(total_s - prefill_s, 1e-9)
    return {"prompt_tokens": int(first["usage"]["prompt_tokens"]), "prefill_s": prefill_s,
            "prefill_tok_s": first["usage"]["prompt_tokens"] / prefill_s, "generated": generated,
            "decode_s": decode_s, "decode_tok_s": max(generated - 1, 0) / decode_s}


def bench_writer(settings: Settings, index: Path, question: str, rounds: int = 2,
                 max_tokens: int = 48, vary: Vary = "all") -> dict[str, Any]:
    from ingest.backends.llama_loader import load_llama
    from ingest.core.model_resolver import ModelResolver

    env = environment(settings)  # the commit and packages the run starts with
    messages, n_evidence = writer_messages(settings, index, question)
    model_path = ModelResolver().gguf_path(settings.models.writer)
    cores = settings.models.threads or len(os.sched_getaffinity(0))
    tried = settings_to_try(cores, vary)
    runs: dict[str, list[dict[str, float]]] = {t.name: [] for t in tried}
    for _ in range(rounds):
        for t in tried:
            llm = load_llama(model_path, n_ctx=settings.models.context_window, threads=t.threads,
                             threads_batch=t.threads_batch, n_batch=t.n_batch, seed=0,
                             flash_attn=t.flash_attn, repack=t.repack)
            try:
                runs[t.name].append(_time_one(llm, messages, max_tokens))
            finally:
                llm.close()
    rows = []
    for t in tried:
        mine = runs[t.name]
        rows.append({**asdict(t), "name": t.name,
                     **{k: statistics.median(r[k] for r in mine) for k in ("prefill_s", "prefill_tok_s",
                                                                            "decode_s", "decode_tok_s")},
                     "prompt_tokens": mine[0]["prompt_tokens"], "generated": mine[0]["generated"]})
    base = rows[0]
    for row in rows:
        row["prefill_ratio"] = row["prefill_tok_s"] / base["prefill_tok_s"]
        row["decode_ratio"] = row["decode_tok_s"] / base["decode_tok_s"]
    return {"kind": "bench-writer", "dataset": str(index), "environment": env,
            "model": settings.models.writer, "index": str(index), "question": question,
            "evidence_sentences": n_evidence, "rounds": rounds, "max_tokens": max_tokens, "cores": cores, "vary": vary,
            "load_average": os.getloadavg(), "settings": rows}


def writer_report(result: dict[str, Any]) -> str:
    lines = [f"# Writer speed: {result['model']}, {result['settings'][0]['prompt_tokens']} prompt tokens", "",
             f"The writer prompt for {result['question']!r} on {result['index']} ({result['evidence_sentences']} "
             f"evidence sentences); median of {result['rounds']} rounds; ratios against the first row, the shipped "
             f"setting; load average at the end {', '.join(f'{x:.2f}' for x in result['load_average'])}.", "",
             "| setting | prefill tok/s | ratio | decode tok/s | ratio |", "|---|---|---|---|---|"]
    for r in result["settings"]:
        lines.append(f"| {r['name']} | {r['prefill_tok_s']:.1f} | {r['prefill_ratio']:.2f} | "
                     f"{r['decode_tok_s']:.1f} | {r['decode_ratio']:.2f} |")
    return "\n".join(lines) + "\n"
