"""The process-pool parser: same results as in-process, in order, and a bad file fails alone."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from ingest.core.errors import DocumentError
from ingest.formats import FORMATS
from ingest.pooled_parser import PooledParser
from tests.samples import write_all_formats


def test_pool_parses_in_order_and_reports_failures(tmp_path: Path, shared_models) -> None:
    """Also: the workers never load torch (spaCy's thinc would, for nothing), yet parse what this process does."""
    files = write_all_formats(tmp_path / "docs")
    jobs = [(str(p), p.read_bytes(), FORMATS[p.suffix]) for _, p in sorted(files.items())]
    jobs.insert(2, ("/bad.txt", b"\x00\x01binary", "text"))
    pool = PooledParser(workers=2, timeout=120)
    try:
        results = list(pool.parse_many(jobs))
        workers = [p.pid for p in multiprocessing.active_children()]
        assert workers and all("libtorch" not in Path(f"/proc/{pid}/maps").read_text() for pid in workers)
    finally:
        pool.close()
    assert [source for source, _ in results] == [source for source, _, _ in jobs]
    bad = dict(results)["/bad.txt"]
    assert isinstance(bad, DocumentError) and "binary content" in bad.reason
    in_process = shared_models["parser"]
    for source, data, fmt in jobs:
        if source != "/bad.txt":
            assert dict(results)[source].elements == in_process.parse(source, data, fmt).elements


def test_a_parse_that_hangs_times_out_and_the_rest_go_on(tmp_path: Path) -> None:
    """A real pathological input: 200,000 tiny paragraphs take far longer than a tiny time limit (40,000 once
    did, until a faster sentence splitter brought them near it)."""
    slow = ("Tiny paragraph here.\n\n" * 200_000).encode()
    fine = b"A small note that parses quickly.\n"
    pool = PooledParser(workers=1, timeout=5)
    try:
        results = dict(pool.parse_many([("/slow.txt", slow, "text"), ("/fine.txt", fine, "text")]))
    finally:
        pool.close()
    assert isinstance(results["/slow.txt"], DocumentError)
    assert "timed out after 5 s" in results["/slow.txt"].reason
    assert results["/fine.txt"].elements[0].text.startswith("A small note")
