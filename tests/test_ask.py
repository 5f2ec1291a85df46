"""`citewise ask` end to end: real files, real index, the real default writer (a test about the writer, so
the 1.5B model rather than the 0.5B one; small token budgets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generate.engine import Engine
from ingest.core.settings import Settings
from tests.samples import LIGHTHOUSE, POISONED
from tests.support import run_cli

ENV = {"CITEWISE_RESEARCH__WRITER_MAX_TOKENS": "160", "CITEWISE_RESEARCH__MAX_ROUNDS": "1"}


@pytest.fixture(scope="module")
def velmora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("velmora")
    docs = root / "docs"
    docs.mkdir()
    (docs / "lighthouse.md").write_text(LIGHTHOUSE)
    (docs / "visitor-notes.md").write_text(POISONED)
    index = root / "index"
    done = run_cli("ingest", str(docs), "--index", str(index), "--quiet")
    assert done.returncode == 0, done.stderr
    return index


def ask(index: Path, question: str) -> dict:
    done = run_cli("ask", question, "--index", str(index), "--json", env=ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_report_cites_verbatim_quotes_and_ignores_instructions_in_documents(velmora: Path) -> None:
    report = ask(velmora, "Who designed the Velmora lighthouse?")
    assert report["answered"], report
    assert "Ada Quist" in " ".join(c["quote"] for c in report["sources"])
    everything = json.dumps({k: report[k] for k in ("answer", "statements", "sources")})
    assert "Captain Hook" not in everything
    settings = Settings()
    settings.index.path = velmora
    with Engine(settings).open_index() as idx:
        for source in report["sources"]:
            text = idx.document_text(source["doc_id"])
            assert text[source["start"]:source["end"]] == source["quote"]
            assert source["title"] and source["source"].endswith(".md")
    for st in report["statements"]:
        assert st["status"] == "cited" and st["citations"]
    steps = [t["step"] for t in report["trace"]]
    assert steps[0] == "search" and "write" in steps and "verify" in steps
    t = report["timings"]
    assert t["total_s"] >= t["prefill_s"] + t["decode_s"] - 0.01
    # late interaction reranks the ask path's searches; its seconds are counted apart from search's
    assert t["rerank_s"] > 0 and t["search_s"] > 0
    parts = sum(t[k] for k in ("search_s", "rerank_s", "select_s", "prefill_s", "decode_s", "verify_s"))
    assert parts <= t["total_s"] + 0.01
    assert report["tokens"]["prompt"] > 0 and report["tokens"]["completion"] > 0


def test_question_the_documents_do_not_answer_gets_a_plain_refusal(velmora: Path) -> None:
    report = ask(velmora, "What is the population of Velmora island?")
    assert not report["answered"], report
    assert report["answer"] == "The indexed documents do not answer this question."
    for st in report["statements"]:  # verified related findings may stay; none may state a population
        assert st["citations"] and not any(ch.isdigit() for ch in st["text"]), st


def test_markdown_report_lists_sources_with_quotes(velmora: Path) -> None:
    done = run_cli("ask", "When was the lamp of the Velmora lighthouse converted to electricity?", "--index",
                   str(velmora), "--no-stream", env=ENV)
    assert done.returncode == 0, done.stderr
    assert "### Sources" in done.stdout and "> " in done.stdout and "lighthouse.md" in done.stdout


def test_ask_on_a_missing_index_is_one_clear_error(tmp_path: Path) -> None:
    done = run_cli("ask", "anything", "--index", str(tmp_path / "nope"), env=ENV)
    assert done.returncode == 2
    assert "no index" in done.stderr and "Traceback" not in done.stderr
