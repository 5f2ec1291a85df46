"""The search model's planning step: turn a question, and what was found so far, into new queries."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from generate.generator import Completion, Generator
from retrieval.evidence import Evidence

SYSTEM = (
    "You write queries for a search engine over the user's documents. Given a question, the queries already "
    "run and the best sentences found so far, return up to {n} new short keyword queries (under 12 words each) "
    "that would find what is still missing. Split a question with several parts into one query per part. "
    "Use different words from the queries already run. Reply with JSON only."
)


def plan_schema(n: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"queries": {"type": "array", "maxItems": n,
                                   "items": {"type": "string", "minLength": 3, "maxLength": 100}}},
        "required": ["queries"],
    }


class ResearchPlanner:
    """Asks the fast model for follow-up queries; answers are cached by their exact inputs."""

    def __init__(self, model: Generator, max_queries: int = 3, max_tokens: int = 90, cache_size: int = 256) -> None:
        self.model = model
        self.max_queries = max_queries
        self.max_tokens = max_tokens
        self._cache: OrderedDict[str, list[str]] = OrderedDict()
        self.cache_size = cache_size

    def plan(self, question: str, tried: list[str], found: list[Evidence]) -> tuple[list[str], Completion | None]:
        found_lines = "\n".join(f"- {' '.join(ev.text.split())[:200]}" for ev in found[:3]) or "- (nothing relevant)"
        user = (f"Question: {' '.join(question.split())}\nQueries already run:\n"
                + "\n".join(f"- {q}" for q in tried) + f"\nBest sentences found:\n{found_lines}")
        key = json.dumps([self.model.name, user])
        if key in self._cache:
            self._cache.move_to_end(key)
            return list(self._cache[key]), None
        messages = [{"role": "system", "content": SYSTEM.format(n=self.max_queries)}, {"role": "user", "content": user}]
        completion = self.model.chat(messages, schema=plan_schema(self.max_queries), max_tokens=self.max_tokens)
        try:
            queries = [" ".join(str(q).split()) for q in json.loads(completion.text).get("queries", [])]
        except json.JSONDecodeError:
            queries = []  # cut off by the token limit: no new queries, the loop stops and says why
        seen = {q.lower() for q in tried}
        fresh = []
        for q in queries:
            if q and q.lower() not in seen:
                seen.add(q.lower())
                fresh.append(q)
        self._cache[key] = fresh
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return fresh, completion
