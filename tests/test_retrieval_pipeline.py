"""Pipeline stages with small deterministic fakes of each Protocol: switching, caching, budgets, naming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generate.engine import Engine
from ingest.core.errors import ConfigError, InvalidRequestError
from ingest.core.settings import SearchSettings, Settings
from retrieval.llm_reranker import LlmReranker
from retrieval.pipeline import PipelineResult, RetrievalPipeline
from retrieval.query_cache import QueryCache
from retrieval.query_writer import QueryWriter, RewriteOptions
from retrieval.rrf_fusion import RrfFusion
from retrieval.score_fusion import ScoreFusion
from retrieval.stages import QueryAnalysis, Ranked
from retrieval.systems import split_limit, system_settings, timed_run, validate
from tests.fakes import FakeGenerator, HashingEmbedder

pytestmark = pytest.mark.unit

TEXTS = {1: "cats purr", 2: "dogs bark loudly", 3: "the cat sat", 4: "birds sing"}


class WordSource:
    """Ranks TEXTS by how many query words each contains (a deterministic stand-in retriever)."""

    def __init__(self, name: str, bonus: dict[int, float] | None = None) -> None:
        self.name = name
        self.bonus = bonus or {}
        self.seen: list[list[str]] = []

    def warm_up(self) -> None:
        pass

    def describe(self) -> str:
        return ""

    def search(self, queries: list[str], k: int) -> list[Ranked]:
        self.seen.append(queries)
        out = []
        for q in queries:
            words = set(q.lower().split())
            scored = [(cid, len(words & set(t.split())) + self.bonus.get(cid, 0.0)) for cid, t in TEXTS.items()]
            out.append(sorted([x for x in scored if x[1] > 0], key=lambda x: (-x[1], x[0]))[:k])
        return out


class FixedAnalyzer:
    def __init__(self, queries: list[str]) -> None:
        self.queries = queries

    def analyze(self, question: str) -> QueryAnalysis:
        return QueryAnalysis(question, self.queries)


def texts(ids: list[int]) -> dict[int, str]:
    return {i: TEXTS[i] for i in ids if i in TEXTS}


def test_single_source_passes_through_and_fusion_combines_two() -> None:
    bm25 = WordSource("bm25")
    alone = RetrievalPipeline([bm25], RrfFusion(), texts).run("cat sat", 10)
    assert [cid for cid, _ in alone.ranked] == [3]
    assert [t.stage for t in alone.trace] == ["bm25"]
    dense = WordSource("dense", bonus={1: 0.5})
    both = RetrievalPipeline([dense, bm25], ScoreFusion(normalization="minmax"), texts).run("cat sat", 10)
    assert [t.stage for t in both.trace] == ["dense", "bm25", "fusion:score"]
    assert [cid for cid, _ in both.ranked] == [3, 1]


def test_analyzer_queries_reach_every_source_and_generated_ones_weigh_less() -> None:
    bm25 = WordSource("bm25")
    pipe = RetrievalPipeline([bm25], RrfFusion(k=1, generated_weight=0.4), texts,
                             analyzer=FixedAnalyzer(["dogs bark", "birds"]))
    result = pipe.run("cat", 10)
    assert bm25.seen == [["cat", "dogs bark", "birds"]]
    assert result.trace[0].stage == "analysis" and result.trace[0].extra["queries"][0] == "cat"
    scores = dict(result.ranked)
    assert [cid for cid, _ in result.ranked][0] == 3  # the question's own match ranks first
    assert scores[3] == 1 / 2 and scores[2] == 0.4 / 2 and scores[4] == 0.4 / 2


def test_rerankers_run_in_order_on_the_head_only() -> None:
    gen = FakeGenerator(yes={"birds": 0.9, "dogs": 0.8})
    reranker = LlmReranker(gen, top_n=2, budget_s=60, blend=1.0)
    pipe = RetrievalPipeline([WordSource("bm25", bonus={4: 0.1, 2: 0.2, 1: 0.3})], RrfFusion(), texts,
                             rerankers=[reranker])
    result = pipe.run("cat", 10)
    # first stage: 3 (1 + 0), 1 (0.3), 2 (0.2), 4 (0.1); the LLM judges 3 and 1 only
    assert [cid for cid, _ in result.ranked] == [3, 1, 2, 4]
    assert len(gen.calls) == 2 and result.trace[-1].extra["scored"] == 2
    assert gen.calls[0][-1]["content"].startswith("Query: cat\n")  # query first: shared KV prefix

    gen2 = FakeGenerator(yes={"purr": 0.95})
    ranked = [(3, 2.0), (2, 1.0), (1, 0.5), (4, 0.1)]
    wide = LlmReranker(gen2, top_n=3, blend=1.0).rerank("cat", ranked, texts([3, 2, 1]))
    assert [cid for cid, _ in wide[0]] == [1, 3, 2, 4]


def test_llm_reranker_stops_at_its_time_budget() -> None:
    gen = FakeGenerator(yes={"birds": 0.99}, delay=0.05)
    ranked = [(1, 4.0), (2, 3.0), (3, 2.0), (4, 1.0)]
    out, info = LlmReranker(gen, top_n=4, budget_s=0.01, blend=1.0).rerank("q", ranked, texts([1, 2, 3, 4]))
    assert info["scored"] == 1 and info["budget_hit"]  # one judgement always runs, then the budget stops it
    assert out == [(1, 1.0), (2, 3.0), (3, 2.0), (4, 1.0)]  # a head of one keeps its place


def analyzer(model: FakeGenerator, cache: QueryCache | None = None, **options: Any) -> Any:
    """A pipeline's query analysis stage: a query writer over `model` with these rewrite options."""
    return QueryWriter(model, cache or QueryCache()).analyzer(RewriteOptions(**options))


