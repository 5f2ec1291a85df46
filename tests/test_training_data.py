"""The data `citewise train` learns from: synthetic questions held to verbatim answers and checked near misses,
a resumable store beside the index, the user's labels mapped onto chunks, and hard negatives from the search."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

from generate.engine import Engine
from ingest.core.errors import ConfigError, IndexBusyError, IndexStateError
from ingest.core.generator import Message
from ingest.core.settings import SearchSettings, Settings
from ingest.core.settings.train import TrainSettings
from ingest.core.text import normalize_ws
from ingest.core.types import ChunkRow, Element, ParsedDocument
from ingest.store.local_index import LocalIndex
from retrieval.training.item_store import ItemStore
from retrieval.training.items import TrainingItem
from retrieval.training.labeled_data import LabeledData, query_folds
from retrieval.training.negative_miner import NegativeMiner
from retrieval.training.near_miss_edits import swap_candidates
from retrieval.training.pair_builder import PairBuilder
from retrieval.training.question_writer import QuestionWriter
from retrieval.training.training_run import TrainResult, TrainingRun
from retrieval.training.verbatim import locate_answer
from tests.fakes import FakeGenerator, HashingEmbedder

HARBOUR = [
    "The harbour of Port Vell was built in 1842 by the engineer Ana Soler for the fishing fleet. It has two "
    "stone piers and a lighthouse at the end of the eastern pier.",
    "Winter storms closed the harbour twice, in 1901 and in 1913. After the second storm the town raised the "
    "western pier by three metres and added a breakwater of granite blocks.",
]
ORCHARD = [
    "The orchard behind the mill grows apples and pears on terraces facing south. The trees were planted by "
    "the Ferrer family in 1920 and are still picked by hand every autumn.",
    "Cider from the orchard is pressed in the old mill in October. Most of it is sold at the Saturday market "
    "in the square, the rest is kept in oak barrels for the winter.",
]


def _doc(source: str, title: str, paragraphs: list[str]) -> ParsedDocument:
    elements = [Element(title, "Title", 0)] + [Element(p, "NarrativeText") for p in paragraphs]
    return ParsedDocument(source=source, title=title, elements=elements, format="md",
                          content_hash=hashlib.sha256("".join(paragraphs).encode()).hexdigest())


def tiny_index(tmp_path: Path, docs: list[ParsedDocument]) -> tuple[Engine, Path]:
    """A real index on disk (hashing embedder, no parser), one chunk per paragraph."""
    settings = Settings()
    settings.index.path = tmp_path / "index"
    settings.ingest.chunk_tokens = 40
    engine = Engine(settings, embedder=HashingEmbedder(), fast_model=FakeGenerator())
    with engine.open_index(writable=True) as index:
        summary = engine.ingestor(index).ingest_documents(docs)
        assert not summary.failed
    return engine, settings.index.path


def chunks_of(index: LocalIndex) -> list[ChunkRow]:
    return sorted(index.chunks(index.chunk_ids()).values(), key=lambda r: (r.doc_id, r.start))


def copy_first_words(n: int) -> Callable[[list[Message]], str]:
    """A model that answers with the passage's first `n` words (verbatim) and, asked for a near miss, edits
    "this" into "that"."""

    def reply(messages: list[Message]) -> str:
        prompt = messages[-1]["content"]
        passage = prompt.split("Passage:\n", 1)[1].split("\n\n", 1)[0]
        if "Pick one word" in prompt:
            return json.dumps({"word": "this", "replacement": "that"})
        return json.dumps({"items": [{"answer": " ".join(passage.split()[:n]), "question": "What is this about?"}]})

    return reply


@pytest.mark.unit
def test_an_answer_the_chunk_does_not_hold_verbatim_is_dropped(tmp_path: Path) -> None:
    engine, path = tiny_index(tmp_path, [_doc("/d/harbour.md", "Harbour", HARBOUR)])
    with engine.open_index(path) as index:
        chunk = next(r for r in chunks_of(index) if "1842" in r.text)
        model = FakeGenerator([{"items": [
            {"answer": "built in   1842 by\nthe engineer Ana Soler.", "question": "Who built the harbour? Tell me."},
            {"answer": "built in 1843 by the engineer", "question": "When was it built?"},
            {"answer": "two wooden piers", "question": "What does the harbour have?"},
            # the case may differ ("It has" mid-passage), and quotes around the copy are not part of it
            {"answer": "'it has two stone piers'", "question": "What does the harbour have at its entrance?"}]}])
        writer = QuestionWriter(model, TrainSettings(questions_per_chunk=4, near_misses_per_chunk=0))
        items, dropped = writer.items_for(chunk)
    # slices of the chunk, in its own wording
    assert [it.answer for it in items] == ["built in 1842 by the engineer Ana Soler", "It has two stone piers"]
    assert items[0].question == "Who built the harbour?" and items[0].answerable and items[0].origin == "synthetic"
    assert items[0].sentence == HARBOUR[0].split(" It has")[0]
    assert items[1].sentence == "It has two stone piers and a lighthouse at the end of the eastern pier."
    assert dropped == {"answer not verbatim in the chunk": 2}
    assert model.schemas[0] is not None and model.schemas[0]["properties"]["items"]["maxItems"] == 4


@pytest.mark.unit
def test_a_copied_answer_is_found_whatever_quote_marks_and_case_it_was_written_with() -> None:
    text = 'Rivals said the channels were "locked up" by\nthe deal. The Normans came later.'
    for answer, found in [("'locked up' by the deal", '"locked up" by\nthe deal'), ("the Normans came", "The Normans came"),
                          ("“The Normans”", "The Normans"), ("the Danes came", None), ("", None)]:
        span = locate_answer(text, answer)
        assert (text[span[0]:span[1]] if span else None) == found, answer


@pytest.mark.unit
def test_a_near_miss_is_kept_only_when_the_model_says_the_chunk_does_not_answer_it(tmp_path: Path) -> None:
    engine, path = tiny_index(tmp_path, [_doc("/d/harbour.md", "Harbour", HARBOUR)])
    with engine.open_index(path) as index:
        chunk = next(r for r in chunks_of(index) if "1842" in r.text)
        model = FakeGenerator([{"items": [{"answer": "Ana Soler", "question": "Who built the harbour?"},
                                          {"answer": "1842", "question": "When was the harbour built?"},
                                          {"answer": "a lighthouse", "question": "What is at the end of the eastern pier?"},
                                          {"answer": "two stone piers", "question": "Who has two stone piers?"}]},
                               {"word": "HARBOUR", "replacement": "cathedral"}, {"word": "1842", "replacement": "1900"},
                               {"word": "eastern", "replacement": "western"}, {"word": "Who", "replacement": "When"}],
                              yes={"western": 0.8, "When has": 0.3, "built the harbour": 0.45})
        # nothing to swap (no names, dates or numbers found): every near miss is the model's own edit
        writer = QuestionWriter(model, TrainSettings(questions_per_chunk=4, near_misses_per_chunk=4),
                                tagger=lambda _: [])
        items, dropped = writer.items_for(chunk)
    near = [it for it in items if not it.answerable]
    assert [it.question for it in near] == ["Who built the cathedral?"]  # an edit of a question the chunk answers
    assert near[0].answer is None and near[0].sentence is None and near[0].chunk_id == chunk.id
    # "When has two stone piers?" is under one half, but not under "Who has two stone piers?", its original
    assert dropped == {"near miss the chunk answers": 1, "edit not applicable to the question": 1,
                       "near miss judged no less answerable than its original": 1}
    judged = [m[-1]["content"] for m in model.calls if "Does the passage answer" in m[-1]["content"]]
    assert len(judged) == 5 and all(j.startswith(f"Passage:\n{chunk.text}") for j in judged)
    assert "Who built the harbour?" in model.calls[1][-1]["content"]


TREATY = ("The treaty of Saint-Clair was signed in 911 by King Charles and Rollo. In 1066 Duke William crossed "
          "to England with his fleet.")
TREATY_ENTITIES = [("Saint-Clair", "GPE"), ("911", "DATE"), ("King Charles", "PERSON"), ("Rollo", "PERSON"),
                   ("1066", "DATE"), ("Duke William", "PERSON"), ("England", "GPE")]


def table_tagger(table: dict[str, list[tuple[str, str]]]) -> Callable[[str], list[tuple[str, str]]]:
    """Entities by the first key found in the text: a deterministic stand-in for spaCy's recognizer."""
    return lambda text: next((ents for key, ents in table.items() if key in text), [])


