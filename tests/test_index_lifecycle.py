"""Incremental re-ingest, replacement, removal and embedder checks on a real index on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.core.errors import EmbedderMismatchError, IndexBusyError
from ingest.store.local_index import LocalIndex
from tests.support import ids_everywhere


def test_unchanged_changed_and_removed_documents(tmp_path: Path, make_engine) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpacas\n\nAlpacas hum to communicate with their herd.\n")
    (docs / "b.md").write_text("# Bison\n\nBison wallow in dust to shed insects.\n")
    engine = make_engine()

    with engine.open_index(writable=True) as index:
        first = engine.ingestor(index).ingest_paths([docs])
        assert (first.ingested, first.unchanged) == (2, 0)
        before = ids_everywhere(index)
        assert before[0] == before[1] == before[2] and len(before[0]) == 2

    with engine.open_index(writable=True) as index:
        again = engine.ingestor(index).ingest_paths([docs])
        assert (again.ingested, again.unchanged, again.chunks_added) == (0, 2, 0)
        assert ids_everywhere(index) == before

    (docs / "a.md").write_text("# Alpacas\n\nAlpacas spit when they are annoyed by rivals.\n")
    with engine.open_index(writable=True) as index:
        changed = engine.ingestor(index).ingest_paths([docs])
        assert (changed.ingested, changed.unchanged) == (1, 1)
        assert changed.chunks_reused == 0  # the one chunk's text changed, so it was embedded afresh
        store, faiss, bm25 = ids_everywhere(index)
        assert store == faiss == bm25 and len(store) == 2 and store != before[0]
        hits = engine.searcher(index).search("alpaca humming", k=5)
        assert all("hum to communicate" not in h.chunk.text for h in hits)
        assert any("spit" in h.chunk.text for h in hits)

    # Removal by path, seen by a fresh reader: gone from the store, FAISS and BM25 alike.
    with engine.open_index(writable=True) as index:
        doc = index.find_document(str((docs / "b.md").resolve()))
        assert doc is not None
        assert index.remove_document(doc.id) == 1
        index.flush()
    with engine.open_index() as index:
        store, faiss, bm25 = ids_everywhere(index)
        assert store == faiss == bm25 and len(store) == 1
        assert index.search_bm25("bison wallow dust", 5) == []
        assert [d.title for d in index.documents()] == ["Alpacas"]


def test_another_embedder_is_refused(tmp_path: Path, make_engine) -> None:
    engine = make_engine()
    with engine.open_index(writable=True) as index:
        index.flush()
    other = dict(engine.embedder_info(), name="some-other-model")
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'all-MiniLM-L6-v2'"):
        LocalIndex(tmp_path / "index", other, engine.analyzer)


def test_second_writer_is_refused(make_engine) -> None:
    engine = make_engine()
    with engine.open_index(writable=True):
        with pytest.raises(IndexBusyError):
            engine.open_index(writable=True)


def test_stale_derived_files_are_caught_up_from_the_store(tmp_path: Path, make_engine) -> None:
    """A store newer than the published FAISS/BM25 files (a crash before publish) is repaired on open."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "c.txt").write_text("Capybaras are the largest living rodents.\n")
    engine = make_engine()
    with engine.open_index(writable=True) as index:
        engine.ingestor(index).ingest_paths([docs])
    (docs / "d.txt").write_text("Dormice hibernate for up to seven months.\n")
    with engine.open_index(writable=True) as index:
        ingestor = engine.ingestor(index)
        parsed = engine.parser.parse(str((docs / "d.txt").resolve()), (docs / "d.txt").read_bytes(), "text")
        chunked = ingestor.chunker.chunk(parsed)
        texts = [c.text for c in chunked.chunks]
        # straight into the store, no flush: the manifest still points at the older generation
        index.store.replace_documents([("d", chunked, engine.embedder.embed(texts), texts)])
    with engine.open_index() as index:
        assert index.manifest["generation"] < index.stats()["generation"]
        hits = engine.searcher(index).search("how long do dormice hibernate", k=1)
        assert "seven months" in hits[0].chunk.text
        store, faiss, bm25 = ids_everywhere(index)
        assert store == faiss == bm25
        vec = index.vectors([hits[0].chunk.id])
        assert np.isclose(np.linalg.norm(vec), 1.0, atol=1e-3)


def test_editing_one_section_reembeds_only_that_chunk(tmp_path: Path, make_engine, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    sections = {name: f"## {name}\n\n" + f"The {name.lower()} section says something specific. " * 15
                for name in ("Origins", "Methods", "Results")}
    (docs / "paper.md").write_text("# Paper\n\n" + "\n\n".join(sections.values()))
    engine = make_engine()
    with engine.open_index(writable=True) as index:
        first = engine.ingestor(index).ingest_paths([docs])
    assert first.chunks_added == 3 and first.chunks_reused == 0
    sections["Methods"] = "## Methods\n\nWe changed the method entirely: samples were frozen first.\n"
    (docs / "paper.md").write_text("# Paper\n\n" + "\n\n".join(sections.values()))
    with engine.open_index(writable=True) as index:
        second = engine.ingestor(index).ingest_paths([docs])
        assert (second.chunks_added, second.chunks_reused) == (3, 2)
        rows = index.chunks(index.chunk_ids())
        # Reused vectors are exactly what the embedder gives for the stored text.
        embed_texts = [engine.ingestor(index).contextualizer.embed_text(r.to_chunk()) for r in rows.values()]
        stored = index.vectors(list(rows))
        assert np.allclose(stored, embedder.embed(embed_texts), atol=1e-4)


def test_bm25_neighbours_widen_what_a_chunk_matches_and_apply_without_reembedding(
        tmp_path: Path, make_engine) -> None:
    """A chunk's BM25 entry can hold its neighbours' text; changing that rebuilds only BM25, and a
    reader searches what the writer published, whatever its own setting."""
    docs = tmp_path / "docs"
    docs.mkdir()

    def filler(name: str) -> str:
        return f"The {name} section says something specific. " * 15

    (docs / "paper.md").write_text(
        "# Paper\n\n"
        f"## Origins\n\nThe zeppelin came first. {filler('origins')}\n\n"
        f"## Methods\n\n{filler('methods')}\n\n"
        f"## Results\n\nThe saffron came last. {filler('results')}\n")
    engine = make_engine()
    engine.settings.index.bm25_neighbours = 0
    with engine.open_index(writable=True) as index:
        engine.ingestor(index).ingest_paths([docs])
        rows = index.chunks(index.chunk_ids())
        by_section = {r.headings[-1]: cid for cid, r in rows.items()}
        assert len(by_section) == 3
        assert by_section["Methods"] not in [cid for cid, _ in index.search_bm25("zeppelin saffron", 5)]
        faiss_file = index.manifest["faiss_file"]

    engine.settings.index.bm25_neighbours = 1
    with engine.open_index(writable=True) as index:
        index.flush()  # no documents changed: only BM25 is rebuilt and published
        assert index.manifest["bm25"]["neighbours"] == 1 and index.manifest["faiss_file"] == faiss_file
        assert index.search_bm25("zeppelin saffron", 5)[0][0] == by_section["Methods"]

    engine.settings.index.bm25_neighbours = 0
    with engine.open_index() as index:
        assert index.search_bm25("zeppelin saffron", 5)[0][0] == by_section["Methods"]
        methods = index.chunks([by_section["Methods"]])[by_section["Methods"]]
        assert "zeppelin" not in methods.text and "saffron" not in methods.text  # quotes stay the chunk's own
