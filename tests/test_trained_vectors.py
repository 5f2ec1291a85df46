"""The corpus as the index's trained encoder embeds it: published by `citewise train` beside a bi-encoder scorer
when it ranks held-out questions at least as well, searched by the dense first stage, kept in step with ingest
and removal, and refused with a clear message when asked for and absent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from api.app import create_app
from generate.engine import Engine
from ingest.core.errors import ModelUnavailableError
from ingest.core.exclusive_lock import ExclusiveLock
from retrieval.dense_source import DenseSource
from retrieval.trained_scorer import TRAIN_LOCK, OnnxTrainedScorer, current_generation
from retrieval.trained_vectors import VECTORS_FILE, TrainedVectors
from retrieval.training.pair_builder import PairBuilder, chunk_passage
from retrieval.training.reembedding_trial import MIN_QUESTIONS, ReembeddingTrial
from retrieval.training.scorer_trainer import ScorerTrainer
from tests.servers import serving, shared_engine, small_settings, wait_job, wait_ready
from tests.support import FAST_TRAINING, engine_over, make_training_items, run_cli, run_probed

#: Three one-question steps: enough to move the encoder away from the embedder, a few seconds on 2 cores.
BI_ENCODER = FAST_TRAINING.model_copy(update={"scorer": "bi-encoder", "batch_size": 1})
NEW_DOC = ("The quokka census of Rottnest Island counted eleven thousand quokkas in the dunes, "
           "a record for the island's small wallabies.\n")


class Words:
    """A deterministic encoder: a unit vector of letter counts; records what it was asked to encode."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for i, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class Chunks:
    """An index of chunks by id whose generation moves with every change (what TrainedVectors reads of one)."""

    path = Path("fake-index")

    def __init__(self, texts: dict[int, str]) -> None:
        self.texts = dict(texts)
        self.gen = 1

    def generation(self) -> int:
        return self.gen

    def chunk_ids(self) -> list[int]:
        return sorted(self.texts)

    def chunks(self, ids: list[int]) -> dict[int, Any]:
        return {i: SimpleNamespace(context="", text=self.texts[i]) for i in ids if i in self.texts}

    def change(self, add: dict[int, str] | None = None, remove: tuple[int, ...] = ()) -> None:
        self.texts.update(add or {})
        for i in remove:
            del self.texts[i]
        self.gen += 1


@pytest.mark.unit
def test_trained_vectors_follow_the_index_they_were_encoded_from(tmp_path: Path) -> None:
    index = Chunks({1: "aaaa", 2: "bbbb", 3: "abab"})
    encode = Words()
    vectors = TrainedVectors.encode_corpus(index, encode, save_to=tmp_path)  # type: ignore[arg-type]
    assert [cid for cid, _ in vectors.search(index, ["aaa"], 3)[0]] == [1, 3, 2]  # type: ignore[arg-type]
    loaded = TrainedVectors.load(tmp_path, encode)
    assert loaded is not None and len(loaded) == 3 and not list(tmp_path.glob("*.partial*"))
    encode.seen.clear()
    (hit, score), = loaded.search(index, ["bbb"], 1)[0]  # type: ignore[arg-type]
    assert hit == 2 and score == pytest.approx(1.0) and encode.seen == ["bbb"]  # nothing re-encoded
    # a removal and an addition since: the removed chunk never comes back, only the new one is encoded
    index.change(add={4: "zzzz"}, remove=(2,))
    encode.seen.clear()
    loaded.warm_up(index)  # a server catches up before its first search
    assert encode.seen == ["zzzz"]
    ranked = loaded.search(index, ["zzzb"], 10)[0]  # type: ignore[arg-type]
    assert [cid for cid, _ in ranked][0] == 4 and 2 not in {cid for cid, _ in ranked} and len(ranked) == 3
    assert encode.seen == ["zzzz", "zzzb"]
    loaded.search(index, ["z"], 1)  # type: ignore[arg-type]
    assert encode.seen[-1] == "z"  # the same generation: nothing encoded again
    # stored caught up (what an ingest does), the next reader starts there: it encodes nothing but its queries
    index.change(add={5: "yyyy"})
    assert loaded.catch_up(index) == (0, 1)
    loaded.save(tmp_path)
    again = TrainedVectors.load(tmp_path, encode)
    assert again is not None and len(again) == 4 and not list(tmp_path.glob("*.partial*"))
    encode.seen.clear()
    assert [cid for cid, _ in again.search(index, ["yyyy"], 10)[0]][0] == 5  # type: ignore[arg-type]
    assert encode.seen == ["yyyy"] and again.catch_up(index) == (0, 0)  # type: ignore[arg-type]
    assert TrainedVectors.load(tmp_path / "none", encode) is None
    (tmp_path / VECTORS_FILE).write_bytes(b"not a numpy file")
    with pytest.raises(ModelUnavailableError, match="unreadable.*citewise train"):
        TrainedVectors.load(tmp_path, encode)


