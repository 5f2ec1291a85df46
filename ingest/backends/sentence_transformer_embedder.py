"""Sentence-transformers embedder: the tokenizer counts chunk sizes, the model turns text into vectors."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ingest.core.offline import apply_offline_env
from ingest.backends.onnx_int8_model import OnnxInt8Model


class SentenceTransformerEmbedder:
    """Loads the model once on first use; encodes in length-sorted batches with all cores.

    Backends: "onnx-int8" runs a fused int8 ONNX build of the model (see `OnnxInt8Model`), "torch"
    the fp32 model, "plain" stock `SentenceTransformer.encode` with its defaults (the baseline the
    benchmark compares against), and "auto" picks onnx-int8 for BERT-family models, torch otherwise.
    Token vectors for late interaction always come from the fp32 torch model.
    """

    def __init__(self, path: Path, name: str, batch_size: int = 32, backend: str = "torch", threads: int = 0,
                 cache_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.name = name
        self.batch_size = batch_size
        if backend == "auto":
            backend = "onnx-int8" if OnnxInt8Model.supports(self.path) else "torch"
        if backend == "onnx-int8" and cache_dir is None:
            raise ValueError("the onnx-int8 backend needs a cache directory for its built model")
        self.backend = backend
        self.threads = threads
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._max_seq: int | None = None
        self._dim: int | None = None
        self._int8: OnnxInt8Model | None = None

    @property
    def int8_model(self) -> OnnxInt8Model:
        with self._lock:
            if self._int8 is None:
                assert self.cache_dir is not None  # checked in __init__
                self._int8 = OnnxInt8Model(self.path, self.cache_dir, self.max_seq_length, self.threads)
            return self._int8

    @property
    def precision(self) -> str:
        """Recorded in the index: vectors from int8 and fp32 models are close, not interchangeable."""
        return "int8" if self.backend == "onnx-int8" else "fp32"

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    @property
    def max_seq_length(self) -> int:
        if self._max_seq is None:
            import json

            cfg = self.path / "sentence_bert_config.json"
            self._max_seq = int(json.loads(cfg.read_text()).get("max_seq_length", 256)) if cfg.exists() else 256
            if self._model is not None:
                self._max_seq = int(self._model.max_seq_length)
        return self._max_seq

    @property
    def max_tokens(self) -> int:
        """Word pieces that fit beside the [CLS] and [SEP] tokens the model adds."""
        return self.max_seq_length - 2

    @property
    def dim(self) -> int:
        """Read from the folder when possible, so opening an index does not load the model."""
        import json

        if self._dim is None:
            modules = self.path / "modules.json"
            pooling = self.path / "1_Pooling" / "config.json"
            if pooling.exists() and modules.exists() and "Dense" not in modules.read_text():
                self._dim = int(json.loads(pooling.read_text())["word_embedding_dimension"])
            else:
                self._dim = int(self.model.get_embedding_dimension())
        return self._dim

    def warm_up(self) -> None:
        """Load (and for onnx-int8, build once) the model now, so the first request does not pay for it."""
        self.embed(["warm up"])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [tuple(o) for o in self.tokenizer.encode(text, add_special_tokens=False).offsets]  # type: ignore[misc]

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                apply_offline_env()
                import torch
                from sentence_transformers import SentenceTransformer

                if self.threads:
                    torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
                self._model.eval()
            return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend == "onnx-int8":
            return self.int8_model.embed(texts)
        model = self.model
        if self.backend == "plain":
            out = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            return np.asarray(out, dtype=np.float32)
        import torch

        order = np.argsort([len(t) for t in texts])[::-1]
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():  # length-sorted small batches: little padding, activations stay in cache
            for i in range(0, len(texts), self.batch_size):
                idx = order[i : i + self.batch_size]
                result[idx] = model.encode([texts[j] for j in idx], batch_size=len(idx), normalize_embeddings=True,
                                           convert_to_numpy=True, show_progress_bar=False)
        return result