@pytest.mark.unit
def test_near_misses_swap_a_name_or_date_for_another_of_the_chunk_and_the_model_judges_each(tmp_path: Path) -> None:
    engine, path = tiny_index(tmp_path, [_doc("/d/treaty.md", "Treaty", [TREATY])])
    # the recognizer misses "Rollo" in the short question; the passage names its kind
    tagger = table_tagger({"The treaty of Saint-Clair was": TREATY_ENTITIES,
                           "Who signed": [("Saint-Clair", "GPE"), ("911", "DATE")],
                           "When did Rollo": [("King Charles", "PERSON")]})
    answered = {"items": [{"answer": "King Charles and Rollo", "question": "Who signed the treaty of Saint-Clair in 911?"},
                          {"answer": "911", "question": "When did Rollo sign the treaty with King Charles?"},
                          {"answer": "Duke William crossed", "question": "What did the fleet carry?"}]}
    # P(yes) by a phrase of the judged question: the first swap still reads as answered (0.7), each original
    # is judged more answerable than what is kept (0.4, 0.45, 0.3 against 0.1 for every other swap)
    yes = {"of England in 911": 0.7, "Saint-Clair in 911": 0.4, "Rollo sign the treaty with King": 0.45,
           "the fleet carry": 0.3}
    settings = TrainSettings(questions_per_chunk=3, near_misses_per_chunk=3)
    with engine.open_index(path) as index:
        chunk = next(r for r in chunks_of(index) if "911" in r.text)
        model = FakeGenerator([answered, {"word": "fleet", "replacement": "army"}], yes=yes)
        items, dropped = QuestionWriter(model, settings, tagger=tagger).items_for(chunk)
    near = [it.question for it in items if not it.answerable]
    assert near == ["Who signed the treaty of Saint-Clair in 1066?",  # a date for another date of the chunk
                    "When did King Charles sign the treaty with Rollo?",  # two names of one kind exchanged
                    "What did the army carry?"]  # nothing to swap: the model's one-word edit
    assert dropped == {"near miss the chunk answers": 1}  # "...treaty of England in 911?"
    edits = [m for m in model.calls if "Pick one word" in m[-1]["content"]]
    assert len(edits) == 1 and "What did the fleet carry?" in edits[0][-1]["content"]
    assert "entity swaps" in QuestionWriter(model, settings, tagger=tagger).recipe()["near_miss_edits"]


