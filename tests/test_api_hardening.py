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
from api.ingest_jobs import IngestJobs, JobProgress
from api.job_store import JobStore
from api.uploads import check_content
from ingest.core.errors import CitewiseError, IndexBusyError, InvalidRequestError, UnsupportedMediaError
from tests.servers import JOB_TIMEOUT, serving, shared_engine, small_settings, wait_job
from tests.support import wait_until

KEY = "hardening-key-0123456789"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hardening") / "index"


@pytest.fixture(scope="module")
def client(index_dir: Path, shared_models: dict[str, Any]) -> Iterator[httpx.Client]:
    """API keys on: the requests that once grew /metrics needed none."""
    settings = small_settings(index_dir, preload=False, api_keys=[SecretStr(KEY)])
    with serving(create_app(settings, shared_engine(settings, shared_models))) as base:
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
    # Counters only grow by a digit or two; a new label value would add a whole histogram of series.
    assert len(after) <= len(before.text) + 1024, (len(before.text), len(after))
    assert not [word for word in invented if word in after]
    assert 'method="other"' in after and 'route="unmatched"' in after
    assert 'route="/v1/documents",status="405"' in after  # a matched route keeps its template


COMMENT_ONLY = b"\n   \n<!-- draft: nothing written here yet -->\n\n"  # passes the upload check, parses to no text


def _post(client: httpx.Client, files: list[tuple[str, bytes]]) -> httpx.Response:
    return client.post("/v1/documents", files=[("files", f) for f in files])


