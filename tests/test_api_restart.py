"""A real `citewise serve` process killed mid-job: the job is reported interrupted, and retrying finishes it."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.servers import READY_TIMEOUT, free_port, start_process, wait_job, wait_ready
from tests.support import DEMO, stored_doc_count, wait_until

ENV = {"CITEWISE_INGEST__COMMIT_EVERY": "1", "CITEWISE_SERVER__PRELOAD": "false"}


def _files() -> list[tuple[str, bytes]]:
    files = [(p.name, p.read_bytes()) for p in sorted(DEMO.glob("*.rst"))]
    files += [(f"note-{i:02d}.md", f"# Note {i}\n\nSpecimen {i} was seen near marker {i * 7}.\n".encode())
              for i in range(20)]
    return files


def test_interrupted_ingest_job_is_reported_and_retry_finishes_it(tmp_path: Path) -> None:
    index, port = tmp_path / "index", free_port()
    base = f"http://127.0.0.1:{port}"
    files = _files()
    proc = start_process(index, port, ENV)
    try:
        wait_ready(base, READY_TIMEOUT, "/healthz")
        resp = httpx.post(base + "/v1/documents", files=[("files", f) for f in files], timeout=60)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job"]["id"]
        wait_until(lambda: stored_doc_count(index) >= 1, 300, "the job stored no document", interval=0.05)
        state = httpx.get(f"{base}/v1/jobs/{job_id}").json()["state"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert state == "running", "the job ended before the server could be killed mid-way"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert 0 < stored_doc_count(index) < len(files)

    proc = start_process(index, port, ENV)
    try:
        wait_ready(base, READY_TIMEOUT, "/healthz")
        with httpx.Client(base_url=base, timeout=60) as client:
            job = client.get(f"/v1/jobs/{job_id}").json()
            assert job["state"] == "interrupted" and "retry" in job["note"], job
            assert client.post(f"/v1/jobs/{job_id}/retry").status_code == 202
            done = wait_job(client, job_id)
            assert done["state"] == "done", done
            assert done["result"]["ingested"] + done["result"]["unchanged"] == len(files)
            assert len(client.get("/v1/documents").json()["documents"]) == len(files)
            assert client.post(f"/v1/jobs/{job_id}/retry").json()["error"]["code"] == "invalid_request"
    finally:
        proc.terminate()
        proc.wait(30)
