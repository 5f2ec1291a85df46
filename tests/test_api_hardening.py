"""Abuse a real server: invented request methods must not grow /metrics, failed uploads must not stay on disk."""

from __future__ import annotations

import random
import socket
import string
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from tests.servers import serving, shared_components, small_settings, wait_job

KEY = "hardening-key-0123456789"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hardening") / "index"


@pytest.fixture(scope="module")
def client(index_dir: Path, shared_models: dict[str, Any]) -> Iterator[httpx.Client]:
    """API keys on: the requests that once grew /metrics needed none."""
    settings = small_settings(index_dir, preload=False, api_keys=[SecretStr(KEY)])
    with serving(create_app(settings, shared_components(settings, shared_models))) as base:
        with httpx.Client(base_url=base, timeout=300, headers={"Authorization": f"Bearer {KEY}"}) as c:
            yield c


def _raw_requests(base: str, count: int, seed: int) -> list[str]:
    """Requests with invented methods and paths over a raw socket (httpx would not send such methods)."""
    host, port = base.removeprefix("http://").split(":")
    rnd = random.Random(seed)
    invented = []
    for i in range(count):
        method = "X" + "".join(rnd.choices(string.ascii_uppercase, k=7))
        path = rnd.choice(["/v1/documents", "/metrics", "/" + "".join(rnd.choices(string.ascii_lowercase, k=10))])
        if i % 5 == 0:  # a known method on an unknown path: the path must not become a label either
            method, path = "GET", "/" + "".join(rnd.choices(string.ascii_lowercase, k=12))
        invented.append(method if method != "GET" else path)
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            while s.recv(65536):
                pass
    return invented


def test_invented_methods_and_paths_do_not_grow_metrics(client: httpx.Client) -> None:
    base = str(client.base_url).rstrip("/")
    _raw_requests(base, 20, seed=1)  # the first of each kind adds its one "other"/"unmatched" series
    client.get("/metrics")
    before = client.get("/metrics")
    assert before.status_code == 200
    invented = _raw_requests(base, 300, seed=2)
    after = client.get("/metrics").text
    # Counters grow by a few digits; each new label value would add a whole histogram (~2 KB).
    assert len(after) <= len(before.text) + 1024, (len(before.text), len(after))
    assert not [word for word in invented if word in after]
    assert 'method="other"' in after and 'route="unmatched"' in after
    assert 'route="/v1/documents",status="405"' in after  # a matched route keeps its template