def _job(client: httpx.Client, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    resp = _post(client, files)
    assert resp.status_code == 202, resp.text
    return wait_job(client, resp.json()["job"]["id"])


def _uploads(index_dir: Path) -> set[str]:
    return {p.name for p in (index_dir / "uploads").iterdir() if p.name != ".staging"}


def _docs(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {Path(d["source"]).name: d for d in client.get("/v1/documents").json()["documents"]}


def test_binary_behind_a_byte_order_mark_is_refused_at_upload(client: httpx.Client, index_dir: Path) -> None:
    staging = index_dir / "uploads" / ".staging"
    before = set(staging.iterdir()) if staging.exists() else set()
    for name, data in [("tool.md", b"\xff\xfe\x7fELF\x02\x01\x01\x00" + bytes(64)),
                       ("zeros.txt", b"\xff\xfe" + bytes(256)),
                       ("nuls.md", b"\xef\xbb\xbf# Title\x00\x00\x00\x00\x01\x02")]:
        resp = _post(client, [(name, data)])
        assert resp.status_code == 415, (name, resp.text)
        assert name in resp.json()["error"]["message"]
    assert (set(staging.iterdir()) if staging.exists() else set()) == before
    assert not (index_dir / "uploads" / "tool.md").exists()


def test_a_file_ingest_refuses_is_removed_and_the_job_says_why(client: httpx.Client, index_dir: Path) -> None:
    job = _job(client, [("empty-draft.md", COMMENT_ONLY), ("kelp.md", b"# Kelp\n\nKelp forests shelter otters.\n")])
    assert job["state"] == "done" and job["result"]["ingested"] == 1, job
    assert "empty-draft.md" not in _uploads(index_dir) and "kelp.md" in _uploads(index_dir)
    [failed] = job["result"]["failed"]
    assert failed["name"] == "empty-draft.md" and failed["removed"] is True and failed["reason"], failed
    assert "removed" in failed["note"]
    assert set(_docs(client)) >= {"kelp.md"} and "empty-draft.md" not in _docs(client)
    assert not (index_dir / "uploads" / ".staging" / job["id"]).exists()


def test_a_failed_new_version_keeps_the_earlier_upload_and_its_document(client: httpx.Client,
                                                                          index_dir: Path) -> None:
    first = b"# Tides\n\nThe spring tide at Velmora reaches four metres.\n"
    assert _job(client, [("tides.md", first)])["result"]["ingested"] == 1
    doc_id = _docs(client)["tides.md"]["id"]

    job = _job(client, [("tides.md", COMMENT_ONLY)])
    assert (index_dir / "uploads" / "tides.md").read_bytes() == first
    [failed] = job["result"]["failed"]
    assert failed["removed"] is True and "earlier upload" in failed["note"], failed
    assert "four metres" in client.get(f"/v1/documents/{doc_id}").json()["text"]
    assert not (index_dir / "uploads" / ".staging" / job["id"]).exists()  # nothing set aside is left behind

    second = b"# Tides\n\nThe neap tide at Velmora reaches two metres.\n"
    job = _job(client, [("tides.md", second)])
    assert job["result"]["ingested"] == 1 and not job["result"]["failed"], job
    assert (index_dir / "uploads" / "tides.md").read_bytes() == second
    assert "two metres" in client.get(f"/v1/documents/{doc_id}").json()["text"]
    assert not (index_dir / "uploads" / ".staging" / job["id"]).exists()


def test_a_utf16_upload_is_either_indexed_or_removed(client: httpx.Client, index_dir: Path) -> None:
    """Accepted as text; whether ingest reads UTF-16 is the parser's business, but nothing may linger."""
    job = _job(client, [("utf16.txt", "Sea otters use stones as tools.\n".encode("utf-16"))])
    assert job["state"] == "done", job
    if job["result"]["ingested"] == 1:
        assert "utf16.txt" in _uploads(index_dir) and "utf16.txt" in _docs(client)
    else:
        [failed] = job["result"]["failed"]
        assert failed["removed"] is True and "utf16.txt" not in _uploads(index_dir)
        assert "utf16.txt" not in _docs(client)


@pytest.mark.unit
@pytest.mark.parametrize("name,data", [
    ("le.txt", "Otters \u00e9 \U0001F9A6 float.\n".encode("utf-16")),
    ("be.txt", b"\xfe\xff" + "Otters float.\n".encode("utf-16-be")),
    ("wide.md", "# Otters\n\nThey float.\n".encode("utf-32")),
    ("long.txt", ("Otters \U0001F9A6 float. " * 4000).encode("utf-16")),  # read limit cuts mid-character
    ("bom8.md", b"\xef\xbb\xbf# Otters\n"),
])
def test_text_behind_a_byte_order_mark_is_accepted(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    assert check_content(tmp_path / name, name) in ("text", "md")


@pytest.mark.unit
@pytest.mark.parametrize("name,data,error", [
    ("elf.md", b"\xff\xfe\x7fELF\x02\x01\x01\x00" + bytes(200), UnsupportedMediaError),
    ("shifted.md", b"\xff\xfe\x00\x7fELF\x02\x01\x01" + bytes(200), UnsupportedMediaError),
    ("noise.txt", b"\xff\xfe" + random.Random(3).randbytes(4096), UnsupportedMediaError),
    ("controls.txt", b"\xff\xfe" + "\x01\x02\x03\x04abc".encode("utf-16-le") * 50, UnsupportedMediaError),
    ("odd.txt", b"\xff\xfe" + "text".encode("utf-16-le") + b"x", UnsupportedMediaError),  # half a character
    ("mark.txt", b"\xff\xfe", InvalidRequestError),
    ("blank.md", b" \n\n\t\n", InvalidRequestError),
])
def test_binary_or_nothing_behind_a_mark_is_refused(tmp_path: Path, name: str, data: bytes,
                                                    error: type[CitewiseError]) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(error, match=name):
        check_content(tmp_path / name, name)


@pytest.mark.unit
def test_a_retried_job_still_puts_back_the_upload_a_failed_file_replaced(tmp_path: Path) -> None:
    """The job fails as a whole first (the index was busy), then its retry finds the new file unreadable."""
    calls: list[list[Path]] = []

    def ingest(paths: list[Path], progress: JobProgress) -> dict[str, Any]:
        calls.append(paths)
        if len(calls) == 2:
            raise IndexBusyError("another process is writing the index")
        failed = [{"path": str(p.resolve()), "reason": "no text"} for p in paths if b"BAD" in p.read_bytes()]
        return {"ingested": len(paths) - len(failed), "failed": failed}

    jobs = IngestJobs(JobStore(tmp_path / "jobs.sqlite"), tmp_path, ingest)
    jobs.start()
    try:
        def run(data: bytes) -> dict[str, Any]:
            job_id = f"job{len(calls)}"
            jobs.staging_dir(job_id).mkdir(parents=True)
            (jobs.staging_dir(job_id) / "a.md").write_bytes(data)
            jobs.submit(job_id, ["a.md"])
            return _settled(jobs, job_id)

        assert run(b"# Good\n")["state"] == "done"
        busy = run(b"BAD")
        assert busy["state"] == "failed" and busy["error"]["code"] == IndexBusyError.code, busy
        jobs.retry(busy["id"])
        retried = _settled(jobs, busy["id"])
        assert (tmp_path / "uploads" / "a.md").read_bytes() == b"# Good\n"
        assert retried["state"] == "done" and retried["result"]["failed"][0]["removed"] is True, retried
        # the job is marked done first, then its staging folder goes: a moment apart
        wait_until(lambda: not jobs.staging_dir(busy["id"]).exists(), JOB_TIMEOUT, "staging folder left behind",
                   interval=0.02)
    finally:
        jobs.stop()


def _settled(jobs: IngestJobs, job_id: str) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        job = jobs.store.get(job_id)
        return job.to_dict() if job is not None and job.state not in ("queued", "running") else None

    return wait_until(settled, JOB_TIMEOUT, f"job {job_id} did not finish", interval=0.02)
