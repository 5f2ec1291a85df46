"""Every supported format goes through the real parser, chunker, embedder and index, and is findable."""

from __future__ import annotations

import shutil

from pathlib import Path

import pytest

from tests.samples import write_all_formats

FACTS = {
    "md": ("Why do zebras have stripes?", "horseflies"),
    "txt": ("When was the foghorn schedule logged?", "foghorn"),
    "rst": ("How often is a sourdough starter fed?", "twice a day"),
    "html": ("Why is basaltic lava runny?", "silica"),
    "pdf": ("What marks where glacier ice stopped?", "Moraines"),
    "docx": ("How do bees point at nectar?", "waggle dance"),
    "pptx": ("When do spring tides happen?", "sun and moon"),
    "eml": ("How many penguin breeding pairs?", "4,120"),
}


@pytest.fixture
def ingested(tmp_path: Path, make_engine):
    files = write_all_formats(tmp_path / "docs")
    (tmp_path / "docs" / "data.xyz").write_text("not a supported format")
    engine = make_engine()
    with engine.open_index(writable=True) as index:
        summary = engine.ingestor(index).ingest_paths([tmp_path / "docs"])
    return engine, summary, files


def test_all_formats_ingest_and_unsupported_is_skipped(ingested) -> None:
    engine, summary, files = ingested
    assert summary.failed == []
    assert summary.ingested == len(files)
    assert [Path(s["path"]).name for s in summary.skipped] == ["data.xyz"]
    assert "unsupported format .xyz" in summary.skipped[0]["reason"]


@pytest.mark.parametrize("fmt", sorted(FACTS))
def test_each_format_is_found_by_search(ingested, fmt: str) -> None:
    engine, _, files = ingested
    question, needle = FACTS[fmt]
    with engine.open_index() as index:
        hits = engine.searcher(index).search(question, k=1)
    assert hits, f"nothing found for {fmt}"
    top = hits[0].chunk
    assert top.source == str(files[fmt].resolve())
    assert needle in top.text
    # The chunk text is an exact slice of the stored document text.
    with engine.open_index() as index:
        assert index.document_text(top.doc_id)[top.start : top.end] == top.text


def test_metadata_titles_sections_and_pages(ingested) -> None:
    engine, _, files = ingested
    with engine.open_index() as index:
        docs = {d.source: d for d in index.documents()}
        titles = {fmt: docs[str(p.resolve())].title for fmt, p in files.items()}
        pdf_hits = engine.searcher(index).search("Moraines glacier ice stopped advancing", k=3)
        md_hit = engine.searcher(index).search("zebra stripes", k=1)[0]
    assert titles["md"] == "Zebras"
    assert titles["eml"] == "Quarterly penguin census"
    assert titles["docx"] == "Beekeeping"
    pdf = next(h.chunk for h in pdf_hits if h.chunk.source.endswith("report.pdf"))
    assert pdf.page == 1 and pdf.page_end == 2
    assert md_hit.chunk.headings == ["Zebras", "Stripes"]


def test_a_parser_whose_temp_folder_was_removed_still_parses(tmp_path: Path) -> None:
    """A long-lived parser (a server's, a test session's) keeps its index's temp folder; if the folder is
    removed (the index deleted and created again), the next parse recreates it instead of finding no text."""
    from ingest.parser import UnstructuredParser
    from tests.samples import minimal_pdf

    parser = UnstructuredParser()
    gone = tmp_path / "index" / "parse-tmp"
    parser.use_temp_dir(gone)
    shutil.rmtree(tmp_path / "index", ignore_errors=True)
    doc = parser.parse("report.pdf", minimal_pdf(["Tides at Velmora reach four metres."]), "pdf")
    assert "four metres" in doc.elements[0].text
