"""Loading a GGUF into llama-cpp-python with the kernel choices citewise depends on.

Prompt-lookup decoding verifies drafted tokens in one batched pass, and its output equals one-token
greedy decoding only if a batched pass computes each position's logits bit for bit as a one-token pass
does. On llama.cpp's CPU backend that holds when attention runs through its flash-attention kernel and
the weights stay in their file layout, for passes of 2 to `INVARIANT_BATCH` rows: they equal one-token
passes on one thread at any context length. The repacked weight layouts and the non-flash attention path
use other kernels (another summation order) once a pass holds more than a row or two, and a one-row pass
on several threads splits attention over the context differently once it is longer than a few hundred
tokens; so the decoder pads one-row passes to two (constrained_decoding.py).
`tests/test_llama_loader.py` checks all this on the installed llama.cpp.

llama-cpp-python's `Llama` does not expose the repacking switch (`use_extra_bufts`), so it is set on
the default model parameters while the model loads, under a lock.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

#: Most rows per pass whose logits equal one-token passes' (loaded with the defaults of `load_llama`).
INVARIANT_BATCH = 7

_LOADING = threading.Lock()


def load_llama(path: Path, *, n_ctx: int, threads: int, threads_batch: int, n_batch: int, seed: int,
               flash_attn: bool = True, repack: bool = False) -> Any:
    """A `llama_cpp.Llama` for `path`; the defaults are the batch-invariant kernels."""
    import llama_cpp
    import llama_cpp.llama as llama_module

    default_params = llama_module.llama_cpp.llama_model_default_params

    def params() -> Any:
        p = default_params()
        p.use_extra_bufts = repack
        return p

    with _LOADING:
        llama_module.llama_cpp.llama_model_default_params = params
        try:
            return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                                   n_threads_batch=threads_batch, n_batch=n_batch, seed=seed, verbose=False,
                                   flash_attn=flash_attn)
        finally:
            llama_module.llama_cpp.llama_model_default_params = default_params
