"""The int8 ONNX embedder: built from the installed MiniLM, close to fp32, recorded in the index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.backends.onnx_int8_model import OnnxInt8Model
from ingest.backends.sentence_transformer_embedder import SentenceTransformerEmbedder
from ingest.core.errors import EmbedderMismatchError, ModelUnavailableError
from ingest.store.local_index import LocalIndex

PASSAGES = [
    "The walrus operator := assigns a value to a name inside an expression.",
    "Type hints are annotations that static checkers such as mypy read; the interpreter ignores them.",
    "The Global Interpreter Lock lets only one thread run Python bytecode at a time.",
    "Normandy takes its name from the Norse settlers who arrived in the tenth century.",
]
QUERIES = ["assignment expressions", "static typing annotations", "threads and the GIL", "origin of the Normans"]


def test_default_backend_is_int8_and_close_to_fp32(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.backend == "onnx-int8" and embedder.precision == "int8"
    fp32 = SentenceTransformerEmbedder(embedder.path, embedder.name, backend="torch")
    texts = PASSAGES + QUERIES
    got, want = embedder.embed(texts), fp32.embed(texts)
    assert got.shape == want.shape == (len(texts), embedder.dim) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert float(np.min(np.sum(got * want, axis=1))) > 0.97
    # Each query finds its own passage with both models.
    ranks = (got[len(PASSAGES):] @ got[: len(PASSAGES)].T).argmax(axis=1)
    assert ranks.tolist() == list(range(len(QUERIES)))
    # Order and batching do not change a text's vector.
    alone = embedder.embed([PASSAGES[2]])
    assert float(alone[0] @ got[2]) > 0.9999


def test_index_refuses_vectors_of_another_precision(tmp_path: Path, make_engine) -> None:
    engine = make_engine()
    with engine.open_index(writable=True) as index:
        index.flush()
    fp32 = dict(engine.embedder_info(), precision="fp32")
    with pytest.raises(EmbedderMismatchError, match="holds int8 vectors.*embed_backend to onnx-int8"):
        LocalIndex(tmp_path / "index", fp32, engine.analyzer)


def test_damaged_cached_model_says_how_to_recover(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    model = OnnxInt8Model(embedder.path, tmp_path, embedder.max_seq_length)
    model.path.parent.mkdir(parents=True)
    model.path.write_bytes(b"\x00not an onnx file")
    with pytest.raises(ModelUnavailableError, match="delete it and it is rebuilt"):
        model.embed(["anything"])


def test_models_the_optimizer_cannot_fuse_are_not_offered(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    assert OnnxInt8Model.supports(embedder.path)
    assert not OnnxInt8Model.supports(tmp_path)  # no config.json
    resolved = SentenceTransformerEmbedder(tmp_path, "folder", backend="auto", cache_dir=tmp_path)
    assert resolved.backend == "torch" and resolved.precision == "fp32"


def test_int8_token_vectors_match_fp32_for_late_interaction(embedder: SentenceTransformerEmbedder) -> None:
    """Late interaction takes its token vectors from the int8 model: same pieces, close vectors, same order."""
    from retrieval.late_interaction_reranker import LateInteractionReranker
    from retrieval.token_encoder import SentenceTransformerTokenEncoder

    fp32 = SentenceTransformerTokenEncoder(SentenceTransformerEmbedder(embedder.path, embedder.name, backend="torch"))
    texts = [QUERIES[0], *PASSAGES]
    got, want = embedder.int8_model.token_vectors(texts), fp32.token_vectors(texts)
    assert [g.shape for g in got] == [w.shape for w in want]  # [CLS] and [SEP] dropped from both
    for g, w in zip(got, want):
        assert np.allclose(np.linalg.norm(g, axis=1), 1.0, atol=1e-4)
        assert float(np.mean(np.sum(g * w, axis=1))) > 0.95
    ranked = [(i, 0.0) for i in range(len(PASSAGES))][::-1]  # first stage puts the answer last
    reranked, _ = LateInteractionReranker(embedder.int8_model, blend=1.0).rerank(
        QUERIES[0], ranked, dict(enumerate(PASSAGES)))
    assert reranked[0][0] == 0
