"""Where documents are prepared: parsed, chunked, contextualized and (on a cluster) embedded.

The ingest driver keeps what needs the index: discovery, the content-hash check that skips unchanged
files, committing whole documents in batches, re-contextualizing stored documents, publishing. An
executor turns the files the driver hands it into prepared documents, in the order it was given them,
so the local executor (this process and its parser workers) and a cluster executor are swappable and
the store sees the same commits from either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator, Protocol

from ingest.core.index import WritableIndex
from ingest.core.progress import Progress
from ingest.core.types import ChunkedDocument, ContextOutcome

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class FileJob:
    """One file to prepare: its bytes as the driver read them, or a path every worker can read itself.

    `content_hash` is the sha256 of what the driver read (and checked against the index); a worker
    that reads `path` hashes what it reads, so a file changed in between is stored as it was parsed.
    """

    source: str
    fmt: str
    content_hash: str
    data: bytes | None = None
    path: str | None = None


@dataclass
class PreparedDocument:
    """A file's outcome: a chunked document with its contexts set, or the reason it failed.

    `keys` and `vectors` (one per chunk, in order) come with documents embedded where they were
    prepared; without them the driver embeds at commit time. `new_contexts` holds llm sentences
    generated for this document (cache key -> sentence) for the driver to keep in the index's cache.
    """

    source: str
    chunked: ChunkedDocument | None = None
    failure: str | None = None
    warnings: list[str] = field(default_factory=list)
    context: ContextOutcome | None = None
    keys: list[str] | None = None
    vectors: np.ndarray | None = None
    new_contexts: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # time per stage spent on this document
    worker: str = ""  # where it was prepared (host:pid), for a cluster's account of who did what


class Executor(Protocol):
    """Prepares files; `prepare` streams one PreparedDocument per job, in input order."""

    name: str

    def wants_bytes(self, source: str) -> bool:
        """Whether the driver sends this file's bytes (False: the executor's workers read `path` themselves)."""
        ...

    def use_index(self, index: WritableIndex) -> None:
        """The index this run writes: local parsers keep temporary copies under it; cluster workers in llm
        mode read its context cache."""
        ...

    def warm_up(self) -> None:
        """Start workers and load their models now, so the first file does not wait for them."""
        ...

    def prepare(self, jobs: Iterable[FileJob], progress: Progress) -> Iterator[PreparedDocument]:
        """Reports the parse, chunk and context stages to `progress` as documents come back."""
        ...

    def close(self) -> None: ...
