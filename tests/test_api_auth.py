"""API keys: required on every route but health when configured, any configured key accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from tests.samples import LIGHTHOUSE
from tests.servers import READY_TIMEOUT, serving, shared_engine, small_settings, wait_job
from tests.support import wait_until

KEYS = ["first-key-0123456789", "second-key-9876543210"]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, shared_models: dict[str, Any]) -> Iterator[str]:
    settings = small_settings(tmp_path_factory.mktemp("auth") / "index", preload=False,
                              api_keys=[SecretStr(k) for k in KEYS])
    with serving(create_app(settings, shared_engine(settings, shared_models))) as url:
        yield url


@pytest.mark.parametrize("method,path", [("GET", "/v1/documents"), ("POST", "/v1/search"), ("GET", "/metrics"),
                                         ("POST", "/v1/reports"), ("POST", "/v1/chat/completions"),
                                         ("GET", "/v1/jobs"), ("DELETE", "/v1/documents/x"), ("GET", "/v1/models")])
def test_every_api_route_needs_a_valid_key(base: str, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {KEYS[0]}"},
                    {"Authorization": f"Bearer {KEYS[0]}x"}):
        resp = httpx.request(method, base + path, headers=headers, json={})
        assert resp.status_code == 401, (path, headers, resp.text)
        assert resp.json()["error"]["code"] == "unauthorized" and resp.headers["www-authenticate"] == "Bearer"


def test_health_is_open_and_each_configured_key_works(base: str) -> None:
    assert httpx.get(base + "/healthz").status_code == 200
    assert httpx.get(base + "/readyz").status_code in (200, 503)
    for key in KEYS:
        resp = httpx.get(base + "/v1/documents", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
    assert httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {KEYS[1]}"}).status_code == 200


def test_readyz_names_what_failed_to_load(tmp_path: Path, shared_models: dict[str, Any]) -> None:
    settings = small_settings(tmp_path / "index")
    settings.models.writer = str(tmp_path / "missing-writer.gguf")
    with serving(create_app(settings, shared_engine(settings, shared_models))) as url:
        def writer_settled() -> httpx.Response | None:
            resp = httpx.get(url + "/readyz")
            return resp if resp.json()["parts"].get("writer", "loading") != "loading" else None

        resp = wait_until(writer_settled, READY_TIMEOUT, "/readyz never said how the writer loaded", interval=0.2)
        assert resp.status_code == 503
        assert resp.json()["parts"]["writer"].startswith("failed") and "missing-writer.gguf" in resp.text
        assert httpx.get(url + "/healthz").status_code == 200
        with httpx.Client(base_url=url, timeout=120) as client:  # a report the writer must write
            job = client.post("/v1/documents", files=[("files", ("lighthouse.md", LIGHTHOUSE.encode()))]).json()
            assert wait_job(client, job["job"]["id"])["state"] == "done"
            resp = client.post("/v1/reports", json={"question": "Who designed the Velmora lighthouse?"})
        err = resp.json()["error"]
        assert err["code"] in ("model_unavailable", "config_error") and "missing-writer.gguf" in err["message"]