@pytest.mark.unit
def test_the_dense_source_searches_trained_vectors_when_there_are_some() -> None:
    index = Chunks({1: "aaaa", 2: "bbbb"})
    encode = Words()
    vectors = TrainedVectors.encode_corpus(index, encode)  # type: ignore[arg-type]

    class NoEmbedder:
        def embed(self, texts: list[str]) -> np.ndarray:
            raise AssertionError("the embedder must not embed queries when trained vectors are searched")

    published: list[TrainedVectors | None] = [vectors]
    source = DenseSource(index, NoEmbedder(), trained=lambda: published[0])  # type: ignore[arg-type]
    assert [cid for cid, _ in source.search(["bbb"], 1)[0]] == [2]
    assert source.describe() == "the trained encoder's vectors (2 chunks)"

    class Embedder:
        def embed(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 2), dtype=np.float32)

    index.search_dense = lambda q, k: [[(1, 0.5)] for _ in q]  # type: ignore[attr-defined]
    published[0] = None  # no vectors (any more): the embedder's, asked again at each search
    plain = DenseSource(index, Embedder(), trained=lambda: published[0])  # type: ignore[arg-type]
    assert plain.search(["x"], 1) == [[(1, 0.5)]] and plain.describe() == "the embedder's vectors"


def _engine(index: Path, shared_models: dict[str, Any], **search: Any) -> Engine:
    return engine_over(index, shared_models, search=search)


def _publish(index: Path, shared_models: dict[str, Any], reembed: str, held_out: float = 0.1) -> Path:
    engine = _engine(index, shared_models)
    with engine.open_index() as idx:
        items = make_training_items(idx.chunks(idx.chunk_ids()))
        builder = PairBuilder(idx, seed=13, held_out=held_out)
        pairs = builder.build(items)
        settings = BI_ENCODER.model_copy(update={"reembed": reembed})
        trial = ReembeddingTrial(engine.pipeline_factory(idx), engine.settings.search, settings, items,
                                 builder.held_out_questions(items))
        return ScorerTrainer(index, settings).run(pairs, vectors=trial)


