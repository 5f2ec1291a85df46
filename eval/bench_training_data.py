"""Training-data benchmark: synthetic items per second and what was kept or dropped, on a copy of an index.

The data-preparation model writes questions about `chunks` sampled chunks exactly as `citewise train`
would (QuestionWriter with the [train] settings), into a copy of the index so the original is never
written. Every model call is counted (calls, tokens, seconds), and the load average is recorded at the
start and the end, since on a shared machine the seconds mean little without it.

    citewise eval bench-training --index DIR --chunks 20 [--model-server URL]

With a model server, the same chunks are written again through it (models.backend = openai), in the same
process right after the embedded run, and the report gives the ratio of items per second.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from generate.engine import Engine
from eval.environment import environment
from ingest.core.generator import Completion, Generator, Message, Usage
from ingest.core.settings import Settings
from retrieval.training.item_store import ItemStore
from retrieval.training.question_writer import QuestionWriter


class _Counted:
    """The model with every call added to `usage` (chat and yes/no apart), as the writer sees it."""

    def __init__(self, model: Generator) -> None:
        self.model = model
        self.name = model.name
        self.chat_usage = Usage()
        self.judge_usage = Usage()

    def chat(self, messages: list[Message], *, schema: dict[str, Any] | None = None, max_tokens: int = 256,
             stop: list[str] | None = None, on_text: Callable[[str], None] | None = None) -> Completion:
        done = self.model.chat(messages, schema=schema, max_tokens=max_tokens, stop=stop, on_text=on_text)
        self.chat_usage.add(done)
        return done

    def yes_probability(self, messages: list[Message], yes: str = "yes", no: str = "no") -> tuple[float, Completion]:
        p, done = self.model.yes_probability(messages, yes, no)
        self.judge_usage.add(done)
        return p, done

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def warm_up(self) -> None:
        self.model.warm_up()


def bench_training_data(index: Path, settings: Settings, chunks: int, work: Path,
                        max_tokens: int = 200) -> dict[str, Any]:
    """Items written for `chunks` chunks of a copy of `index` under `work`, with counts and timings."""
    copy = Path(work) / "index"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(index, copy, ignore=shutil.ignore_patterns("training", "*.lock", "lock"))
    engine = Engine(settings)
    model = _Counted(engine.fast_model)
    load_start = os.getloadavg()
    started = time.perf_counter()
    model.warm_up()
    load_s = time.perf_counter() - started
    writer = QuestionWriter(model, settings.train, max_tokens=max_tokens)  # type: ignore[arg-type]
    with engine.open_index(copy) as ix, ItemStore.for_index(copy) as store:
        summary = writer.write(ix, store, fresh=True, n=chunks)
    items = ItemStore.for_index(copy).items()
    return {
        "index": str(index), "model": model.name, "threads": settings.models.threads or os.cpu_count(),
        "train_settings": settings.train.model_dump(), "max_tokens": max_tokens, "model_load_s": round(load_s, 2),
        "summary": summary.to_dict(),
        "items_per_s": round(summary.items / summary.seconds, 4) if summary.seconds else None,
        "chunks_per_s": round(summary.chunks_done / summary.seconds, 4) if summary.seconds else None,
        "chat": {**model.chat_usage.__dict__}, "judge": {**model.judge_usage.__dict__},
        "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "examples": [it.to_json() for it in items[:6]], "items_file": str(store.items_path),
    }


def bench_backends(index: Path, settings: Settings, chunks: int, work: Path, model_server: str | None = None,
                   max_tokens: int = 200) -> dict[str, Any]:
    """The embedded data-preparation model, then (with `model_server`) the same chunks through the server."""
    runs = {"embedded": bench_training_data(index, settings, chunks, Path(work) / "embedded", max_tokens)}
    if model_server:
        served = settings.model_copy(deep=True)
        served.models.backend = "openai"
        served.models.base_url = model_server
        runs["server"] = bench_training_data(index, served, chunks, Path(work) / "server", max_tokens)
    return {"index": str(index), "chunks": chunks, "model_server": model_server, "runs": runs,
            "environment": environment(settings)}


def training_data_report(result: dict[str, Any]) -> str:
    base = result["runs"]["embedded"]["items_per_s"] or 0.0
    lines = [f"# Synthetic training data: {result['chunks']} chunks of {result['index']}", "",
             "| backend | model | items | answerable | near misses | dropped | seconds | items/s | chunks/s | "
             "ratio | load avg (start, end) |", "|---" * 11 + "|"]
    for name, r in result["runs"].items():
        sm = r["summary"]
        ratio = f"{r['items_per_s'] / base:.2f}" if base and r["items_per_s"] else "–"
        lines.append(f"| {name} | {r['model']} | {sm['items']} | {sm['answerable']} | {sm['unanswerable']} | "
                     f"{sum(sm['dropped'].values())} | {sm['seconds']} | {r['items_per_s']} | {r['chunks_per_s']} | "
                     f"{ratio} | {r['load_average_start'][0]:.2f}, {r['load_average_end'][0]:.2f} |")
    if result.get("model_server"):
        lines += ["", f"Server: {result['model_server']}, run right after the embedded one in the same process; "
                  "its speed is the server machine's, not this one's."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--work", type=Path, default=None, help="where the copy is made (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-training-data-"))
    print(json.dumps(bench_training_data(args.index, Settings(), args.chunks, work, args.max_tokens), indent=1,
                     default=str))


if __name__ == "__main__":
    main()