@pytest.mark.unit
def test_a_swap_keeps_the_kind_and_the_questions_own_words() -> None:
    rng = random.Random(3)
    question = "In what century was the Latin name of the Duchy of Normandy first recorded?"
    passage = [("the 10th century", "DATE"), ("Latin", "NORP"), ("French", "NORP"), ("first", "ORDINAL"),
               ("the Duchy of Normandy", "ORG"), ("the Church", "ORG"), ("what century", "DATE")]
    q_entities = [("what century", "DATE"), ("Latin", "NORP"), ("the Duchy of Normandy", "ORG"), ("first", "ORDINAL")]
    out = swap_candidates(question, q_entities, passage, rng, limit=10)
    # "what century" and "first" are the question's own words; a language for a language, an org for an org,
    # the question keeps its article
    assert sorted(out) == ["In what century was the French name of the Duchy of Normandy first recorded?",
                           "In what century was the Latin name of the Church first recorded?"]
    assert swap_candidates(question, q_entities, passage, random.Random(3), limit=1) == out[:1]
    assert swap_candidates("What is this about?", [], passage, rng) == []


@pytest.mark.unit
def test_an_interrupted_run_resumes_without_redoing_or_repeating_chunks(tmp_path: Path) -> None:
    engine, path = tiny_index(tmp_path, [_doc("/d/harbour.md", "Harbour", HARBOUR),
                                         _doc("/d/orchard.md", "Orchard", ORCHARD)])
    settings = TrainSettings(synthetic_chunks=4, questions_per_chunk=1, near_misses_per_chunk=1)
    with engine.open_index(path) as index:
        order = QuestionWriter(FakeGenerator(), settings, min_chars=50).sample(index)
        texts = {r.id: r.text for r in chunks_of(index)}
        assert len(order) == 4 and len({index.chunks([c])[c].doc_id for c in order[:2]}) == 2  # spread over docs
        killer = FakeGenerator(reply=copy_first_words(3), crash_on=texts[order[2]][:30], yes={"is this": 0.3})
        with pytest.raises(KeyboardInterrupt), ItemStore.for_index(path) as store:
            QuestionWriter(killer, settings, min_chars=50).write(index, store)
        store = ItemStore.for_index(path)
        assert store.done_chunks() == set(order[:2])
        # what a kill can also leave: a chunk's items appended but the chunk not yet marked done, and a torn line
        with open(store.items_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(TrainingItem("Half?", order[2], "x", True, "synthetic", "a", "a").to_json()) + "\n")
            fh.write('{"question": "Torn li')
        model = FakeGenerator(reply=copy_first_words(3), yes={"is this": 0.3})
        with ItemStore.for_index(path) as store:
            summary = QuestionWriter(model, settings, min_chars=50).write(index, store)
    assert summary.chunks_resumed == 2 and summary.chunks_done == 2
    asked = {c for c in order if any(texts[c][:30] in m[-1]["content"] for m in model.calls)}
    assert asked == set(order[2:])  # the chunks done before the kill were not asked about again
    items = ItemStore.for_index(path).items()
    per_chunk = [(it.chunk_id, it.answerable) for it in items]
    assert sorted(per_chunk) == sorted({(c, a) for c in order for a in (True, False)})  # each once, no duplicates
    assert all(it.question != "Half?" for it in items)
    assert store.items_path.read_bytes().endswith(b"\n")
    meta = ItemStore.for_index(path).meta()
    assert meta is not None and meta["counts"]["items"] == len(items) and sorted(meta["done_chunks"]) == sorted(order)
    assert meta["recipe"]["model"] == "fake" and meta["recipe"]["backend"] == "FakeGenerator"
    assert "Passage" not in json.dumps(meta["recipe"]["prompts"]) and meta["settings"]["synthetic_chunks"] == 4


