"""Options out of range are refused with one line naming the option, its bounds and its setting (exit 2), on
the command line and over HTTP; all of these fail before any model loads."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app
from api.schemas import SearchRequest
from generate.researcher import Researcher
from ingest.core.errors import ConfigError
from ingest.core.settings import PER_REQUEST, ResearchOptions, ResearchSettings, SearchSettings, Settings
from ingest.core.settings.overrides import field_bounds, override
from tests.servers import serving, small_settings
from tests.support import FIXTURES, run_cli

CASES = [
    (["search", "walrus", "-k", "-5"], "-k: must be between 1 and 1000, not -5 (setting search.top_k)"),
    (["search", "walrus", "-k", "0"], "-k: must be between 1 and 1000, not 0 (setting search.top_k)"),
    (["search", "walrus", "-k", "1001"], "-k: must be between 1 and 1000, not 1001 (setting search.top_k)"),
    (["search", " \t "], "the query is empty"),
    (["ask", "why?", "--rounds", "-1"], "--rounds: must be between 1 and 6, not -1 (setting research.max_rounds)"),
    (["ask", "why?", "--rounds", "0"], "--rounds: must be between 1 and 6, not 0 (setting research.max_rounds)"),
    (["ask", "why?", "--rounds", "7"], "--rounds: must be between 1 and 6, not 7 (setting research.max_rounds)"),
    (["ask", "why?", "--writer", ""], "--writer: must be non-empty, not '' (setting models.writer)"),
    (["ask", "  \n "], "the question is empty"),
    (["ingest", ".", "--context-scope", "page"],
     "--context-scope: must be one of chunk, document, not 'page' (setting ingest.context_scope)"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_cli_option_out_of_range_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_cli(*args, "--index", str(tmp_path / "index"), timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {message}"
    assert not (tmp_path / "index").exists()  # refused before anything was opened or created


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "0"], "--port: must be between 1 and 65535, not 0 (setting server.port)"),
    (["--port", "70000"], "--port: must be between 1 and 65535, not 70000 (setting server.port)"),
    (["--host", ""], "--host: must be non-empty, not '' (setting server.host)"),
], ids=["port-0", "port-70000", "host-empty"])
def test_serve_refuses_a_port_or_host_out_of_range(tmp_path: Path, args: list[str], message: str) -> None:
    """`--port 0` used to mean the default port silently; a server that starts would time this test out."""
    done = run_cli("serve", "--index", str(tmp_path / "index"), *args, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == f"error: {message}", done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["retrieval", "--dataset", str(FIXTURES / "beir-tiny"), "--split", "test", "--limit", "0", "--out"],
     "--limit: must be at least 1, not 0"),
    (["answers", "--dataset", str(FIXTURES / "squad-tiny"), "--limit", "-3", "--out"],
     "--limit: must be at least 1, not -3"),
    (["bench-context", str(FIXTURES / "squad-tiny" / "docs"), "--docs", "0", "--out"],
     "--docs: must be at least 1, not 0"),
    (["bench-ingest", str(FIXTURES / "squad-tiny" / "docs"), "--context-mode", "magic", "--json"],
     "--context-mode: must be one of none, structure, llm, not 'magic' (setting ingest.context_mode)"),
], ids=["retrieval-limit", "answers-limit", "bench-context-docs", "bench-ingest-context-mode"])
def test_eval_options_out_of_range(tmp_path: Path, args: list[str], message: str) -> None:
    """--limit 0 used to mean every query; eval options that override a setting name it like the rest."""
    done = run_cli("eval", *args, *([str(tmp_path / "runs")] if args[-1] == "--out" else []), timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == f"error: {message}", done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.unit
def test_settings_validate_on_assignment_and_overrides_name_the_option() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.research.max_rounds = -1
    with pytest.raises(ValidationError):
        settings.search.rerank.llm_blend = 2.0
    assert settings.research.max_rounds == 2  # a refused value leaves the setting as it was
    with pytest.raises(ConfigError) as refused:
        override(settings, "research.max_rounds", 9, "--rounds")
    assert refused.value.message == "--rounds: must be between 1 and 6, not 9 (setting research.max_rounds)"
    override(settings, "research.max_rounds", 6, "--rounds")
    assert settings.research.max_rounds == 6


@pytest.mark.unit
def test_research_loop_refuses_zero_rounds_instead_of_an_index_error() -> None:
    """Settings built without validation (model_construct) once ended in IndexError: trace[-1] of no round."""
    unchecked = ResearchSettings.model_construct(max_rounds=-1)
    with pytest.raises(ConfigError, match="research.max_rounds must be at least 1"):
        Researcher(None, None, None, unchecked)  # type: ignore[arg-type]


@pytest.mark.unit
def test_per_request_options_are_validated_not_copied() -> None:
    """`model_copy(update=...)` validates nothing: a request's options go through the settings' bounds, when
    they are made and again when they are applied to the settings."""
    with pytest.raises(ValidationError, match=r"max_rounds\n  Input should be greater than or equal to 1"):
        ResearchOptions(max_rounds=0)
    with pytest.raises(ValidationError, match=r"time_budget_s\n  Input should be greater than 0"):
        ResearchOptions(time_budget_s=-5.0)
    with pytest.raises(ValidationError, match="extra"):
        ResearchOptions(evidence_tokens=10)  # not a per-request option
    settings = ResearchSettings()
    with pytest.raises(ValidationError, match="max_rounds"):
        ResearchOptions.model_construct(max_rounds=0).apply(settings)  # type: ignore[attr-defined]
    applied = ResearchOptions(max_rounds=3).apply(settings)  # type: ignore[attr-defined]
    assert applied.max_rounds == 3 and applied.model_dump(exclude={"max_rounds"}) == \
        settings.model_dump(exclude={"max_rounds"})


@pytest.mark.unit
def test_http_bounds_are_the_settings_bounds() -> None:
    assert field_bounds(SearchRequest, "k") == field_bounds(SearchSettings, "top_k") == {"ge": 1, "le": 1000}
    assert set(ResearchOptions.model_fields) == set(PER_REQUEST)
    for name in PER_REQUEST:
        assert field_bounds(ResearchOptions, name) == field_bounds(ResearchSettings, name), name


def test_blank_search_query_is_refused_like_a_blank_question(tmp_path: Path) -> None:
    settings = small_settings(tmp_path / "index", preload=False)
    with serving(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        for query in ("   ", "\n\t "):
            resp = client.post("/v1/search", json={"query": query})
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"]["code"] == "invalid_request"
            assert resp.json()["error"]["message"] == "the query is empty"
        too_many = client.post("/v1/search", json={"query": "lamp", "k": 1001})
        assert too_many.status_code == 422 and too_many.json()["error"]["code"] == "invalid_request"
        no_round = client.post("/v1/reports", json={"question": "lamp?", "options": {"max_rounds": 0}})
        assert no_round.status_code == 422 and no_round.json()["error"]["code"] == "invalid_request"
        assert "options.max_rounds" in no_round.json()["error"]["message"]
