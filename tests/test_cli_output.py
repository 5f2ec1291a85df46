"""Document text, titles and paths reach the terminal as stored: never read as Rich markup or Markdown, and
never as terminal control sequences. The real CLI, on a pipe and on a terminal (rich's TTY_COMPATIBLE=1)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from api.cli.ask_command import print_report
from generate.report import Citation, Report, Statement
from ingest.console.text import visible
from tests.support import run_cli

ESC = "\x1b[31m"
#: Each of these once crashed the CLI (`[/]`) or lost characters (`l[i]`, `[red]x`, `*bold*`, `:smile:`).
TRICKY = "The loop print l[i] for i in range(len(l)) closes [/] and opens [red]x with *bold* and :smile: marks."
PIPE = {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "", "NO_COLOR": "1"}
TERMINAL = {"TTY_COMPATIBLE": "1", "COLUMNS": "200"}
#: What rich writes for styles and cursor movement; the documents' own escapes are shown as text, not sent.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _plain(output: str) -> str:
    return ANSI.sub("", output)


@pytest.fixture(scope="module")
def odd_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("odd")
    docs = root / "docs"
    docs.mkdir()
    (docs / "[red]x notes.txt").write_text(TRICKY + "\n")
    (docs / "titled.md").write_text("# Keeper l[i] log [/] [red]x\n\nThe keeper wrote the log of the lamp every "
                                     "night.\n")
    (docs / f"e{ESC}vil.txt").write_text(f"An escape {ESC}red\x1b[0m sits inside this text about a lamp.\n")
    done = run_cli("ingest", str(docs), "--index", str(root / "index"), "--quiet")
    assert done.returncode == 0, done.stderr
    return root / "index"


def _stored(index: Path) -> list[dict[str, Any]]:
    done = run_cli("docs", "list", "--index", str(index), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("env", [PIPE, TERMINAL], ids=["pipe", "terminal"])
def test_docs_list_shows_titles_and_paths_as_stored(odd_index: Path, env: dict[str, str]) -> None:
    docs = _stored(odd_index)
    assert {d["title"] for d in docs} >= {"Keeper l[i] log [/] [red]x"}
    assert any(ESC in d["source"] for d in docs) and any("[red]x notes.txt" in d["source"] for d in docs)
    done = run_cli("docs", "list", "--index", str(odd_index), env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    shown = _plain(done.stdout)
    for d in docs:
        assert visible(d["title"]) in shown and visible(d["source"]) in shown
    assert "e\\x1b[31mvil.txt" in shown  # the file name's escape is visible text, not a colour change
    if env is PIPE:
        assert "\x1b" not in done.stdout


@pytest.mark.parametrize("env", [PIPE, TERMINAL], ids=["pipe", "terminal"])
def test_search_prints_chunk_text_exactly_as_json_gives_it(odd_index: Path, env: dict[str, str]) -> None:
    args = ["search", "print l[i] loop closes and opens marks", "--index", str(odd_index), "-k", "3"]
    hits = json.loads(run_cli(*args, "--json").stdout)
    assert any(TRICKY in h["text"] for h in hits)
    done = run_cli(*args, env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    shown = _plain(done.stdout)
    for h in hits:
        assert visible(h["text"]).replace("\n", "\n   ") in shown
        assert visible(h["title"]) in shown and visible(h["source"]) in shown
    assert TRICKY in shown
    explained = run_cli(*args, "--explain", env=env)
    assert explained.returncode == 0 and "Traceback" not in explained.stderr, explained.stderr
    assert "Keeper l[i] log [/] [red]x" in _plain(explained.stdout) or TRICKY in _plain(explained.stdout)


@pytest.mark.parametrize("env", [PIPE, TERMINAL], ids=["pipe", "terminal"])
def test_config_keeps_its_section_headers(tmp_path: Path, env: dict[str, str]) -> None:
    done = run_cli("config", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = _plain(done.stdout)
    for section in ("[models]", "[ingest]", "[index]", "[search]", "[research]", "[server]"):
        assert f"\n{section}\n" in f"\n{shown}"


def test_ingest_summary_and_errors_name_odd_paths_as_they_are(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "[").mkdir()  # so the path holds "[/]": a closing tag Rich would choke on
    (docs / "[" / "]broken.pdf").write_bytes(b"this is not a PDF at all")
    (docs / "fine.txt").write_text("A short and ordinary note about lamps.\n")
    done = run_cli("ingest", str(docs), "--index", str(tmp_path / "index"), env=PIPE)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr  # partial: one file failed
    assert "[/]broken.pdf" in done.stderr and "1 ingested" in done.stderr
    missing = run_cli("docs", "rm", "[/]nothing", "--index", str(tmp_path / "index"), env=PIPE)
    assert missing.returncode == 2 and "no document '[/]nothing'" in missing.stderr, missing.stderr


def _report(quote: str) -> Report:
    cite = Citation(evidence=1, doc_id="d1", source=f"/docs/e{ESC}vil `x`.txt", title="Log *of* [/] l[i]",
                    section=["A_b_c"], page=None, start=0, end=len(quote), quote=quote, support=0.9)
    report = Report(question="Why *this*?", answered=True, answer="Because of _that_.",
                    statements=[Statement(text="The code says l[i].", citations=[cite])], unsupported=[],
                    evidence=[], trace=[], stop_reason="enough", timings={"total_s": 1.0}, tokens={}, models={})
    report.number_citations()
    return report


@pytest.mark.unit
@pytest.mark.parametrize("quote", [TRICKY, "Use `code` and [a link](http://x.y) and <b>tags</b> & _under_ here.",
                                   "# not a heading", "1. not a list", f"red {ESC}text\x1b[0m back"])
def test_ask_markdown_on_a_terminal_shows_quotes_verbatim(quote: str) -> None:
    """The terminal renders the report as Markdown: a quote's own `*`, `_`, backticks or links must not be."""
    buffer = io.StringIO()
    terminal = Console(file=buffer, force_terminal=True, width=300, soft_wrap=True)
    print_report(_report(quote), terminal)
    shown = _plain(buffer.getvalue())
    assert visible(quote) in shown
    assert "Log *of* [/] l[i]" in shown and "Why *this*?" in shown and "Because of _that_." in shown
    assert "e\\x1b[31mvil `x`.txt" in shown and "\x1b[31mred" not in buffer.getvalue()

    piped = io.StringIO()
    print_report(_report(quote), Console(file=piped, force_terminal=False, width=300, soft_wrap=True))
    assert f"> {visible(quote)}" in piped.getvalue()  # plain Markdown, quote as stored
