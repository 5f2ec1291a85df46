"""The baseline citewise is measured against: retrieve top-k chunks, stuff them into one prompt,
ask the same writer model for an answer with [n] citations, in free text."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from ingest.core.generator import Completion, Generator
from retrieval.searcher import Searcher
from retrieval.stages import SearchHit

SYSTEM = ("Answer the question using only the numbered passages. After each sentence, cite the passages "
          "it relies on as [n]. If the passages do not answer the question, say so.")
CHECK_SYSTEM = ("Decide whether the numbered passages support or contradict the claim. Start with 'Supports', "
                "'Contradicts' or 'Not enough evidence', explain briefly, and cite the passages as [n] after each "
                "sentence.")


@dataclass
class BaselineAnswer:
    answer: str
    hits: list[SearchHit]
    cited: list[SearchHit]
    completion: Completion
    search_s: float
    verdict: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class StuffedBaseline:
    """What most RAG tutorials build; same retriever, same model, no evidence selection or checks."""

    def __init__(self, searcher: Searcher, model: Generator, k: int = 5, max_tokens: int = 300) -> None:
        self.searcher = searcher
        self.model = model
        self.k = k
        self.max_tokens = max_tokens

    def run(self, question: str, task: str = "answer") -> BaselineAnswer:
        t0 = time.perf_counter()
        hits = self.searcher.search(question, self.k, "hybrid")
        search_s = time.perf_counter() - t0
        passages = "\n\n".join(f"[{i}] {h.chunk.title}\n{h.chunk.text}" for i, h in enumerate(hits, 1))
        label = "Question" if task == "answer" else "Claim"
        messages = [{"role": "system", "content": SYSTEM if task == "answer" else CHECK_SYSTEM},
                    {"role": "user", "content": f"Passages:\n{passages}\n\n{label}: {question}"}]
        completion = self.model.chat(messages, max_tokens=self.max_tokens)
        numbers = sorted({int(n) for n in re.findall(r"\[(\d+)\]", completion.text)})
        cited = [hits[n - 1] for n in numbers if 1 <= n <= len(hits)]
        verdict = None
        if task == "check":
            head = completion.text.strip().lower()
            verdict = ("supports" if head.startswith("support") else "contradicts" if head.startswith("contradict")
                       else "not enough evidence")
        return BaselineAnswer(completion.text, hits, cited, completion, search_s, verdict)
