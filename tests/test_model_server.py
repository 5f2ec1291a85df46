"""The OpenAI-compatible backend against a real model server: llama-cpp-python's own, with the 0.5B GGUF,
started by the test on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from api.app import create_app
from generate.engine import Engine
from generate.writer import report_schema
from ingest.backends.openai_generator import OpenAIGenerator
from ingest.core.errors import ModelServerError
from ingest.core.model_resolver import ModelResolver
from ingest.core.settings import Settings
from tests.samples import LIGHTHOUSE
from tests.servers import free_port, serving
from tests.support import run_cli, wait_until

FAST = "qwen2.5-coder-0.5b-instruct"
EVIDENCE = [{"role": "system", "content": "Reply with JSON only."},
            {"role": "user", "content": "Evidence:\n[1] The Velmora lighthouse was designed by the engineer Ada Quist "
                                        "in 1887.\n\nQuestion: Who designed the Velmora lighthouse?"}]


def start_model_server(port: int) -> subprocess.Popen[bytes]:
    gguf = ModelResolver().gguf_path(FAST)
    return subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", FAST,
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--verbose", "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/models", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def model_server() -> Iterator[str]:
    port = free_port()
    proc = start_model_server(port)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until(lambda: _up(url) or proc.poll() is not None, 180, "the model server did not start")
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_constrained_streamed_chat_and_logprobs_through_a_real_server(model_server: str) -> None:
    model = OpenAIGenerator(model_server, FAST)
    model.warm_up()
    pieces: list[str] = []
    done = model.chat(EVIDENCE, schema=report_schema(1, 2), max_tokens=120, on_text=pieces.append)
    data = json.loads(done.text)  # held to the schema by the server
    assert set(data) == {"statements", "answerable", "answer"} and "".join(pieces) == done.text
    assert all(st["evidence"] == [1] for st in data["statements"])
    assert done.completion_tokens > 0 and done.total_s >= done.prefill_s
    p_yes, _ = model.yes_probability([{"role": "user", "content": "Is 2 larger than 1? Answer yes or no."}])
    p_no, _ = model.yes_probability([{"role": "user", "content": "Is 1 larger than 2? Answer yes or no."}])
    assert p_yes > p_no


def test_a_report_through_the_model_server(model_server: str, make_engine: Callable[..., Engine],
                                           tmp_path: Path) -> None:
    local = make_engine()
    settings = local.settings.model_copy(deep=True)
    settings.models.backend = "openai"
    settings.models.base_url = model_server
    settings.models.writer = FAST
    settings.models.fast = FAST
    settings.research.max_rounds = 1
    settings.research.writer_max_tokens = 160
    engine = Engine(settings, embedder=local.embedder, parser=local.parser)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "lighthouse.md").write_text(LIGHTHOUSE)
    with engine.open_index(writable=True) as index:
        engine.ingestor(index).ingest_paths([tmp_path / "docs"])
    with engine.open_index() as index:
        report = engine.researcher(index).run("Who designed the Velmora lighthouse?")
    assert report.models["writer"] == FAST and report.tokens["calls"] >= 1
    assert report.answered and "Quist" in report.answer, report.to_dict()
    quotes = [c.quote for st in report.statements for c in st.citations]
    assert any("Ada Quist" in q for q in quotes)


def test_synthetic_items_per_second_embedded_and_through_the_server(model_server: str, built_index: Path,
                                                                    tmp_path: Path) -> None:
    """`eval bench-training` writes questions about the same chunk through both backends and compares them."""
    env = {"CITEWISE_TRAIN__QUESTIONS_PER_CHUNK": "1", "CITEWISE_TRAIN__NEAR_MISSES_PER_CHUNK": "1"}
    done = run_cli("eval", "bench-training", "--index", str(built_index), "--chunks", "1", "--model-server",
                   model_server, "--out", str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    (run,) = [p for p in tmp_path.iterdir() if "-bench-training-" in p.name]
    runs = json.loads((run / "results.json").read_text())["runs"]
    assert set(runs) == {"embedded", "server"}
    for r in runs.values():
        assert r["summary"]["chunks_done"] == 1 and r["chat"]["calls"] >= 1 and r["model"] == FAST
    report = (run / "report.md").read_text()
    assert "| embedded |" in report and "| server |" in report and model_server in report
    assert not (built_index / "training").exists()  # written into copies only


def test_a_model_server_that_goes_away_is_a_503_with_retry_after(make_engine: Callable[..., Engine],
                                                                 tmp_path: Path) -> None:
    port = free_port()
    proc = start_model_server(port)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until(lambda: _up(url) or proc.poll() is not None, 180, "the model server did not start")
    finally:
        proc.terminate()  # it goes away before the report is asked for
        proc.wait(30)
    with pytest.raises(ModelServerError, match="cannot reach the model server"):
        OpenAIGenerator(url, FAST, retries=1).chat(EVIDENCE, max_tokens=8)
    local = make_engine()
    settings: Settings = local.settings.model_copy(deep=True)
    settings.models.backend, settings.models.base_url = "openai", url
    settings.models.request_retries = 1
    settings.server.preload = False
    (tmp_path / "index").mkdir(exist_ok=True)
    app = create_app(settings, Engine(settings, embedder=local.embedder, parser=local.parser))
    with serving(app) as base:
        with httpx.Client(base_url=base, timeout=120) as client:
            client.post("/v1/documents", json={"documents": [{"name": "l.md", "text": LIGHTHOUSE}]})
            wait_until(lambda: client.get("/v1/documents").json()["documents"], 120, "the upload was not ingested")
            resp = client.post("/v1/reports", json={"question": "Who designed the Velmora lighthouse?"})
    body: dict[str, Any] = resp.json()
    assert resp.status_code == 503 and body["error"]["code"] == "model_server_unavailable", body
    assert int(resp.headers["retry-after"]) > 0
