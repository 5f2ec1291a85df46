"""Property-based: valid and invalid requests generated from the app's own OpenAPI schema never get a 5xx, and every error
has the one JSON shape. Real server, real index with a document, the real 0.5B model (tiny budgets)."""

from __future__ import annotations

import json
from typing import Any, Iterator

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from api.app import create_app
from tests.samples import LIGHTHOUSE
from tests.servers import serving, shared_engine, small_settings, wait_job, wait_ready


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, shared_models: dict[str, Any]) -> Iterator[Any]:
    app_settings = small_settings(tmp_path_factory.mktemp("fuzz") / "index", queue_size=2)
    app_settings.research.writer_max_tokens = 24
    app_settings.research.evidence_sentences = 2
    app_settings.research.plan = "never"
    with serving(create_app(app_settings, shared_engine(app_settings, shared_models))) as base:
        wait_ready(base)
        with httpx.Client(base_url=base, timeout=120) as client:
            job = client.post("/v1/documents", files=[("files", ("lighthouse.md", LIGHTHOUSE.encode()))]).json()
            assert wait_job(client, job["job"]["id"])["state"] == "done"
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


def _check(case: Any) -> None:
    resp = case.call(timeout=120)
    where = f"{case.method} {case.formatted_path}"
    assert resp.status_code < 500, f"{where} -> {resp.status_code}: {resp.text[:500]}"
    if "text/event-stream" in resp.headers.get("content-type", ""):
        assert "internal_error" not in resp.text, f"{where}: {resp.text[-500:]}"
    elif resp.status_code >= 400:
        body = json.loads(resp.text)
        assert set(body) == {"error"} and set(body["error"]) == {"type", "code", "message"}, (where, body)


def test_no_generated_request_gets_a_server_error(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        for mode, examples in ((GenerationMode.POSITIVE, 15), (GenerationMode.NEGATIVE, 15)):
            check = settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
                             derandomize=True, database=None)(given(case=operation.as_strategy(mode))(_check))
            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
