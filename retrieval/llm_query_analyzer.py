"""Query understanding by the search model: a question rewritten into search queries, held to a schema."""

from __future__ import annotations

import hashlib
import json
import time

from generate.generator import Generator
from ingest.errors import GenerationError
from retrieval.query_cache import QueryCache
from retrieval.stages import QueryAnalysis

PROMPT_VERSION = 1
MODES = ("expand", "decompose", "hyde")

_ASKS = {
    "expand": "rephrasings that use synonyms and the technical terms a relevant document would use",
    "decompose": "one query per sub-question when the question asks several things",
}


class LlmQueryAnalyzer:
    """Rewrites a question with a local GGUF model under a JSON schema, so a small model cannot break
    the format; results are cached by query text (memory, and disk when a cache folder is set).

    A reply that still cannot be used (cut off by the token budget) leaves the question alone and says
    why in `QueryAnalysis.error`, which `--explain` shows.
    """

    def __init__(self, model: Generator, modes: tuple[str, ...] = MODES, max_queries: int = 3,
                 max_tokens: int = 256, query_chars: int = 120, passage_chars: int = 400,
                 cache: QueryCache | None = None) -> None:
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown query analysis modes {unknown}; known: {', '.join(MODES)}")
        self.model = model
        self.modes = tuple(modes)
        self.max_queries = max_queries
        self.max_tokens = max_tokens
        self.query_chars = query_chars
        self.passage_chars = passage_chars
        self.cache = cache or QueryCache()

    def schema(self) -> dict[str, object]:
        """Bounded JSON: at most `max_queries` short queries, and a short passage when HyDE is on."""
        props: dict[str, object] = {"queries": {"type": "array", "minItems": 0, "maxItems": self.max_queries,
                                                "items": {"type": "string", "maxLength": self.query_chars}}}
        if "hyde" in self.modes:
            props["passage"] = {"type": "string", "maxLength": self.passage_chars}
        return {"type": "object", "properties": props, "required": list(props)}

    def messages(self, question: str) -> list[dict[str, str]]:
        asks = [_ASKS[m] for m in self.modes if m in _ASKS]
        lines = [f"Question: {question}", ""]
        if asks:
            lines.append(f"Write up to {self.max_queries} short search queries: " + "; ".join(asks) + ".")
        else:
            lines.append("Write no queries (an empty list).")
        if "hyde" in self.modes:
            lines.append("Also write \"passage\": two or three sentences that a relevant document might contain "
                         "(it is only used for searching, so it may be wrong).")
        lines.append("Reply with JSON only.")
        return [{"role": "system", "content": "You turn questions into queries for a document search engine."},
                {"role": "user", "content": "\n".join(lines)}]

    def key(self, question: str) -> str:
        raw = json.dumps([PROMPT_VERSION, self.model.name, self.modes, self.max_queries, self.max_tokens,
                          self.query_chars, self.passage_chars, question.strip()])
        return hashlib.sha256(raw.encode()).hexdigest()

    def analyze(self, question: str) -> QueryAnalysis:
        key = self.key(question)
        hit = self.cache.get(key)
        if hit is not None:  # `seconds` is what the analysis cost when it was made, so evaluations can count it
            return QueryAnalysis(question, list(hit["queries"]), hit.get("passage", ""), cached=True,
                                 seconds=hit.get("seconds", 0.0), cpu_seconds=hit.get("cpu_seconds", 0.0),
                                 error=hit.get("error", ""))
        started, cpu = time.perf_counter(), time.process_time()
        completion = self.model.chat(self.messages(question), schema=self.schema(), max_tokens=self.max_tokens)
        analysis = self.parse(question, completion.text)
        analysis.seconds = time.perf_counter() - started
        analysis.cpu_seconds = time.process_time() - cpu
        self.cache.put(key, {"queries": analysis.queries, "passage": analysis.passage, "error": analysis.error,
                             "seconds": analysis.seconds, "cpu_seconds": analysis.cpu_seconds})
        return analysis

    def parse(self, question: str, text: str) -> QueryAnalysis:
        """The schema's fields, bounded again here; an unusable reply becomes an error note."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return QueryAnalysis(question, [], error=f"unusable reply ({exc.msg}, {len(text)} chars)")
        if not isinstance(data, dict):
            raise GenerationError(f"query analysis reply is not a JSON object: {text[:80]!r}")
        queries = [q.strip() for q in data.get("queries", []) if isinstance(q, str) and q.strip()]
        seen: set[str] = {question.strip().lower()}
        unique = []
        for q in queries:
            if q.lower() not in seen:
                seen.add(q.lower())
                unique.append(q)
        passage = data.get("passage", "") if "hyde" in self.modes else ""
        return QueryAnalysis(question, unique[: self.max_queries], passage.strip() if isinstance(passage, str) else "")
