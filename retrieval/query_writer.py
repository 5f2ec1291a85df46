"""The search model writing search queries, held to a JSON schema so a small model cannot break the format.

Two jobs, one model and one cache: rewriting a question before it is searched (query analysis:
expansion, decomposition, a hypothetical answer passage) and proposing follow-up queries from what a
research round found (planning). Results are cached by their exact inputs, in memory and on disk when
a cache folder is set, so a repeated question costs no model call.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from ingest.core.errors import GenerationError
from ingest.core.generator import Completion, Generator, Message
from ingest.core.text import normalize_ws
from retrieval.query_cache import QueryCache
from retrieval.stages import QueryAnalysis

PROMPT_VERSION = 1
MODES = ("expand", "decompose", "hyde")

_ASKS = {
    "expand": "rephrasings that use synonyms and the technical terms a relevant document would use",
    "decompose": "one query per sub-question when the question asks several things",
}
PLAN_SYSTEM = (
    "You write queries for a search engine over the user's documents. Given a question, the queries already "
    "run and the best sentences found so far, return up to {n} new short keyword queries (under 12 words each) "
    "that would find what is still missing. Split a question with several parts into one query per part. "
    "Use different words from the queries already run. Reply with JSON only."
)


@dataclass(frozen=True)
class RewriteOptions:
    """What a pipeline's analysis stage asks for: which rewrites, how many, how long."""

    modes: tuple[str, ...] = MODES
    max_queries: int = 3
    max_tokens: int = 256
    query_chars: int = 120
    passage_chars: int = 400

    def __post_init__(self) -> None:
        unknown = [m for m in self.modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown query analysis modes {unknown}; known: {', '.join(MODES)}")


class QueryWriter:
    """Writes search queries with one local model; shared by every pipeline and the research loop.

    A rewrite that still cannot be used (cut off by the token budget) leaves the question alone and
    says why in `QueryAnalysis.error`, which `--explain` shows.
    """

    def __init__(self, model: Generator, cache: QueryCache | None = None, plan_max_tokens: int = 90) -> None:
        self.model = model
        self.cache = cache or QueryCache()
        self.plan_max_tokens = plan_max_tokens

    def warm_up(self) -> None:
        self.model.warm_up()

    def analyzer(self, options: RewriteOptions) -> _Analyzer:
        """The `QueryAnalyzer` stage of a pipeline: this writer with that pipeline's options."""
        return _Analyzer(self, options)

    # -- rewriting a question ----------------------------------------------------------------------
    def rewrite_schema(self, o: RewriteOptions) -> dict[str, object]:
        """Bounded JSON: at most `max_queries` short queries, and a short passage when HyDE is on."""
        props: dict[str, object] = {"queries": {"type": "array", "minItems": 0, "maxItems": o.max_queries,
                                                "items": {"type": "string", "maxLength": o.query_chars}}}
        if "hyde" in o.modes:
            props["passage"] = {"type": "string", "maxLength": o.passage_chars}
        return {"type": "object", "properties": props, "required": list(props)}

    def rewrite_messages(self, question: str, o: RewriteOptions) -> list[Message]:
        asks = [_ASKS[m] for m in o.modes if m in _ASKS]
        lines = [f"Question: {question}", ""]
        if asks:
            lines.append(f"Write up to {o.max_queries} short search queries: " + "; ".join(asks) + ".")
        else:
            lines.append("Write no queries (an empty list).")
        if "hyde" in o.modes:
            lines.append("Also write \"passage\": two or three sentences that a relevant document might contain "
                         "(it is only used for searching, so it may be wrong).")
        lines.append("Reply with JSON only.")
        return [{"role": "system", "content": "You turn questions into queries for a document search engine."},
                {"role": "user", "content": "\n".join(lines)}]

    def rewrite_key(self, question: str, o: RewriteOptions) -> str:
        raw = json.dumps([PROMPT_VERSION, self.model.name, o.modes, o.max_queries, o.max_tokens,
                          o.query_chars, o.passage_chars, question.strip()])
        return hashlib.sha256(raw.encode()).hexdigest()

    def rewrite(self, question: str, o: RewriteOptions) -> QueryAnalysis:
        key = self.rewrite_key(question, o)
        hit = self.cache.get(key)
        if hit is not None:  # `seconds` is what the analysis cost when it was made, so evaluations can count it
            return QueryAnalysis(question, list(hit["queries"]), hit.get("passage", ""), cached=True,
                                 seconds=hit.get("seconds", 0.0), cpu_seconds=hit.get("cpu_seconds", 0.0),
                                 error=hit.get("error", ""))
        started, cpu = time.perf_counter(), time.process_time()
        completion = self.model.chat(self.rewrite_messages(question, o), schema=self.rewrite_schema(o),
                                     max_tokens=o.max_tokens)
        analysis = self.parse_rewrite(question, completion.text, o)
        analysis.seconds = time.perf_counter() - started
        analysis.cpu_seconds = time.process_time() - cpu
        self.cache.put(key, {"queries": analysis.queries, "passage": analysis.passage, "error": analysis.error,
                             "seconds": analysis.seconds, "cpu_seconds": analysis.cpu_seconds})
        return analysis

    @staticmethod
    def parse_rewrite(question: str, text: str, o: RewriteOptions) -> QueryAnalysis:
        """The schema's fields, bounded again here; an unusable reply becomes an error note."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return QueryAnalysis(question, [], error=f"unusable reply ({exc.msg}, {len(text)} chars)")
        if not isinstance(data, dict):
            raise GenerationError(f"query analysis reply is not a JSON object: {text[:80]!r}")
        queries = [q.strip() for q in data.get("queries", []) if isinstance(q, str) and q.strip()]
        passage = data.get("passage", "") if "hyde" in o.modes else ""
        return QueryAnalysis(question, _fresh(queries, [question])[: o.max_queries],
                             passage.strip() if isinstance(passage, str) else "")

    # -- follow-up queries in the research loop ----------------------------------------------------
    def follow_up(self, question: str, tried: list[str], found: list[str],
                  max_queries: int) -> tuple[list[str], Completion | None]:
        """New queries for what is still missing, given the queries run and the best sentences found.

        The completion is None when the answer came from the cache (the trace says so).
        """
        found_lines = "\n".join(f"- {normalize_ws(t)[:200]}" for t in found[:3]) or "- (nothing relevant)"
        user = (f"Question: {normalize_ws(question)}\nQueries already run:\n"
                + "\n".join(f"- {q}" for q in tried) + f"\nBest sentences found:\n{found_lines}")
        key = hashlib.sha256(json.dumps(["plan", self.model.name, max_queries, user]).encode()).hexdigest()
        hit = self.cache.get(key)
        if hit is not None:
            return list(hit["queries"]), None
        messages = [{"role": "system", "content": PLAN_SYSTEM.format(n=max_queries)},
                    {"role": "user", "content": user}]
        schema = {"type": "object", "required": ["queries"], "properties": {"queries": {
            "type": "array", "maxItems": max_queries, "items": {"type": "string", "minLength": 3, "maxLength": 100}}}}
        completion = self.model.chat(messages, schema=schema, max_tokens=self.plan_max_tokens)
        try:
            queries = [normalize_ws(str(q)) for q in json.loads(completion.text).get("queries", [])]
        except json.JSONDecodeError:
            queries = []  # cut off by the token limit: no new queries, the loop stops and says why
        fresh = _fresh(queries, tried)
        self.cache.put(key, {"queries": fresh})
        return fresh, completion


class _Analyzer:
    """A pipeline's query analysis stage: the shared writer with fixed options (see `QueryWriter.analyzer`)."""

    def __init__(self, writer: QueryWriter, options: RewriteOptions) -> None:
        self.writer = writer
        self.options = options

    def analyze(self, question: str) -> QueryAnalysis:
        return self.writer.rewrite(question, self.options)


def _fresh(queries: list[str], known: list[str]) -> list[str]:
    """Queries in order, without repeats (case-insensitive) or any already known."""
    seen = {q.strip().lower() for q in known}
    out = []
    for q in queries:
        if q and q.lower() not in seen:
            seen.add(q.lower())
            out.append(q)
    return out
