"""A BERT-family sentence-transformers model as fused int8 ONNX, for CPUs without a GPU.

MiniLM's plain encode already runs near a CPU's fp32 peak, so speed has to come from int8
matrix products (`citewise eval bench-ingest` measures the gain). Built once from the local model folder (no network) and cached beside the GGUFs:
export to ONNX, fuse attention, GELU and layer norms with onnxruntime's BERT optimizer, then
quantize the weights per output channel (per-tensor scales moved vectors too far from the fp32
model's), and check the result against the fp32 model before publishing the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ingest.core.errors import ConfigError, ModelUnavailableError

#: Bumped whenever the recipe below changes, so cached files are rebuilt.
RECIPE = "fused-int8-perchannel-v1"
#: The built model must stay this close to the fp32 original on the probe sentences.
MIN_PROBE_COSINE = 0.97
PROBE = [
    "The Normans gave their name to Normandy, a region in France.",
    "Assignment expressions use the walrus operator to bind a name inside an expression.",
    "Patients receiving the drug showed lower blood pressure after twelve weeks than those on placebo.",
    "def parse(text: str) -> list[int]: return [int(x) for x in text.split(',')]",
    "The lighthouse lamp burned colza oil until 1921, when the keepers converted it to electricity.",
    "Kinase inhibition reduced tumour growth in mice but had no effect on survival.",
]


class OnnxInt8Model:
    """Mean- or CLS-pooled, normalized sentence vectors from the cached int8 ONNX file."""

    def __init__(self, source: Path, cache_dir: Path, max_seq_length: int, threads: int = 0) -> None:
        self.source = Path(source)
        self.cache_dir = Path(cache_dir)
        self.max_seq_length = max_seq_length
        self.workers = threads or len(os.sched_getaffinity(0))
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._pooling = _pooling_mode(self.source) or "mean"

    @staticmethod
    def supports(source: Path) -> bool:
        """BERT-family encoders with mean or CLS pooling and no extra layers: what the optimizer fuses."""
        try:
            config = json.loads((Path(source) / "config.json").read_text())
            modules = (Path(source) / "modules.json").read_text()
        except (OSError, ValueError):
            return False
        return config.get("model_type") == "bert" and "Dense" not in modules and _pooling_mode(source) is not None

    @cached_property
    def path(self) -> Path:
        """Cache file, keyed by the source weights and the recipe."""
        h = hashlib.sha256(RECIPE.encode())
        for name in sorted(p.name for p in self.source.iterdir() if p.is_file()):
            h.update(name.encode())
            h.update(hashlib.sha256((self.source / name).read_bytes()).digest())
        return self.cache_dir / "onnx" / f"{self.source.name}-{h.hexdigest()[:16]}" / "model-int8.onnx"

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length float32 row per text, each text run alone, texts spread over the cores.

        Dynamic quantization scales each run's activations by their range, so in a batch a text's
        vector would depend on its neighbours and their padding. Alone it does not, and with no
        padding to compute, one single-threaded run per core side by side was also faster than
        two-threaded runs or small sorted batches (docs/chunking-and-context.md).
        """
        rows = self._spread(self._run, texts)
        return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def token_vectors(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's last-layer token vectors, unit length, without [CLS] and [SEP] (late interaction).

        The same runs as `embed`, stopped before pooling, so late interaction gets int8's speed too.
        """
        return self._spread(self._tokens, texts)

    def _spread(self, fn: Callable[[list[str]], list[np.ndarray]], texts: list[str]) -> list[np.ndarray]:
        """`fn` over the texts, one text per run, the texts dealt out over the cores; results in order."""
        with self._lock:
            if self._session is None:
                path = self.path
                if not path.exists():
                    self._build(path)
                self._session, self._tokenizer = self._open(path)
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="citewise-embed")
        if len(texts) < 2 or self.workers == 1:
            return fn(texts)
        assert self._pool is not None  # made with the session above
        parts = list(self._pool.map(fn, [texts[i:: self.workers] for i in range(self.workers)]))
        out: list[np.ndarray] = [np.zeros(0)] * len(texts)
        for i, part in enumerate(parts):
            out[i:: self.workers] = part
        return out

    def _run(self, texts: list[str]) -> list[np.ndarray]:
        return [_pooled(self._session, self._tokenizer, self._pooling, t) for t in texts]

    def _tokens(self, texts: list[str]) -> list[np.ndarray]:
        out = []
        for t in texts:
            hidden = _hidden(self._session, self._tokenizer, t)[0]
            hidden = hidden[1:-1] if len(hidden) > 2 else hidden
            out.append((hidden / np.maximum(np.linalg.norm(hidden, axis=1, keepdims=True), 1e-9)).astype(np.float32))
        return out

    def _open(self, path: Path) -> tuple[Any, Any]:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # parallel across texts instead (see embed); runs are thread-safe
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        tok = Tokenizer.from_file(str(self.source / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_seq_length)
        tok.no_padding()  # tokenizer.json may pad to a fixed length; a lone text needs none
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own unrelated exception types for unreadable files
            raise ModelUnavailableError(f"the int8 embedder model {path} is unreadable ({str(exc)[:160]}); delete "
                                        "it and it is rebuilt from the installed embedder on next use") from exc
        return session, tok

    def _build(self, target: Path) -> None:
        """Export, fuse, quantize and check; publish by rename so a crash leaves no half-written model."""
        if not self.supports(self.source):
            raise ConfigError(f"embedder {self.source} is not a BERT-family sentence-transformers model; set "
                              "ingest.embed_backend to 'torch'")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
            fp32, fused, int8 = (Path(tmp) / n for n in ("fp32.onnx", "fused.onnx", "int8.onnx"))
            config = json.loads((self.source / "config.json").read_text())
            export_onnx(self.source, fp32)
            fuse_bert(fp32, fused, config)
            quantize_int8(fused, int8)
            self._check(int8)
            os.replace(int8, target)

    def _check(self, candidate: Path) -> None:
        """Refuse a build whose vectors drifted from the fp32 model's on a few fixed sentences."""
        from sentence_transformers import SentenceTransformer

        reference = SentenceTransformer(str(self.source), device="cpu", local_files_only=True)
        want = reference.encode(PROBE, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        session, tokenizer = self._open(candidate)
        got = np.concatenate([_pooled(session, tokenizer, self._pooling, t) for t in PROBE])
        worst = float(np.min(np.sum(want * got, axis=1)))
        if worst < MIN_PROBE_COSINE:
            raise ConfigError(f"the int8 ONNX build of {self.source} drifted from the original (cosine {worst:.3f} "
                              f"< {MIN_PROBE_COSINE}); set ingest.embed_backend to 'torch'")


def _hidden(session: Any, tokenizer: Any, text: str) -> np.ndarray:
    """One text's last hidden states, shape (1, pieces, dim); run alone, so with no padding."""
    ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
    return session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                              "token_type_ids": np.zeros_like(ids)})[0]


