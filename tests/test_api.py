"""The HTTP API over real TCP: a real uvicorn server, a real httpx client, real models and index."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.components import Components
from api.settings import Settings
from tests.test_ask import LIGHTHOUSE, POISONED


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_models: dict[str, Any]) -> Iterator[httpx.Client]:
    settings = Settings()
    settings.index.path = tmp_path_factory.mktemp("api") / "index"
    settings.models.writer = settings.models.fast  # the 0.5B model keeps the test quick
    settings.research.writer_max_tokens = 140
    settings.research.max_rounds = 1
    settings.ingest.parse_workers = 0
    comps = Components(settings)
    comps.__dict__["embedder"] = shared_models["embedder"]
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(settings, comps), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
        yield client
    srv.should_exit = True
    thread.join(10)


def _is_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"type", "code", "message"} and body["code"] == code and body["message"]


def test_requests_before_any_document_are_clear_errors(server: httpx.Client) -> None:
    _is_error(server.get("/v1/search", params={"q": "lighthouse"}), 409, "index_error")


def test_upload_search_report_and_delete(server: httpx.Client) -> None:
    files = [("files", ("lighthouse.md", LIGHTHOUSE.encode(), "text/markdown")),
             ("files", ("visitor-notes.md", POISONED.encode(), "text/markdown")),
             ("files", ("garbage.pdf", b"\x00\x01 not a pdf at all", "application/pdf"))]
    resp = server.post("/v1/documents", files=files)
    assert resp.status_code == 200, resp.text
    summary = resp.json()
    assert summary["ingested"] == 2 and summary["failed"] and "garbage.pdf" in summary["failed"][0]["path"]

    docs = server.get("/v1/documents").json()["documents"]
    assert {Path(d["source"]).name for d in docs} == {"lighthouse.md", "visitor-notes.md"}

    hits = server.get("/v1/search", params={"q": "who designed the lighthouse", "k": 3}).json()["hits"]
    top = hits[0]
    shown = server.get(f"/v1/documents/{top['doc_id']}", params={"start": top["start"], "end": top["end"]}).json()
    assert shown["text"] == top["text"]

    report = server.post("/v1/reports", json={"question": "Who designed the Velmora lighthouse?"}).json()
    assert "Captain Hook" not in report["answer"]
    for c in report["sources"]:
        quoted = server.get(f"/v1/documents/{c['doc_id']}", params={"start": c["start"], "end": c["end"]}).json()
        assert quoted["text"] == c["quote"]
    assert report["trace"] and report["timings"]["total_s"] > 0

    notes = next(d for d in docs if d["source"].endswith("visitor-notes.md"))
    gone = server.delete(f"/v1/documents/{notes['id']}").json()
    assert gone["removed"] == notes["id"] and gone["chunks"] >= 1
    hits = server.get("/v1/search", params={"q": "gift shop postcards", "k": 10}).json()["hits"]
    assert all(h["doc_id"] != notes["id"] for h in hits)


def test_malformed_requests_get_json_errors(server: httpx.Client) -> None:
    _is_error(server.post("/v1/reports", json={}), 422, "invalid_request")
    _is_error(server.post("/v1/reports", json={"question": "x" * 3000}), 422, "invalid_request")
    _is_error(server.post("/v1/reports", content=b"{not json", headers={"content-type": "application/json"}), 422,
              "invalid_request")
    _is_error(server.get("/v1/search", params={"q": "x", "k": 0}), 422, "invalid_request")
    _is_error(server.delete("/v1/documents/does-not-exist"), 404, "not_found")
    _is_error(server.get("/v1/nothing-here"), 404, "not_found")


def test_web_page_is_served(server: httpx.Client) -> None:
    page = server.get("/")
    assert page.status_code == 200 and "/v1/reports" in page.text