@pytest.mark.unit
def test_a_damaged_or_foreign_training_set_is_a_clear_error(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "training")
    store.begin({"prompt_version": 1, "model": "a"}, {})
    store.append(7, [TrainingItem("Q?", 7, "d", True, "synthetic", "x", "x")])
    with pytest.raises(IndexBusyError):
        ItemStore(tmp_path / "training").begin({"prompt_version": 1, "model": "a"}, {})
    store.close()
    with pytest.raises(IndexStateError, match="differs in: model"):
        ItemStore(tmp_path / "training").begin({"prompt_version": 1, "model": "b"}, {})
    fresh = ItemStore(tmp_path / "training")
    assert fresh.begin({"prompt_version": 1, "model": "b"}, {}, fresh=True) == set() and fresh.items() == []
    fresh.close()
    store.meta_path.write_text('{"version": 1, "done_chu')
    with pytest.raises(IndexStateError, match=str(store.meta_path)):
        ItemStore(tmp_path / "training").begin({"prompt_version": 1, "model": "b"}, {})
    store.meta_path.write_text(json.dumps({"version": 1, "recipe": {}, "done_chunks": [],
                                           "counts": {"items": 0, "answerable": 0, "unanswerable": 0, "dropped": {}}}))
    store.items_path.write_text('{"broken": \n{"question": "Q?"}\n')
    with pytest.raises(IndexStateError, match=f"{store.items_path}:1"):
        ItemStore(tmp_path / "training").items()