def _pooled(session: Any, tokenizer: Any, pooling: str, text: str) -> np.ndarray:
    """One text's normalized vector as a 1-row array (no padding, so mean pooling is a plain mean)."""
    hidden = _hidden(session, tokenizer, text)
    vecs = hidden[:, 0] if pooling == "cls" else hidden.mean(axis=1)
    return (vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _pooling_mode(source: Path) -> str | None:
    try:
        cfg = json.loads((Path(source) / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if cfg.get("pooling_mode_mean_tokens"):
        return "mean"
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    return None


def export_onnx(source: Path, out: Path, head: Literal["hidden", "logits"] = "hidden") -> None:
    """TorchScript export with eager attention: the graph shape onnxruntime's fusion recognizes.

    `hidden` exports the encoder's last hidden states (embedders); `logits` a sequence classifier's
    scores (the trained cross-encoder scorer), whose output has no sequence axis.
    """
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    loader = AutoModel if head == "hidden" else AutoModelForSequenceClassification
    model = loader.from_pretrained(str(source), attn_implementation="eager", local_files_only=True).eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            output = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return output.last_hidden_state if head == "hidden" else output.logits

    dummy = torch.ones(2, 16, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "seq"} for n in names}
    axes[head] = {0: "batch", 1: "seq"} if head == "hidden" else {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(), (dummy, dummy, torch.zeros_like(dummy)), str(out), input_names=names,
                          output_names=[head], opset_version=17, dynamo=False, dynamic_axes=axes)


def fuse_bert(src: Path, out: Path, config: dict[str, Any],
              remedy: str = "set ingest.embed_backend to 'torch'") -> None:
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(str(src), model_type="bert", num_heads=int(config["num_attention_heads"]),
                                     hidden_size=int(config["hidden_size"]), opt_level=1)
    ops = {n.op_type for n in fused.model.graph.node}
    if "Attention" not in ops:
        raise ConfigError(f"onnxruntime could not fuse the attention of {src.name}; {remedy}")
    fused.save_model_to_file(str(out))


def quantize_int8(src: Path, out: Path) -> None:
    """Dynamic int8 weights with one scale per output channel (per-tensor scales moved outputs too far)."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint as a warning on the root logger
    try:
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)
