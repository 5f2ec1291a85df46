"""Token vectors from the sentence-transformers embedder already loaded for dense search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from retrieval.late_interaction_reranker import TokenEncoder


class SentenceTransformerTokenEncoder:
    """The embedder's last-layer token vectors, normalized, without [CLS], [SEP] or padding."""

    def __init__(self, embedder: Any, batch_size: int = 16, threads: int = 1) -> None:
        self.embedder = embedder
        self.batch_size = batch_size
        self.threads = threads

    def warm_up(self) -> None:
        self.token_vectors(["warm up"])

    def token_vectors(self, texts: list[str]) -> list[np.ndarray]:
        import torch

        from retrieval.torch_threads import torch_threads

        model = self.embedder.model
        with torch.inference_mode(), torch_threads(self.threads):
            outs = model.encode(texts, output_value="token_embeddings", batch_size=self.batch_size,
                                convert_to_numpy=False, show_progress_bar=False)
        result = []
        for t in outs:
            arr = t.float().cpu().numpy()[1:-1] if len(t) > 2 else t.float().cpu().numpy()
            norms = np.linalg.norm(arr, axis=1, keepdims=True)
            result.append((arr / np.maximum(norms, 1e-9)).astype(np.float32))
        return result


def late_token_encoder(embedder: Any, source: str, threads: int = 1) -> TokenEncoder:
    """Where late interaction gets its token vectors (setting `search.rerank.late_tokens`).

    'embedder' takes them from the int8 ONNX model when that is the embedding backend: the same
    model already loaded, three times the fp32 model's speed here. Otherwise the fp32 torch model.
    """
    if source == "embedder" and getattr(embedder, "backend", None) == "onnx-int8":
        return embedder.int8_model
    return SentenceTransformerTokenEncoder(embedder, threads=threads)
