"""Run a short torch call with a given number of threads, then restore the previous count."""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """One query is too small to split across threads; on a busy machine the extra threads spin-wait.

    Measured on the 2-core box at load ~10: one query embedded in 42 ms p50 with 1 thread, 1050 ms
    with 2. torch's thread count is process-wide, so a concurrent batch job sees it for this moment.
    `n` = 0 leaves torch alone.
    """
    if n <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