@pytest.fixture(scope="module")
def reembedded(built_index: Path, shared_models: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built index whose bi-encoder (three steps) was published with its corpus vectors."""
    index = tmp_path_factory.mktemp("reembedded") / "index"
    shutil.copytree(built_index, index)
    _publish(index, shared_models, "always")
    return index


def test_training_publishes_the_corpus_as_its_encoder_embeds_it(reembedded: Path,
                                                                 shared_models: dict[str, Any]) -> None:
    folder = current_generation(reembedded)
    assert folder is not None
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["vectors"]["used"] and meta["vectors"]["why"] == "train.reembed is 'always'"
    scorer = OnnxTrainedScorer(folder=folder)
    with np.load(folder / VECTORS_FILE) as saved:
        ids, vectors = saved["ids"], saved["vectors"]
    with _engine(reembedded, shared_models).open_index() as idx:
        assert ids.tolist() == sorted(idx.chunk_ids()) == list(range(ids[0], ids[0] + len(ids)))
        rows = idx.chunks([int(ids[0]), int(ids[-1])])
    fresh = scorer.vectors([chunk_passage(rows[int(ids[0])]), chunk_passage(rows[int(ids[-1])])])
    assert np.allclose(fresh, vectors[[0, -1]], atol=1e-5) and meta["vectors"]["chunks"] == len(ids)


def test_dense_search_reads_the_trained_vectors_and_follows_ingest_and_removal(
        reembedded: Path, shared_models: dict[str, Any], tmp_path: Path) -> None:
    scorer = OnnxTrainedScorer.find(reembedded)
    assert scorer is not None
    question = "What does the walrus operator assign?"
    trained = _engine(reembedded, shared_models)  # search.dense_vectors = auto: the published vectors
    plain = _engine(reembedded, shared_models, dense_vectors="embedder")
    with trained.open_index() as idx, plain.open_index() as idx2:
        dense = trained.pipeline_factory(idx).searcher(trained.settings.search)
        ((first, score),) = dense.pipelines["dense"].run(question, 1).ranked[:1]
        want = float(scorer.vectors([question])[0] @ scorer.vectors([chunk_passage(idx.chunks([first])[first])])[0])
        assert score == pytest.approx(want, abs=1e-4)
        embedder_ranked = plain.pipeline_factory(idx2).searcher(plain.settings.search).pipelines["dense"].run(
            question, 5).ranked
        assert [round(s, 4) for _, s in embedder_ranked] != [round(s, 4) for _, s in
                                                            dense.pipelines["dense"].run(question, 5).ranked]
        # a document ingested after training is encoded by the reader that searches it; removed, it is gone
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "quokkas.md").write_text("# Quokkas\n\n" + NEW_DOC)
        done = run_cli("ingest", str(docs), "--index", str(reembedded), "--json")
        assert done.returncode == 0, done.stderr
        stored = json.loads(done.stdout)["trained_vectors"]  # the ingest stored them caught up
        assert stored["stored"] and stored["added"] >= 1 and stored["removed"] == 0, stored
        with np.load(Path(str(current_generation(reembedded))) / VECTORS_FILE) as saved:
            saved_ids, saved_generation = saved["ids"].tolist(), int(saved["generation"])
        assert saved_generation == idx.generation() and sorted(saved_ids) == sorted(idx.chunk_ids())
        ranked = dense.pipelines["dense"].run("How many quokkas live on Rottnest Island?", 3).ranked
        added = idx.chunks([ranked[0][0]])[ranked[0][0]]
        assert "quokka census" in added.text
        assert ranked[0][0] in saved_ids
        done = run_cli("docs", "rm", added.doc_id, "--index", str(reembedded))
        assert done.returncode == 0, done.stderr
        again = dense.pipelines["dense"].run("How many quokkas live on Rottnest Island?", 3).ranked
        assert ranked[0][0] not in {cid for cid, _ in again}
        with np.load(Path(str(current_generation(reembedded))) / VECTORS_FILE) as saved:  # nothing of it is kept
            assert ranked[0][0] not in saved["ids"].tolist() and sorted(saved["ids"].tolist()) == sorted(idx.chunk_ids())
        (docs / "quokkas.md").write_text("# Quokkas again\n\n" + NEW_DOC)
        assert run_cli("ingest", str(docs), "--index", str(reembedded)).returncode == 0
        readded = idx.find_document(str((docs / "quokkas.md").resolve()))
        assert readded is not None
        with ExclusiveLock(reembedded / TRAIN_LOCK, "busy"):  # a training run publishes its own vectors
            assert "citewise train" in trained.store_trained_vectors(idx)["skipped"]
            with trained.open_index(writable=True) as writable:
                removal = trained.remove_document(writable, readded.id)
        assert "citewise train" in removal.trained_vectors["skipped"] and removal.warnings()
        assert trained.store_trained_vectors(idx)["removed"] >= 1  # the removal, stored once the lock is free


def test_a_server_upload_stores_the_trained_vectors_its_searches_read(
        reembedded: Path, shared_models: dict[str, Any], tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(reembedded, index)
    settings = small_settings(index)
    with serving(create_app(settings, shared_engine(settings, shared_models))) as base:
        wait_ready(base)
        with httpx.Client(base_url=base, timeout=600) as client:
            resp = client.post("/v1/documents", files=[("files", ("quokkas.md", ("# Quokkas\n\n" + NEW_DOC).encode()))])
            assert resp.status_code == 202, resp.text
            job = wait_job(client, resp.json()["job"]["id"])
            assert job["state"] == "done", job
            stored = job["result"]["trained_vectors"]
            assert stored["stored"] and stored["added"] >= 1 and job["progress"]["re-embed"]["done"] >= 1, job
            hits = client.post("/v1/search", json={"query": "How many quokkas live on Rottnest Island?", "k": 1})
            hit = hits.json()["hits"][0]
            assert "quokka census" in hit["text"]
            with np.load(Path(str(current_generation(index))) / VECTORS_FILE) as saved:
                assert len(saved["ids"]) == len(saved["vectors"]) and int(saved["generation"]) >= 1
                with_quokkas = set(saved["ids"].tolist())
            gone = client.delete(f"/v1/documents/{hit['doc_id']}")
            assert gone.status_code == 200 and gone.json()["warnings"] == [], gone.text
            again = client.post("/v1/search", json={"query": "How many quokkas live on Rottnest Island?", "k": 3})
            assert all(h["doc_id"] != hit["doc_id"] for h in again.json()["hits"])
    with np.load(Path(str(current_generation(index))) / VECTORS_FILE) as saved, \
            _engine(index, shared_models).open_index() as idx:  # the removal is stored too
        assert set(saved["ids"].tolist()) == set(idx.chunk_ids()) < with_quokkas


def test_search_over_trained_vectors_needs_no_torch(reembedded: Path, tmp_path: Path) -> None:
    done, imported = run_probed(tmp_path, "search", "What is the walrus operator?", "--index", str(reembedded),
                                "--mode", "dense", "-k", "2", "--json", "--explain")
    found = json.loads(done.stdout)
    assert len(found["hits"]) == 2
    (stage,) = [s for s in found["stages"] if s["stage"] == "dense"]  # --explain names the vectors searched
    assert "the trained encoder's vectors (" in stage["detail"] and str(current_generation(reembedded)) in stage["detail"]
    assert "onnxruntime" in imported and "torch" not in imported, imported


def test_asking_for_trained_vectors_an_index_lacks_says_how_to_make_them(index_copy: Path) -> None:
    done = run_cli("search", "walrus", "--index", str(index_copy), env={"CITEWISE_SEARCH__DENSE_VECTORS": "trained"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"citewise train --index {index_copy}" in done.stderr and "dense_vectors" in done.stderr


def test_auto_keeps_the_embedder_s_vectors_without_enough_held_out_questions_to_tell(
        index_copy: Path, shared_models: dict[str, Any]) -> None:
    folder = _publish(index_copy, shared_models, "auto", held_out=0.5)
    meta = json.loads((folder / "meta.json").read_text())
    record = meta["vectors"]
    assert not record["used"] and not (folder / VECTORS_FILE).exists()
    assert 0 < record["held_out"]["questions"] < MIN_QUESTIONS and "not enough to tell" in record["why"]
    assert {"embedder_mrr", "trained_mrr"} <= set(record["held_out"])
    assert OnnxTrainedScorer.find(index_copy).corpus_vectors() is None  # type: ignore[union-attr]
