"""The search model in the loop, for real: the 0.5B GGUF judging passages and rewriting a question."""

from __future__ import annotations

from typing import Any

import pytest

from generate.engine import Engine
from ingest.core.settings import Settings
from retrieval.llm_reranker import LlmReranker
from retrieval.query_cache import QueryCache
from retrieval.query_writer import QueryWriter, RewriteOptions

PASSAGES = {1: "The stock market fell on Tuesday after the bank raised interest rates.",
            2: "Domestic cats are carnivores: they eat meat such as fish, birds and mice.",
            3: "Python is a programming language created by Guido van Rossum."}


@pytest.fixture(scope="module")
def fast_model() -> Any:
    model = Engine(Settings()).fast_model
    yield model
    model.close()


def test_llm_reranker_puts_the_relevant_passage_first(fast_model: Any) -> None:
    reranker = LlmReranker(fast_model, top_n=3, budget_s=120, blend=1.0)
    ranked = [(1, 3.0), (3, 2.0), (2, 1.0)]
    out, info = reranker.rerank("What do cats eat?", ranked, PASSAGES)
    assert info["scored"] == 3 and not info["budget_hit"]
    assert out[0][0] == 2
    p = info["p_yes"]
    assert p[2] > p[1] and p[2] > p[3] and all(0.0 <= v <= 1.0 for v in p.values())
    again, info2 = reranker.rerank("What do cats eat?", ranked, PASSAGES)
    # Same order; P(yes) moves by a few hundredths because the second pass reuses the KV cache of a
    # different prefix than the first (llama.cpp's batched vs incremental prefill are not bit-equal).
    assert [cid for cid, _ in again] == [cid for cid, _ in out]
    assert all(abs(info2["p_yes"][c] - p[c]) < 0.05 for c in p)


def test_query_analyzer_returns_schema_shaped_queries_and_caches(fast_model: Any) -> None:
    analyzer = QueryWriter(fast_model, QueryCache()).analyzer(
        RewriteOptions(modes=("expand", "hyde"), max_queries=2, max_tokens=128, query_chars=60, passage_chars=150))
    result = analyzer.analyze("Does vitamin D lower the risk of bone fractures in older adults?")
    assert not result.error, result.error
    assert len(result.queries) <= 2 and all(0 < len(q) <= 60 for q in result.queries)
    assert len(result.passage) <= 150
    assert result.search_queries()[0].startswith("Does vitamin D")
    again = analyzer.analyze("Does vitamin D lower the risk of bone fractures in older adults?")
    assert again.cached and again.queries == result.queries and again.passage == result.passage
