"""Context modes: llm contexts stored apart from the text, cached, re-contextualized on a mode switch."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from eval.bench_context import _ColdPrompts
from generate.engine import Engine
from ingest.core.generator import Message
from ingest.llm_context import first_sentence
from ingest.pipeline import IngestSummary
from ingest.core.types import Chunk, ChunkedDocument, ParsedDocument
from ingest.store.docstore import SqliteDocStore
from ingest.store.local_index import LocalIndex
from tests.fakes import FakeGenerator
from tests.support import ids_everywhere, run_cli


def zorblax(messages: list[Message]) -> str:
    """What the fake fast model answers: names the passage's first words (a chunk prompt names its passage, a
    document-scope prompt only the document), then a second sentence the contextualizer must cut."""
    prompt = messages[-1]["content"]
    passage = (prompt.split("Passage:\n", 1)[1] if "Passage:\n" in prompt else prompt.split("Document: ", 1)[1]).split()
    return f"Zorblax context on {' '.join(passage[:3])}. A second sentence is cut"


def counting(**failures: str) -> FakeGenerator:
    """The fake fast model; `fail_on=` or `crash_on=` a document's text makes its calls fail."""
    return FakeGenerator(reply=zorblax, name="counting-fake", **failures)


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpacas\n\n## Voice\n\nThey hum to talk with the herd.\n\n"
                               "## Food\n\nThey graze on grass in the Andes.\n")
    (docs / "b.md").write_text("# Bison\n\nThey wallow in dust to shed insects.\n")
    return docs


