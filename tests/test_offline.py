"""Ingestion and search work with no network at all (a network namespace with no routes)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.support import run_cli
from tests.samples import write_all_formats


def _no_network_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []  # unprivileged: fall back to proxies that lead nowhere (set below in every case)


DEAD_PROXY = {
    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "",
    "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0",  # citewise must force these itself
}


def test_ingest_and_search_without_network(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_all_formats(docs)
    prefix = _no_network_prefix()
    probe = subprocess.run([*prefix, "python3", "-c", "import socket; s = socket.socket(); s.settimeout(2); "
                            "print(s.connect_ex(('1.1.1.1', 443)))"], capture_output=True, text=True)
    assert probe.stdout.strip() != "0", "the sandbox for this test still reaches the internet"
    index = tmp_path / "index"
    result = run_cli("ingest", str(docs), "--index", str(index), "--json", env=DEAD_PROXY, prefix=prefix)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ingested"] == 8 and summary["failed"] == []
    found = run_cli("search", "penguin breeding pairs", "--index", str(index), "--json", env=DEAD_PROXY, prefix=prefix)
    assert found.returncode == 0, found.stderr
    assert "4,120" in json.loads(found.stdout)[0]["text"]
    # unstructured's usage notice (a log warning when not on a terminal) names itself and how to hide it
    for output in (result.stdout, result.stderr, found.stdout, found.stderr):
        assert "Unstructured Open Source" not in output and "UNSTRUCTURED_DISABLE_NOTICE" not in output


def test_unstructured_telemetry_and_notice_are_off_after_parsing() -> None:
    """Even with the opt-outs unset beforehand, loading our parser turns unstructured's analytics off."""
    import os

    from ingest.parser import UnstructuredParser

    for var in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "UNSTRUCTURED_DISABLE_NOTICE"):
        os.environ.pop(var, None)
    doc = UnstructuredParser().parse("/note.md", b"# Note\n\nA short note about telemetry.\n", "md")
    assert doc.title == "Note"
    from unstructured.utils import _telemetry_opt_out

    assert _telemetry_opt_out() is True
    assert os.environ["UNSTRUCTURED_DISABLE_NOTICE"] == "1"


def test_sentence_boundaries_come_from_the_sentence_recognizer_not_the_parser() -> None:
    """unstructured's title-or-text heuristics need tags and sentence boundaries only: the shipped model's
    `senter` gives the boundaries, so the dependency parser (its slowest part) is never loaded."""
    from ingest.parser import UnstructuredParser

    UnstructuredParser().parse("/note.md", b"# Note\n\nThe first sentence is here. The second one follows it.\n",
                               "md")
    import unstructured.nlp.tokenize as tokenize

    nlp = tokenize._get_nlp()
    assert "senter" in nlp.pipe_names and "tagger" in nlp.pipe_names and "parser" not in nlp.pipe_names
    assert tokenize.sent_tokenize("The first sentence is here. The second one follows it.") == [
        "The first sentence is here.", "The second one follows it."]