@pytest.mark.unit
def test_removing_a_document_drops_the_training_questions_written_about_it(tmp_path: Path) -> None:
    """The questions copy sentences of their chunk verbatim: `docs rm` must not leave them in the index folder.
    While a training run holds the set, the removal says so, and that run's next start drops them first."""
    docs = [_doc("/d/harbour.md", "Harbour", HARBOUR), _doc("/d/orchard.md", "Orchard", ORCHARD)]
    settings = TrainSettings(synthetic_chunks=6, questions_per_chunk=1, near_misses_per_chunk=0)
    model = FakeGenerator(reply=copy_first_words(4))
    engine, path = tiny_index(tmp_path, docs)
    with engine.open_index(path) as index, ItemStore.for_index(path) as store:
        QuestionWriter(model, settings, min_chars=5).write(index, store)
        harbour = index.find_document("/d/harbour.md")
        assert harbour is not None
    written = ItemStore.for_index(path).items()
    kept = [it for it in written if it.doc_id != harbour.id]
    assert kept and len(kept) < len(written)
    with engine.open_index(path, writable=True) as index:
        removal = engine.remove_document(index, harbour.id)
    gone = len(written) - len(kept)
    assert removal.chunks == gone and removal.training_items == {"forgotten": gone} and removal.warnings() == []
    store = ItemStore.for_index(path)
    assert store.items() == kept
    assert "harbour" not in store.items_path.read_text().lower() and "1842" not in store.items_path.read_text()
    meta = store.meta()
    assert meta is not None and meta["counts"]["items"] == len(kept) and meta["forgotten"] == gone

    engine, path = tiny_index(tmp_path / "busy", docs)
    with engine.open_index(path) as index, ItemStore.for_index(path) as store:
        QuestionWriter(model, settings, min_chars=5).write(index, store)
        harbour = index.find_document("/d/harbour.md")
        assert harbour is not None
        with engine.open_index(path, writable=True) as writable:  # while a run holds the set
            removal = engine.remove_document(writable, harbour.id)
    assert "citewise train" in removal.training_items["skipped"]
    assert removal.warnings() == ["training questions not updated: " + removal.training_items["skipped"]]
    assert any(it.doc_id == harbour.id for it in ItemStore.for_index(path).items())
    with engine.open_index(path) as index, ItemStore.for_index(path) as store:
        QuestionWriter(model, settings, min_chars=5).write(index, store)
    assert [it for it in ItemStore.for_index(path).items() if it.doc_id == harbour.id] == []


