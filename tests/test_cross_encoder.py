"""The cross-encoder rerank path with a tiny real BERT cross-encoder built here (no download)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.core.errors import ModelUnavailableError
from retrieval.cross_encoder_reranker import CrossEncoderReranker

WORDS = "cat cats sat mat dog dogs bark loud bird birds sing tree the a on in is".split()
TEXTS = {1: "the cat sat on the mat", 2: "dogs bark loud", 3: "birds sing in a tree", 4: "a dog is in the tree"}


def build_tiny_cross_encoder(folder: Path) -> Path:
    """A 1-layer, 16-wide BERT with one relevance logit, random but seeded weights and a 22-word vocab."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder.mkdir(parents=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=1)
    BertForSequenceClassification(config).eval().save_pretrained(str(folder))
    return folder


def test_cross_encoder_reorders_the_head_by_its_scores_deterministically(tmp_path: Path) -> None:
    path = build_tiny_cross_encoder(tmp_path / "tiny-ce")
    reranker = CrossEncoderReranker(path, top_n=3, blend=1.0)
    probe = [(cid, 1.0) for cid in (1, 2, 3)]
    _, info = reranker.rerank("cat on mat", probe, TEXTS)
    scores = info["scores"]
    assert len(set(scores.values())) == 3  # the model tells the passages apart
    # Feed the head worst-first: the reranker must turn it around; the tail keeps its place.
    worst_first = sorted(scores, key=lambda c: scores[c])
    ranked = [(cid, 10.0 - i) for i, cid in enumerate(worst_first)] + [(4, 0.5)]
    out, info2 = reranker.rerank("cat on mat", ranked, TEXTS)
    assert [cid for cid, _ in out] == [*reversed(worst_first), 4]
    assert info2["scores"] == scores  # same inputs, same scores
    assert reranker.rerank("cat on mat", ranked, TEXTS)[0] == out


def test_missing_cross_encoder_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="cross_encoder_path"):
        CrossEncoderReranker(tmp_path / "nothing").rerank("q", [(1, 1.0)], {1: "text"})
