"""The command line as a user runs it: config, ingest, search, docs list/rm."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import DEMO, run_cli


def test_config_shows_effective_settings_from_env_and_toml(tmp_path: Path) -> None:
    (tmp_path / "citewise.toml").write_text('[search]\ntop_k = 9\n\n[ingest]\nchunk_tokens = 150\n')
    result = run_cli("config", "--json", env={"CITEWISE_INGEST__CHUNK_TOKENS": "120"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["search"]["top_k"] == 9  # from citewise.toml
    assert data["ingest"]["chunk_tokens"] == 120  # the environment wins over the file
    bad = run_cli("config", env={"CITEWISE_SEARCH__TOP_K": "many"}, cwd=tmp_path)
    assert bad.returncode == 2 and "search.top_k" in bad.stderr and "Traceback" not in bad.stderr


def test_ingest_search_list_and_remove_on_the_demo_corpus(tmp_path: Path) -> None:
    index = str(tmp_path / "index")
    ingested = run_cli("ingest", str(DEMO), "--index", index, "--json")
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["ingested"] == len(list(DEMO.glob("*.rst")))

    found = run_cli("search", "What is the walrus operator?", "--index", index, "-k", "3")
    assert found.returncode == 0
    assert "Assignment Expressions" in found.stdout and "pep-0572.rst" in found.stdout
    explained = run_cli("search", "What is the walrus operator?", "--index", index, "--explain", "--json")
    stages = json.loads(explained.stdout)["stages"]
    assert [s["stage"] for s in stages] == ["dense", "bm25", "fusion:score"]
    assert all(s["candidates"] and s["candidates"][0]["title"] for s in stages)
    late = run_cli("search", "What is the walrus operator?", "--index", index, "--system", "hybrid+late", "--explain")
    assert late.returncode == 0 and "fusion:rrf" in late.stdout and "late" in late.stdout

    listed = json.loads(run_cli("docs", "list", "--index", index, "--json").stdout)
    pep20 = next(d for d in listed if d["source"].endswith("pep-0020.rst"))
    assert pep20["title"] == "The Zen of Python"
    def holding(text: bytes) -> list[Path]:
        return [f for f in Path(index).rglob("*") if f.is_file() and text in f.read_bytes()]

    assert holding(b"Namespaces are one honking")
    removed = run_cli("docs", "rm", pep20["id"], "--index", index)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert holding(b"Namespaces are one honking") == []  # not left in the store's free pages either
    again = run_cli("docs", "rm", pep20["id"], "--index", index)
    assert again.returncode == 2 and "no document" in again.stderr
    hits = json.loads(run_cli("search", "Zen of Python beautiful is better than ugly", "--index", index, "--json").stdout)
    assert all(not h["source"].endswith("pep-0020.rst") for h in hits)