def test_a_cached_query_analysis_counts_at_what_it_cost_to_make(tmp_path: Path) -> None:
    """A system's measured latency must not depend on which system (or earlier run) analysed the query first."""
    made = analyzer(FakeGenerator(reply='{"queries": ["feline rest"]}', delay=0.05, cpu_s=0.05),
                    QueryCache(tmp_path)).analyze("cat")
    hit = analyzer(FakeGenerator(reply="{}"), QueryCache(tmp_path)).analyze("cat")  # from disk
    # the model call slept 0.05 s and computed for 0.05 s: both costs are measured and kept with the rewrite
    assert not made.cached and made.seconds >= 0.1 and made.cpu_seconds >= 0.05
    assert hit.cached and hit.queries == ["feline rest"] and hit.seconds == pytest.approx(made.seconds)
    assert hit.cpu_seconds == pytest.approx(made.cpu_seconds)

    def system(query: str, k: int) -> PipelineResult:
        return PipelineResult([(1, 1.0), (2, 0.5), (3, 0.1)], analysis=hit)

    ranked, seconds, cpu = timed_run(system, "cat", 2)
    assert ranked == [(1, 1.0), (2, 0.5)] and seconds >= made.seconds and cpu >= made.cpu_seconds


def test_query_analyzer_schema_parse_and_cache(tmp_path: Path) -> None:
    reply = json.dumps({"queries": ["feline rest", "Cat", "feline rest", "cat posture"], "passage": "Cats sit."})
    gen = FakeGenerator(reply=reply)
    stage = analyzer(gen, QueryCache(tmp_path), max_queries=2)
    first = stage.analyze("cat")
    assert first.queries == ["feline rest", "cat posture"]  # deduplicated, the question itself dropped, capped
    assert first.search_queries() == ["cat", "feline rest", "cat posture", "Cats sit."]
    schema = gen.schemas[0]
    assert schema["properties"]["queries"]["maxItems"] == 2 and "passage" in schema["required"]
    again = stage.analyze("cat")
    assert again.cached and again.queries == first.queries and len(gen.calls) == 1
    # A new query writer (a new process) finds the rewrite on disk.
    other = FakeGenerator(reply="{}", name=gen.name)
    assert analyzer(other, QueryCache(tmp_path), max_queries=2).analyze("cat").queries == first.queries
    assert not other.calls
    expand_only = RewriteOptions(modes=("expand",))
    no_hyde = QueryWriter(FakeGenerator(reply=reply))
    assert "passage" not in no_hyde.rewrite_schema(expand_only)["properties"]
    assert no_hyde.rewrite("cat", expand_only).passage == ""


def test_query_analyzer_cut_off_reply_is_reported_not_fatal() -> None:
    result = analyzer(FakeGenerator(reply='{"queries": ["unfinished')).analyze("cat")
    assert result.queries == [] and "unusable reply" in result.error
    assert result.search_queries() == ["cat"]
    with pytest.raises(ValueError):
        RewriteOptions(modes=("guess",))


def test_query_cache_lru_is_bounded() -> None:
    cache = QueryCache(size=2)
    for i in range(3):
        cache.put(str(i), i)
    assert cache.get("0") is None and cache.get("2") == 2


def test_system_names_compose_stages() -> None:
    base = SearchSettings()
    s = system_settings("expand+fused+llm", base)
    assert s.analysis.enabled and s.analysis.modes == ["expand"] and s.fusion == "score"
    assert s.rerank.stages == ["llm"] and s.sources == ["dense", "bm25"]
    h = system_settings("hybrid+late+llm-writer", base)
    assert h.fusion == "rrf" and h.rerank.stages == ["late", "llm"] and h.rerank.llm_model == "writer"
    assert system_settings("bm25", base).sources == ["bm25"] and not system_settings("bm25", base).rerank.stages
    assert system_settings("analyze+fused", base).analysis.modes == ["expand", "decompose", "hyde"]
    assert system_settings("full", base) == base
    assert split_limit("fused+llm@100") == ("fused+llm", 100) and split_limit("fused") == ("fused", None)
    validate(["bm25-plain", "full", "hyde+dense"])
    for bad in ("fusd", "bm25+dense", "", "fused+llm@x"):
        with pytest.raises(InvalidRequestError):
            validate([split_limit(bad)[0]])


def test_factory_switches_stages_by_settings(tmp_path: Path) -> None:
    settings = Settings()
    settings.index.path = tmp_path / "index"
    engine = Engine(settings, embedder=HashingEmbedder(), fast_model=FakeGenerator(), writer_model=FakeGenerator())
    with engine.open_index(writable=True) as index:
        factory = engine.pipeline_factory(index)
        fast = factory.build(SearchSettings())
        assert fast.describe() == "dense+bm25 -> fusion:score" and fast.analyzer is None and not fast.rerankers
        deep = factory.build(system_settings("expand+hybrid+late+llm", SearchSettings()))
        assert deep.describe() == "analysis -> dense+bm25 -> fusion:rrf -> late -> llm"
        with pytest.raises(ConfigError):
            factory.build(system_settings("fused+ce", SearchSettings()))
