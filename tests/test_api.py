"""The HTTP API over real TCP: a real uvicorn server, real httpx and openai clients, real models and index."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import openai
import pytest

from api.app import create_app
from tests.samples import LIGHTHOUSE, POISONED
from tests.servers import serving, shared_engine, small_settings, sse_events, wait_job, wait_ready
from tests.support import wait_until

QUESTION = "Who designed the Velmora lighthouse?"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api") / "index"


@pytest.fixture(scope="module")
def server(index_dir: Path, shared_models: dict[str, Any]) -> Iterator[httpx.Client]:
    settings = small_settings(index_dir, queue_size=3, max_upload_mb=1.0)
    with serving(create_app(settings, shared_engine(settings, shared_models))) as base:
        wait_ready(base)
        with httpx.Client(base_url=base, timeout=600) as client:
            yield client


def _is_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


def _upload(client: httpx.Client, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    resp = client.post("/v1/documents", files=[("files", (name, data)) for name, data in files])
    assert resp.status_code == 202, resp.text
    return wait_job(client, resp.json()["job"]["id"])


def _stream_report(client: httpx.Client, body: dict[str, Any]) -> tuple[int, list[tuple[str, Any]], httpx.Response]:
    with client.stream("POST", "/v1/reports", json={**body, "stream": True}) as resp:
        if resp.status_code != 200:
            resp.read()
            return resp.status_code, [], resp
        return 200, [(e, json.loads(d)) for e, d in sse_events(resp.iter_lines())], resp


def test_a_new_server_is_ready_with_an_empty_index(server: httpx.Client) -> None:
    assert server.get("/healthz").json() == {"status": "ok"}
    ready = server.get("/readyz").json()
    # each part the built searcher and researcher load ("search": the embedder and the rerankers' models)
    assert ready["status"] == "ready" and set(ready["parts"]) == {"index", "embedder", "writer", "planner", "search"}
    assert server.get("/v1/documents").json() == {"documents": []}
    assert server.post("/v1/search", json={"query": "lighthouse"}).json()["hits"] == []


def test_upload_job_search_report_and_delete(server: httpx.Client, index_dir: Path) -> None:
    job = _upload(server, [("lighthouse.md", LIGHTHOUSE.encode()), ("visitor-notes.md", POISONED.encode())])
    assert job["state"] == "done" and job["result"]["ingested"] == 2, job
    assert job["progress"]["embed"]["done"] >= 2
    docs = server.get("/v1/documents").json()["documents"]
    assert {Path(d["source"]).name for d in docs} == {"lighthouse.md", "visitor-notes.md"}
    assert all(Path(d["source"]).parent == (index_dir / "uploads").resolve() for d in docs)

    hits = server.post("/v1/search", json={"query": "who designed the lighthouse", "k": 3}).json()["hits"]
    top = hits[0]
    shown = server.get(f"/v1/documents/{top['doc_id']}", params={"start": top["start"], "end": top["end"]}).json()
    assert shown["text"] == top["text"]

    report = server.post("/v1/reports", json={"question": QUESTION}).json()
    assert "Captain Hook" not in report["answer"]
    for c in report["sources"]:
        quoted = server.get(f"/v1/documents/{c['doc_id']}", params={"start": c["start"], "end": c["end"]}).json()
        assert quoted["text"] == c["quote"]
    assert report["trace"] and report["timings"]["total_s"] > 0 and report["tokens"]["completion"] > 0

    notes = next(d for d in docs if d["source"].endswith("visitor-notes.md"))
    gone = server.delete(f"/v1/documents/{notes['id']}").json()
    assert gone["removed"] == notes["id"] and gone["chunks"] >= 1
    assert not (index_dir / "uploads" / "visitor-notes.md").exists()
    hits = server.post("/v1/search", json={"query": "gift shop postcards", "k": 10}).json()["hits"]
    assert all(h["doc_id"] != notes["id"] for h in hits)


def test_uploads_are_checked_by_name_content_and_size(server: httpx.Client, index_dir: Path) -> None:
    staging = index_dir / "uploads" / ".staging"
    before = set(staging.iterdir()) if staging.exists() else set()
    bad = [("notes.md", b"# Fine\n\nA fine note."), ("garbage.pdf", b"\x00\x01 not a pdf at all")]
    err = _is_error(server.post("/v1/documents", files=[("files", f) for f in bad]), 415, "unsupported_media_type")
    assert "garbage.pdf" in err["message"] and "not a PDF" in err["message"]
    _is_error(server.post("/v1/documents", files=[("files", ("tool.md", b"\x7fELF\x02\x01\x01 binary"))]), 415,
              "unsupported_media_type")
    _is_error(server.post("/v1/documents", files=[("files", ("run.exe", b"MZ\x90\x00"))]), 415,
              "unsupported_media_type")
    _is_error(server.post("/v1/documents", files=[("files", ("empty.md", b""))]), 400, "invalid_request")
    big = b"# Big\n\n" + b"word " * 300_000  # 1.5 MB, over this server's 1 MB limit
    _is_error(server.post("/v1/documents", files=[("files", ("big.md", big))]), 413, "payload_too_large")
    assert (set(staging.iterdir()) if staging.exists() else set()) == before  # nothing of a refused upload kept

    job = _upload(server, [("../../../escape.md", b"# Escape\n\nThe name tried to leave the folder.")])
    assert job["state"] == "done" and job["files"][0]["path"] == "uploads/escape.md", job
    assert (index_dir / "uploads" / "escape.md").is_file()
    assert not (index_dir.parent / "escape.md").exists() and not (index_dir.parent.parent / "escape.md").exists()

    resp = server.post("/v1/documents", json={"documents": [{"name": "typed.txt", "text": "Typed text about kelp."}]})
    assert resp.status_code == 202, resp.text
    assert wait_job(server, resp.json()["job"]["id"])["result"]["ingested"] == 1
    _is_error(server.post("/v1/documents", content=b"plain", headers={"content-type": "text/plain"}), 415,
              "unsupported_media_type")


def test_report_stream_carries_steps_tokens_citations_then_the_report(server: httpx.Client) -> None:
    status, events, _ = _stream_report(server, {"question": QUESTION})
    assert status == 200
    names = [e for e, _ in events]
    assert names[:2] == ["queued", "started"] and names[-1] == "report", names
    assert {"search", "evidence", "write", "token"} <= set(names)
    report = events[-1][1]
    tokens = "".join(d["text"] for e, d in events if e == "token")
    written = next(s for s in report["trace"] if s["step"] == "write")["detail"]["raw"]
    assert tokens == written
    cited = [d for e, d in events if e == "citation"]
    assert len({(c["doc_id"], c["start"], c["end"]) for c in cited}) == len(report["sources"])
    for c in cited:
        assert report["sources"][c["number"] - 1]["quote"] == c["quote"]


def test_sixteen_concurrent_reports_complete_or_get_429(server: httpx.Client) -> None:
    async def one(client: httpx.AsyncClient, i: int) -> tuple[int, Any]:
        question = f"Question {i}: how tall is the Velmora lighthouse tower?"
        async with client.stream("POST", "/v1/reports", json={"question": question, "stream": True,
                                                               "options": {"writer_max_tokens": 60}}) as resp:
            if resp.status_code != 200:
                await resp.aread()
                return resp.status_code, (resp.headers.get("retry-after"), resp.json())
            lines = [line async for line in resp.aiter_lines()]
        events = [(e, json.loads(d)) for e, d in sse_events(iter(lines))]
        return 200, (question, events)

    async def run() -> list[tuple[int, Any]]:
        async with httpx.AsyncClient(base_url=str(server.base_url), timeout=600) as client:
            return await asyncio.gather(*(one(client, i) for i in range(16)))

    results = asyncio.run(run())
    statuses = [s for s, _ in results]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 1 and statuses.count(429) >= 1, statuses
    for status, detail in results:
        if status == 429:
            retry_after, body = detail
            assert int(retry_after) >= 1 and body["error"]["code"] == "queue_full"
            continue
        question, events = detail
        assert events[-1][0] == "report", events[-3:]
        report = events[-1][1]
        assert report["question"] == question  # each stream carries its own request's report...
        tokens = "".join(d["text"] for e, d in events if e == "token")
        assert tokens == next(s for s in report["trace"] if s["step"] == "write")["detail"]["raw"]  # ...and tokens


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" ([0-9.e+-]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_client_disconnect_stops_generation_and_frees_its_place(server: httpx.Client) -> None:
    cancelled = _metric(server.get("/metrics").text, "citewise_reports_total", 'outcome="cancelled"')
    with server.stream("POST", "/v1/reports", json={"question": QUESTION, "stream": True,
                                                    "options": {"writer_max_tokens": 400}}) as resp:
        for event, _ in sse_events(resp.iter_lines()):
            if event == "token":
                break  # hang up mid-generation

    def freed() -> bool:
        text = server.get("/metrics").text
        return (_metric(text, "citewise_reports_total", 'outcome="cancelled"') == cancelled + 1
                and _metric(text, "citewise_queue_generating") == 0)

    wait_until(freed, 120, "the disconnected report was not cancelled", interval=0.2)
    status, events, _ = _stream_report(server, {"question": QUESTION, "options": {"writer_max_tokens": 60}})
    assert status == 200 and events[-1][0] == "report"


def test_openai_clients_work_unchanged_streaming_included(server: httpx.Client) -> None:
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="not-needed-here", max_retries=0)
    assert [m.id for m in client.models.list()] == ["citewise"]
    whole = client.chat.completions.create(model="citewise", messages=[{"role": "user", "content": QUESTION}])
    content = whole.choices[0].message.content or ""
    citations = (whole.model_extra or {})["citations"]
    assert content.startswith(f"## {QUESTION}") and whole.usage and whole.usage.completion_tokens > 0
    for c in citations:
        assert f"[{c['number']}]" in content and c["quote"] in content

    pieces, last = [], None
    for chunk in client.chat.completions.create(model="citewise", stream=True,
                                                messages=[{"role": "system", "content": "Be brief."},
                                                          {"role": "user", "content": QUESTION}]):
        pieces.append(chunk.choices[0].delta.content or "")
        last = chunk
    assert last is not None and last.choices[0].finish_reason == "stop"
    streamed = (last.model_extra or {})["citations"]
    text = "".join(pieces)
    assert text.startswith(f"## {QUESTION}")
    assert [c["quote"] for c in streamed] == [c["quote"] for c in citations]
    for c in streamed:
        assert f"[{c['number']}]" in text

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])


def test_malformed_requests_get_json_errors(server: httpx.Client) -> None:
    _is_error(server.post("/v1/reports", json={}), 422, "invalid_request")
    _is_error(server.post("/v1/reports", json={"question": "x" * 3000}), 422, "invalid_request")
    _is_error(server.post("/v1/reports", json={"question": "hi", "options": {"max_rounds": 99}}), 422,
              "invalid_request")
    _is_error(server.post("/v1/reports", json={"question": "   "}), 400, "invalid_request")
    _is_error(server.post("/v1/reports", content=b"{not json", headers={"content-type": "application/json"}), 422,
              "invalid_request")
    _is_error(server.post("/v1/reports", content=b'{"question": "' + b"x" * 300_000 + b'"}',
                          headers={"content-type": "application/json"}), 413, "payload_too_large")
    _is_error(server.post("/v1/search", json={"query": "x", "k": 0}), 422, "invalid_request")
    _is_error(server.post("/v1/chat/completions", json={"model": "citewise", "messages": []}), 422,
              "invalid_request")
    _is_error(server.delete("/v1/documents/does-not-exist"), 404, "not_found")
    _is_error(server.get("/v1/jobs/nope"), 404, "not_found")
    _is_error(server.get("/v1/nothing-here"), 404, "not_found")
    _is_error(server.put("/v1/reports", json={}), 405, "method_not_allowed")


def test_metrics_count_routes_tokens_and_ingest(server: httpx.Client) -> None:
    text = server.get("/metrics").text
    assert _metric(text, "citewise_http_requests_total", 'method="POST",route="/v1/search",status="200"') >= 1 \
        or _metric(text, "citewise_http_requests_total", 'route="/v1/search",method="POST",status="200"') >= 1
    assert _metric(text, "citewise_tokens_generated_total") > 0
    assert _metric(text, "citewise_ingest_files_total", 'result="ingested"') >= 2
    assert _metric(text, "citewise_queue_rejected_total") >= 1
    assert "citewise_queue_waiting" in text and "citewise_http_request_duration_seconds_bucket" in text


def test_web_page_and_api_docs_are_served(server: httpx.Client) -> None:
    page = server.get("/")
    assert page.status_code == 200 and "/v1/reports" in page.text
    assert server.get("/docs").status_code == 200
    assert "/v1/chat/completions" in server.get("/openapi.json").json()["paths"]
