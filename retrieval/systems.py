"""Named retrieval systems, so evaluation and the CLI can name any configuration by string.

A name is `+`-joined parts: at most one first stage (`bm25`, `dense`, `hybrid` = RRF, `fused` =
tuned score fusion), query analysis parts (`expand`, `decompose`, `hyde`, or `analyze` for all
three), and rerankers in the order given (`late`, `ce`, `trained` = the index's own scorer from
`citewise train`, `llm` with the fast model, `llm-writer` with the writer model). Examples: `fused`,
`fused+late`, `fused+trained`, `fused+llm`, `expand+fused+llm`.
`full` is the configured default pipeline (settings `search.*`) and `bm25-plain` an unstemmed
BM25 baseline. Everything not named comes from the configured settings (top-N, budgets, blends).
"""

from __future__ import annotations

import time
from typing import Callable

from ingest.core.errors import InvalidRequestError
from ingest.store.bm25_index import Bm25Analyzer, Bm25Index
from retrieval.pipeline import PipelineResult
from retrieval.pipeline_factory import PipelineFactory
from ingest.core.settings import SearchSettings

#: (query, k) -> the pipeline's result: its ranking, and the query analysis whose cost an evaluation counts.
System = Callable[[str, int], PipelineResult]

FIRST_STAGES = {
    "bm25": "BM25 with the index's analyzer (Snowball stemming, English stopwords by default)",
    "dense": "MiniLM embeddings, exact inner product in FAISS",
    "hybrid": "dense + BM25 fused by reciprocal rank fusion (k = search.rrf_k)",
    "fused": "dense + BM25 fused by weighted z-score fusion (tuned on SciFact train)",
}
ANALYSIS = {"expand": "expansion", "decompose": "decomposition", "hyde": "hypothetical answer passage",
            "analyze": "expansion, decomposition and hypothetical answer"}
RERANKERS = {"late": "late interaction (MaxSim over MiniLM token vectors)", "ce": "cross-encoder",
             "trained": "the index's own scorer (citewise train)",
             "llm": "LLM yes/no reranker (fast model)", "llm-writer": "LLM yes/no reranker (writer model)"}
SPECIAL = {"bm25-plain": "BM25 without stemming or stopwords (plain bm25s tokenization)",
           "full": "the configured default pipeline (settings search.*)"}
#: Names listed in help texts; any valid combination is accepted too.
SYSTEMS = ("bm25", "bm25-plain", "dense", "hybrid", "fused", "fused+late", "fused+trained", "fused+llm",
           "expand+fused", "hyde+fused", "analyze+fused+llm", "full")


def system_settings(name: str, base: SearchSettings) -> SearchSettings:
    """The settings a system name stands for, starting from the configured ones."""
    if name == "full":
        return base.model_copy(deep=True)
    parts = [p.strip() for p in name.split("+") if p.strip()]
    known = set(FIRST_STAGES) | set(ANALYSIS) | set(RERANKERS)
    unknown = [p for p in parts if p not in known]
    firsts = [p for p in parts if p in FIRST_STAGES]
    if not parts or unknown or len(firsts) > 1:
        raise InvalidRequestError(
            f"unknown system {name!r}: join one of {', '.join(FIRST_STAGES)} with optional "
            f"{', '.join(ANALYSIS)} and rerankers {', '.join(RERANKERS)} by '+', or use bm25-plain / full")
    s = base.model_copy(deep=True)
    first = firsts[0] if firsts else "fused"
    s.sources = ["dense", "bm25"] if first in ("hybrid", "fused") else [first]  # type: ignore[list-item]
    s.fusion = "rrf" if first == "hybrid" else "score"
    if first == "hybrid":
        s.fusion_weights = {}
    modes = [p for p in parts if p in ANALYSIS]
    s.analysis.enabled = bool(modes)
    if modes:
        s.analysis.modes = ["expand", "decompose", "hyde"] if "analyze" in modes else modes  # type: ignore[assignment]
    stages = {"late": "late", "ce": "cross-encoder", "trained": "trained", "llm": "llm", "llm-writer": "llm"}
    s.rerank.stages = [stages[p] for p in parts if p in RERANKERS]  # type: ignore[misc]
    if "llm-writer" in parts:
        s.rerank.llm_model = "writer"
    return s


def describe(name: str) -> str:
    if name in SPECIAL:
        return SPECIAL[name]
    return "; ".join({**FIRST_STAGES, **ANALYSIS, **RERANKERS}.get(p, p) for p in name.split("+"))


def validate(names: list[str]) -> None:
    """Raise a clear error for the first name that is not a system."""
    for name in names:
        if name not in SPECIAL:
            system_settings(name, SearchSettings())


def build_system(name: str, factory: PipelineFactory, base: SearchSettings, candidates: int) -> System:
    """Build one named system over an opened index; unknown names are a clear error."""
    if name == "bm25-plain":
        rows = list(factory.index.index_texts())
        plain = Bm25Index.build(Bm25Analyzer(None, None), [r[0] for r in rows], [r[1] for r in rows])
        return lambda q, n: PipelineResult(plain.search(q, n))
    pipeline = factory.build(system_settings(name, base), candidates)
    return pipeline.run


def split_limit(spec: str) -> tuple[str, int | None]:
    """`name@N` -> (name, N): a slow system run on the first N queries only; `name` -> (name, None)."""
    name, _, cap = spec.partition("@")
    if not cap:
        return name, None
    if not cap.isdigit() or int(cap) < 1:
        raise InvalidRequestError(f"bad query limit in {spec!r}: write NAME@N with N >= 1")
    return name, int(cap)


def timed_run(system: System, query: str, k: int) -> tuple[list[tuple[int, float]], float, float]:
    """The first `k` of the ranking, with wall and CPU seconds.

    A query analysis served from the cache counts at what it cost when it was made, so a system's
    latency does not depend on whether another system (or an earlier run) analysed the query first.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    result = system(query, k)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if result.analysis is not None and result.analysis.cached:
        seconds += result.analysis.seconds
        cpu += result.analysis.cpu_seconds
    return result.ranked[:k], seconds, cpu
