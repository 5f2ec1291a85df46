"""Run a short torch call with a given number of threads, then restore the previous count."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """One query is too small to split across threads; on a busy machine the extra threads spin-wait.

    torch's thread count is process-wide, so a concurrent batch job sees it for this moment. `n` = 0
    leaves torch alone, and so does a process that never loaded torch: a backend that does not run torch
    (the int8 ONNX embedder) must not pay seconds to import it for a setting it does not use.
    """
    torch = sys.modules.get("torch")
    if n <= 0 or torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
