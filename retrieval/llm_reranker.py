"""Pointwise reranking by a local GGUF model: P(yes) of a yes/no relevance judgement per passage."""

from __future__ import annotations

import time
from typing import Any

from ingest.core.generator import Generator
from retrieval.blend import blend_head
from retrieval.stages import Ranked


class LlmReranker:
    """Scores the first `top_n` candidates in first-stage order until `budget_s` runs out.

    The query comes first in the prompt and the passage last, so llama.cpp reuses the KV cache of the
    shared prefix from one passage to the next and pays only for each passage's own tokens. The score
    is blended with the first-stage score (`blend` = weight of the model's score).
    """

    name = "llm"

    def __init__(self, model: Generator, top_n: int = 10, budget_s: float = 30.0, blend: float = 0.5,
                 passage_chars: int = 800) -> None:
        self.model = model
        self.top_n = top_n
        self.budget_s = budget_s
        self.blend = blend
        self.passage_chars = passage_chars

    def warm_up(self) -> None:
        self.model.warm_up()

    def messages(self, query: str, passage: str) -> list[dict[str, str]]:
        text = passage[: self.passage_chars]
        # Wording chosen on a three-passage probe (tests/test_llm_retrieval.py): with a system line asking
        # for a judge, the 0.5B coder model preferred a Python passage to the one answering the query.
        return [{"role": "user", "content": f"Query: {query}\nPassage: {text}\n"
                                            "Is this passage relevant to the query? Answer only yes or no."}]

    def rerank(self, query: str, ranked: Ranked, texts: dict[int, str]) -> tuple[Ranked, dict[str, Any]]:
        started = time.perf_counter()
        scores: dict[int, float] = {}
        for cid, _ in ranked[: self.top_n]:
            if cid not in texts:
                continue
            if scores and time.perf_counter() - started >= self.budget_s:
                break
            p, _ = self.model.yes_probability(self.messages(query, texts[cid]))
            scores[cid] = p
        info = {"scored": len(scores), "model": self.model.name, "p_yes": scores,
                "budget_hit": len(scores) < min(self.top_n, len(ranked))}
        return blend_head(ranked, scores, self.blend), info