def _william(tmp_path: Path) -> Path:
    """Two sections; the second never names its subject."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "w.md").write_text(
        "# William the Conqueror\n\nWilliam was the first Norman king of England, from 1066.\n\n"
        "## Succession\n\nHe was succeeded by his son, William Rufus, in 1087.\n")
    return docs


def _ingest(make_engine: Callable[..., Engine], docs: Path, mode: str, fake: FakeGenerator | None = None,
            **ingest: Any) -> tuple[IngestSummary, dict[tuple[str, int], str], dict[tuple[str, int], str],
                                    list[tuple[int, float]], Engine]:
    engine = make_engine(fake, context_mode=mode, parse_workers=0, **ingest)
    with engine.open_index(writable=True) as index:
        summary = engine.ingestor(index).ingest_paths([docs])
        rows = index.chunks(index.chunk_ids())
        store, faiss, bm25 = ids_everywhere(index)
        assert store == faiss == bm25
        found = index.search_bm25("zorblax", 10)
    contexts = {(r.source, r.ordinal): r.context for r in rows.values()}
    texts = {(r.source, r.ordinal): r.text for r in rows.values()}
    return summary, contexts, texts, found, engine


def test_mode_switches_recontextualize_incrementally_and_llm_contexts_are_cached(tmp_path: Path,
                                                                                   make_engine) -> None:
    docs = _docs(tmp_path)
    first, structure_ctx, texts, _, _ = _ingest(make_engine, docs, "structure")
    assert first.ingested == 2 and all(" > " in c or c in ("Alpacas", "Bison") for c in structure_ctx.values())
    n_chunks = len(structure_ctx)

    fake = counting()
    switched, llm_ctx, llm_texts, zorblax, engine = _ingest(make_engine, docs, "llm", fake)
    assert (switched.ingested, switched.unchanged, switched.recontextualized) == (0, 2, 2)  # no re-parse
    assert switched.contexts_generated == len(fake.calls) == n_chunks and fake.resets == 0
    assert llm_texts == texts  # the chunk text (what quotes come from) is untouched
    for key, context in llm_ctx.items():
        trail, sentence = context.split("\n")
        assert trail == structure_ctx[key] and sentence.startswith("Zorblax context on ")
        assert sentence.endswith(".") and "second sentence" not in sentence and "Zorblax" not in texts[key]
    assert len(zorblax) == n_chunks  # the generated context is BM25-indexed with its chunk
    manifest = json.loads((engine.settings.index.path / "manifest.json").read_text())
    assert manifest["context_mode"] == "llm" and manifest["context_model"] == engine.settings.models.fast

    again, again_ctx, _, _, _ = _ingest(make_engine, docs, "llm", fake)
    assert (again.recontextualized, again.contexts_generated, len(fake.calls)) == (0, 0, n_chunks)
    assert again_ctx == llm_ctx

    back, back_ctx, _, zorblax, _ = _ingest(make_engine, docs, "structure", fake)
    assert back.recontextualized == 2 and back_ctx == structure_ctx and zorblax == [] and len(fake.calls) == n_chunks

    # Back to llm: every sentence comes from the cache (same prompt, same model), none regenerated.
    cached, cached_ctx, _, _, _ = _ingest(make_engine, docs, "llm", fake)
    assert (cached.recontextualized, cached.contexts_cached, cached.contexts_generated) == (2, n_chunks, 0)
    assert len(fake.calls) == n_chunks and cached_ctx == llm_ctx

    nothing, none_ctx, _, _, _ = _ingest(make_engine, docs, "none", fake)
    assert nothing.recontextualized == 2 and set(none_ctx.values()) == {""}


def test_removing_a_document_drops_its_cached_context_sentences(tmp_path: Path, make_engine) -> None:
    """`docs rm` must leave no generated sentence about the document behind, while others stay cached."""
    docs = _docs(tmp_path)
    fake = counting()
    _, contexts, _, _, engine = _ingest(make_engine, docs, "llm", fake)
    about_a = {c.split("\n")[-1] for (source, _), c in contexts.items() if source.endswith("a.md")}
    about_b = {c.split("\n")[-1] for (source, _), c in contexts.items() if source.endswith("b.md")}
    assert about_a and about_b and not about_a & about_b

    def cached() -> set[str]:
        with engine.open_index(writable=False) as index:
            return {c for (c,) in index.store.conn.execute("SELECT context FROM context_cache")}

    assert cached() == about_a | about_b
    with engine.open_index(writable=True) as index:
        (doc,) = [d for d in index.documents() if d.source.endswith("a.md")]
        engine.remove_document(index, doc.id)
    assert cached() == about_b

    calls = len(fake.calls)
    again, again_ctx, _, _, _ = _ingest(make_engine, docs, "llm", fake)
    n_a = sum(source.endswith("a.md") for source, _ in contexts)
    assert (again.ingested, again.contexts_generated, again.contexts_cached) == (1, n_a, 0)
    assert len(fake.calls) == calls + n_a and again_ctx == contexts
    assert cached() == about_a | about_b

    # A new version of a file: the sentences about what it no longer says go, those it still carries stay.
    (docs / "a.md").write_text((docs / "a.md").read_text().replace("They graze on grass", "Llamas spit at"))
    changed, changed_ctx, _, _, _ = _ingest(make_engine, docs, "llm", fake)
    assert changed.ingested == 1
    now_a = {c.split("\n")[-1] for (source, _), c in changed_ctx.items() if source.endswith("a.md")}
    assert any("They graze" in s for s in about_a - now_a) and any("Llamas spit" in s for s in now_a)
    assert cached() == now_a | about_b

    # Switched to structure context, the sentences stay cached for a switch back; a removal still takes them.
    _ingest(make_engine, docs, "structure", fake)
    assert cached() == now_a | about_b
    with engine.open_index(writable=True) as index:
        (doc,) = [d for d in index.documents() if d.source.endswith("a.md")]
        engine.remove_document(index, doc.id)
    assert cached() == about_b


def test_a_store_from_before_cached_sentences_named_their_document_opens_and_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    new = SqliteDocStore(path)
    new.conn  # creates the file with today's schema
    new.close()
    old = sqlite3.connect(path)
    old.execute("ALTER TABLE context_cache DROP COLUMN source")
    old.execute("INSERT INTO context_cache VALUES ('k', 'An old sentence.', 0)")
    old.commit()
    old.close()
    store = SqliteDocStore(path)
    assert store.cached_contexts(["k"]) == {"k": "An old sentence."}
    store.cache_context("k2", "A new sentence.", "b.md")
    rows = set(store.conn.execute("SELECT key, source FROM context_cache"))
    assert rows == {("k", None), ("k2", "b.md")}
    # The old row names no document: removing the document whose chunk carries its sentence still finds it.
    text = "Alpacas hum."
    chunk = Chunk(0, 0, len(text), text, [], None, None, 3, context="Alpacas\nAn old sentence.")
    doc = ParsedDocument("a.md", "Alpacas", [], "md", "h1")
    store.replace_documents([("d1", ChunkedDocument(doc, text, [chunk], "llm"), np.zeros((1, 4)), ["e1"])])
    store.delete_document("d1")
    assert set(store.conn.execute("SELECT key, source FROM context_cache")) == {("k2", "b.md")}
    store.close()


def test_failed_generation_keeps_the_document_with_structure_context_and_retries_later(tmp_path: Path,
                                                                                        make_engine) -> None:
    docs = _docs(tmp_path)
    broken = counting(fail_on="Bison")
    summary, contexts, _, _, _ = _ingest(make_engine, docs, "llm", broken)
    assert summary.ingested == 2 and summary.failed == []
    (failure,) = summary.context_failed
    assert failure["path"].endswith("b.md") and "the fake model broke" in failure["reason"]
    bison = [c for (source, _), c in contexts.items() if source.endswith("b.md")]
    assert bison == ["Bison"]  # indexed, with the structure context
    assert all("Zorblax" in c for (source, _), c in contexts.items() if source.endswith("a.md"))

    fixed = counting()
    retry, retried, _, _, _ = _ingest(make_engine, docs, "llm", fixed)
    assert (retry.recontextualized, retry.context_failed, len(fixed.calls)) == (1, [], 1)  # only the failed one
    assert all("Zorblax" in c for c in retried.values())


def test_naive_path_resets_the_model_before_every_chunk(tmp_path: Path, make_engine) -> None:
    """The baseline `citewise eval bench-context` compares with: the same ingest, the KV cache dropped per call."""
    fake = counting()
    engine = make_engine(_ColdPrompts(fake), context_mode="llm", parse_workers=0)
    with engine.open_index(writable=True) as index:
        summary = engine.ingestor(index).ingest_paths([_docs(tmp_path)])
    assert fake.resets == len(fake.calls) == summary.contexts_generated > 0


@pytest.mark.unit
def test_first_sentence_is_one_line_with_a_full_stop() -> None:
    assert first_sentence("  The Normans\nruled. Then more") == "The Normans ruled."
    assert first_sentence("No stop at the end") == "No stop at the end."
    assert first_sentence("") == ""


def test_real_fast_model_writes_a_context_stored_apart_from_the_text(tmp_path: Path, make_engine) -> None:
    docs = _william(tmp_path)
    engine = make_engine(context_mode="llm", parse_workers=0, context_max_new_tokens=16)
    with engine.open_index(writable=True) as index:
        ingestor = engine.ingestor(index)
        summary = ingestor.ingest_paths([docs])
        rows = list(index.chunks(index.chunk_ids()).values())
        text = index.document_text(rows[0].doc_id)
    assert summary.context_failed == [] and summary.contexts_generated == len(rows) == 2
    for row in rows:
        trail, sentence = row.context.split("\n", 1)
        assert trail.startswith("William the Conqueror") and len(sentence.split()) >= 2
        assert row.text == text[row.start:row.end] and sentence not in text
    assert ingestor.contextualizer.usage.cached_tokens > 0  # the second chunk reused the document prefix


def test_cli_rejects_an_unknown_context_mode(tmp_path: Path) -> None:
    result = run_cli("ingest", str(tmp_path), "--index", str(tmp_path / "ix"), "--context-mode", "magic")
    assert result.returncode == 2
    assert "--context-mode: must be one of none, structure, llm, not 'magic'" in result.stderr
    result = run_cli("ingest", str(tmp_path), "--index", str(tmp_path / "ix"), "--context-scope", "page")
    assert result.returncode == 2 and "--context-scope: must be one of chunk, document, not 'page'" in result.stderr


def test_index_records_the_mode_per_document(tmp_path: Path, make_engine) -> None:
    docs = _docs(tmp_path)
    _ingest(make_engine, docs, "none")
    engine = make_engine(context_mode="none")
    with engine.open_index() as index:
        assert isinstance(index, LocalIndex)
        assert index.stale_context_documents("none") == []
        assert len(index.stale_context_documents("structure")) == 2


def test_skip_rule_calls_the_model_only_for_chunks_that_leave_their_subject_unnamed(tmp_path: Path,
                                                                                     make_engine) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "c.md").write_text("# Camels\n\n## Humps\n\nCamels store fat in their humps for the long trek.\n\n"
                               "## Feet\n\nThey walk on soft sand without sinking into it.\n")
    (docs / "b.md").write_text("# Bison\n\nThey wallow in dust to shed insects.\n")
    fake = counting()
    summary, by_chunk, texts, _, _ = _ingest(make_engine, docs, "llm", fake, context_skip="named")
    contexts = {next(w for w in ("store", "walk", "wallow") if w in texts[key]): c for key, c in by_chunk.items()}
    # "They walk..." never names camels: the model is asked. "Camels store..." names its subject, and
    # the bison document is one chunk: both keep the structure trail alone.
    assert (summary.contexts_generated, summary.contexts_skipped, len(fake.calls)) == (1, 2, 1)
    assert contexts["walk"].startswith("Camels > Feet\nZorblax context on")
    assert (contexts["store"], contexts["wallow"]) == ("Camels > Humps", "Bison")


def test_document_scope_makes_one_call_per_document_and_keeps_each_chunks_trail(tmp_path: Path,
                                                                                make_engine) -> None:
    docs = _docs(tmp_path)
    _, chunk_ctx, _, _, _ = _ingest(make_engine, docs, "llm", counting())
    fake = counting()
    summary, doc_ctx, _, _, engine = _ingest(make_engine, docs, "llm", fake, context_scope="document")
    # Switching scope re-contextualizes the stored documents without re-parsing them.
    assert (summary.ingested, summary.recontextualized) == (0, 2)
    assert summary.contexts_generated == len(fake.calls) == 2 < len(doc_ctx)
    by_doc: dict[str, set[str]] = {}
    for (source, ordinal), context in doc_ctx.items():
        trail, sentence = context.split("\n")
        assert trail == chunk_ctx[(source, ordinal)].split("\n")[0]
        by_doc.setdefault(source, set()).add(sentence)
    assert sorted(len(s) for s in by_doc.values()) == [1, 1]  # one sentence shared by a document's chunks
    assert {next(iter(s)) for s in by_doc.values()} == {"Zorblax context on Alpacas Alpacas Voice.",
                                                        "Zorblax context on Bison Bison They."}
    manifest = json.loads((engine.settings.index.path / "manifest.json").read_text())
    assert (manifest["context_mode"], manifest["context_scope"]) == ("llm", "document")


def test_real_fast_model_writes_one_document_sentence(tmp_path: Path, make_engine) -> None:
    docs = _william(tmp_path)
    engine = make_engine(context_mode="llm", parse_workers=0, context_max_new_tokens=16, context_scope="document")
    with engine.open_index(writable=True) as index:
        summary = engine.ingestor(index).ingest_paths([docs])
        rows = list(index.chunks(index.chunk_ids()).values())
    assert summary.context_failed == [] and summary.contexts_generated == 1 and len(rows) == 2
    trails, sentences = zip(*(row.context.split("\n", 1) for row in rows))
    assert len(set(trails)) == 2 and len(set(sentences)) == 1 and len(sentences[0].split()) >= 2


def test_slow_llm_batches_are_stored_by_time_so_a_crash_keeps_finished_documents(tmp_path: Path,
                                                                                   make_engine) -> None:
    docs = _docs(tmp_path)
    kept: dict[float, set[str]] = {}
    for seconds in (3600.0, 0.0):
        # the fast model's call on the Bison document never returns: a process killed mid-ingest
        engine = make_engine(counting(crash_on="Bison"), context_mode="llm", parse_workers=0, commit_every=16,
                             commit_every_s=seconds)
        engine.settings.index.path = tmp_path / f"index-{seconds:g}"
        with engine.open_index(writable=True) as index, pytest.raises(KeyboardInterrupt):
            engine.ingestor(index).ingest_paths([docs])
        with engine.open_index(writable=True) as index:  # reopening repairs the published files from the store
            store, faiss, bm25 = ids_everywhere(index)
            assert store == faiss == bm25
            kept[seconds] = {row.source.rsplit("/", 1)[-1] for row in index.chunks(sorted(store)).values()}
    # Both documents fit one 16-document batch: only the time bound stores Alpacas before the crash on Bison.
    assert kept == {3600.0: set(), 0.0: {"a.md"}}