@pytest.mark.unit
def test_beir_labels_map_to_the_chunk_holding_their_evidence(tmp_path: Path) -> None:
    engine, path = tiny_index(tmp_path, [_doc("beir://tiny/h1", "Harbour", HARBOUR),
                                         _doc("beir://tiny/o1", "Orchard", ORCHARD)])
    data = tmp_path / "tiny"
    (data / "qrels").mkdir(parents=True)
    storm = HARBOUR[1].split(". ")[0] + "."
    raised = HARBOUR[1].split(". ")[1]
    corpus = [{"_id": "h1", "title": "Harbour", "text": " ".join(HARBOUR),
               "metadata": {"sentences": [*HARBOUR[0].split(". "), storm, raised]}},
              {"_id": "o1", "title": "Orchard", "text": " ".join(ORCHARD)}, {"_id": "gone", "title": "", "text": "x"}]
    queries = [{"_id": "1", "text": "Storms closed the harbour.", "metadata": {"evidence": {
                   "h1": {"label": "SUPPORT", "sentences": [2, 3]}}}},
               {"_id": "2", "text": "Cider is sold at the Saturday market."},
               {"_id": "3", "text": "Something nobody indexed."}, {"_id": "4", "text": "No positive label."}]
    (data / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (data / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (data / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n1\th1\t1\n2\to1\t1\n3\tgone\t1\n4\to1\t0\n")
    with engine.open_index(path) as index:
        rows = chunks_of(index)
        loader = LabeledData(index)
        labeled = loader.load(data)
        storm_chunk = next(r for r in rows if "1901" in r.text)
        builder = PairBuilder(index, siblings=5)
        # every sentence the labels name is evidence: none becomes the first one's negative sibling
        siblings = builder._siblings(labeled["1"][0], storm_chunk, builder._sentences(storm_chunk))
        first_only = replace(labeled["1"][0], more_evidence=())
        assert siblings == [] and builder._siblings(first_only, storm_chunk, builder._sentences(storm_chunk)) == [raised]
    market_chunk = next(r for r in rows if "Saturday" in r.text)
    assert list(labeled) == ["1", "2"]
    assert labeled["1"] == [TrainingItem("Storms closed the harbour.", storm_chunk.id, storm_chunk.doc_id, True,
                                         "qrels", sentence=storm, more_evidence=(raised,))]
    assert TrainingItem.from_json(json.loads(json.dumps(labeled["1"][0].to_json()))) == labeled["1"][0]
    assert labeled["2"][0].chunk_id == market_chunk.id and labeled["2"][0].sentence is None  # no evidence given
    assert loader.summary.dropped == {"gold document not in the index": 1} and loader.summary.items == 2
    with pytest.raises(ConfigError, match="no qrels/test.tsv"):
        LabeledData(index).load(data, "test")
    (data / "queries.jsonl").write_text('{"_id": "1", "text": "ok"}\nnot json\n')
    with pytest.raises(ConfigError, match="queries.jsonl:2"):
        LabeledData(index).load(data)


@pytest.mark.unit
def test_squad_labels_map_answers_and_unanswerable_questions_to_chunks(tmp_path: Path) -> None:
    engine, path = tiny_index(tmp_path, [_doc("/data/docs/Harbour.md", "Harbour", HARBOUR)])
    data = tmp_path / "squad"
    (data / "docs").mkdir(parents=True)
    md = "# Harbour\n\n" + "\n\n".join(HARBOUR) + "\n"
    (data / "docs" / "Harbour.md").write_text(md)
    granite = md.index("granite blocks")
    questions = [
        {"id": "a", "question": "What was the breakwater made of?", "doc": "Harbour.md", "paragraph": 1,
         "answerable": True, "answers": [{"text": "granite blocks", "start": granite}]},
        {"id": "b", "question": "Who painted the lighthouse?", "doc": "Harbour.md", "paragraph": 0,
         "answerable": False, "answers": []},
        {"id": "c", "question": "Wrong offset?", "doc": "Harbour.md", "paragraph": 1, "answerable": True,
         "answers": [{"text": "granite blocks", "start": 3}]},
        {"id": "d", "question": "Elsewhere?", "doc": "Orchard.md", "paragraph": 0, "answerable": False},
        {"id": "e", "question": "No answer given?", "doc": "Harbour.md", "paragraph": 0, "answerable": True}]
    (data / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    with engine.open_index(path) as index:
        rows = chunks_of(index)
        loader = LabeledData(index)
        labeled = loader.load(data)
    first, second = (next(r for r in rows if key in r.text) for key in ("1842", "1913"))
    a, b = labeled["a"][0], labeled["b"][0]
    assert (a.chunk_id, a.answer, a.answerable, a.origin) == (second.id, "granite blocks", True, "squad")
    assert a.sentence is not None and a.sentence.startswith("After the second storm") and a.sentence in second.text
    assert (b.chunk_id, b.answerable, b.answer) == (first.id, False, None)
    assert set(labeled) == {"a", "b"}
    assert loader.summary.dropped == {"answer offset does not match the dataset file": 1,
                                      "gold document not in the index": 1, "answerable question without an answer": 1}


@pytest.mark.unit
def test_query_folds_are_seeded_disjoint_and_independent_of_order() -> None:
    ids = [str(i) for i in range(23)]
    folds = query_folds(ids, 4, seed=13)
    assert sorted(q for f in folds for q in f) == sorted(ids) and {len(f) for f in folds} == {5, 6}
    assert query_folds(list(reversed(ids)), 4, seed=13) == folds
    assert query_folds(ids, 4, seed=14) != folds
    with pytest.raises(ConfigError):
        query_folds(ids, 1, seed=13)


@pytest.mark.unit
def test_negatives_are_what_the_search_ranks_high_except_the_source_and_gold_documents(tmp_path: Path) -> None:
    pier = "The western pier of the harbour was raised by the town after a storm."
    engine, path = tiny_index(tmp_path, [_doc("/d/harbour.md", "Harbour", HARBOUR),
                                         _doc("/d/orchard.md", "Orchard", ORCHARD),
                                         _doc("/d/piers.md", "Piers", [pier])])
    with engine.open_index(path) as index:
        rows = chunks_of(index)
        storm = next(r for r in rows if "1913" in r.text)
        piers = next(r for r in rows if pier in r.text)
        question = "Which pier of the harbour did the town raise after the storm?"
        items = [TrainingItem(question, storm.id, storm.doc_id, True, "synthetic", "western pier", "x"),
                 TrainingItem(question + " ", storm.id, storm.doc_id, False, "synthetic"),
                 TrainingItem(question, storm.id, storm.doc_id, True, "qrels")]
        miner = NegativeMiner.fused(engine.pipeline_factory(index), SearchSettings(), hard_negatives=2)
        mined, summary = miner.mine(items)
    harbour_chunks = {r.id for r in rows if r.doc_id == storm.doc_id}
    assert all(storm.id not in it.negatives and 0 < len(it.negatives) <= 2 for it in mined)
    assert piers.id not in mined[0].negatives  # it holds the answer "western pier"
    assert mined[1].negatives[0] == piers.id  # the near miss has no answer to protect: the closest chunk
    assert not harbour_chunks & set(mined[2].negatives)  # a qrels label makes its whole document relevant
    assert [(it.question, it.chunk_id) for it in mined] == [(it.question, it.chunk_id) for it in items]
    assert summary.dropped["candidates skipped: hold the answer"] >= 1


def test_the_small_model_writes_checked_items_for_two_chunks_of_a_real_index(
        make_engine: Callable[..., Engine], index_copy: Path) -> None:
    engine = make_engine()
    settings = TrainSettings(synthetic_chunks=2, questions_per_chunk=1, near_misses_per_chunk=1)
    with engine.open_index(index_copy) as index, ItemStore.for_index(index_copy) as store:
        writer = QuestionWriter(engine.fast_model, settings, max_tokens=64, passage_chars=500)
        summary = writer.write(index, store)
        rows = index.chunks(list(store.done_chunks()))
    items = ItemStore.for_index(index_copy).items()
    assert summary.chunks_done == 2 and len(rows) == 2 and summary.items == len(items) >= 1
    for it in items:
        text = rows[it.chunk_id].text
        if it.answerable:
            assert it.answer and it.answer in text and it.sentence and it.answer in it.sentence
            assert normalize_ws(it.sentence) in normalize_ws(text)
        assert it.question.endswith("?") and it.origin == "synthetic"
    meta: dict[str, Any] | None = ItemStore.for_index(index_copy).meta()
    assert meta is not None and meta["recipe"]["backend"] == "LlamaCppGenerator"


@pytest.mark.unit
def test_runs_sharing_a_synthetic_set_write_it_once(tmp_path: Path) -> None:
    """An evaluation's folds (`--train labels+synthetic`) each train in a folder of their own but read one
    synthetic set: written about the corpus, never from labels, so the same for every fold, and minutes to write."""
    # long words: a chunk must reach 200 characters to be asked about, within the tiny index's 40 tokens
    long = ("Harbourmasters' administrative correspondence concerning breakwater reconstruction, lighthouse "
            "maintenance, pier reinforcement, granite procurement and fishing-fleet accommodation survives intact.")
    engine, path = tiny_index(tmp_path, [_doc("/d/harbour.md", "Harbour", [long]),
                                         _doc("/d/orchard.md", "Orchard", [long.replace("Harbour", "Orchard")])])
    settings = TrainSettings(synthetic_chunks=3, questions_per_chunk=1, near_misses_per_chunk=0)
    shared = tmp_path / "run" / "synthetic-data"
    models = [FakeGenerator(reply=copy_first_words(3)), FakeGenerator(reply=copy_first_words(3))]
    got = []
    with engine.open_index(path) as index:
        for fold, model in enumerate(models):
            run = TrainingRun(index, engine.pipeline_factory(index), settings, SearchSettings(),
                              lambda m=model: m, root=tmp_path / "run" / f"fold-{fold}", synthetic_root=shared)
            result = TrainResult()
            got.append(run.items(result, None, "train", synthetic=True, fresh=False, only_queries=None))
    assert models[0].calls and not models[1].calls  # the second fold resumed the whole set
    assert [it.question for it in got[0]] == [it.question for it in got[1]] and len(got[0]) == 2
    assert (shared / "training" / "items.jsonl").is_file()
    assert not (tmp_path / "run" / "fold-0" / "training").exists()
