"""What search, reports and ingest need from an index, so callers never reach into its storage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol

from ingest.core.types import ChunkedDocument, ChunkRow, DocumentRow

if TYPE_CHECKING:
    import numpy as np


class Index(Protocol):
    """The read side: searches, stored chunks and documents. Readers follow a writer's new generations."""

    path: Path

    def search_dense(self, query_vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]: ...

    def search_bm25(self, query: str, k: int) -> list[tuple[int, float]]: ...

    def chunks(self, ids: list[int]) -> dict[int, ChunkRow]: ...

    def chunk_ids(self) -> list[int]: ...

    def generation(self) -> int:
        """A number that changes whenever documents are added or removed, so copies derived from the chunks
        (vectors kept elsewhere) know when to catch up."""
        ...

    def index_texts(self) -> Iterator[tuple[int, str]]:
        """(chunk id, text BM25 indexes for it), for baselines that index the same text differently."""
        ...

    def document_text(self, doc_id: str) -> str | None: ...

    def documents_with_word(self, word: str, enough: int) -> int:
        """Documents holding `word` as a whole word (any case), counted up to `enough`."""
        ...

    def documents(self) -> list[DocumentRow]: ...

    def find_document(self, id_or_source: str) -> DocumentRow | None: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class WritableIndex(Index, Protocol):
    """The write side, held by one process at a time (the ingest pipeline, `docs rm`, upload jobs)."""

    @property
    def temp_path(self) -> Path:
        """Where parsers keep temporary copies of documents: inside the index, cleared when a writer opens it."""
        ...

    @property
    def context_mode(self) -> str:
        """The context mode the manifest records (documents stored before modes were per document)."""
        ...

    def content_hash(self, source: str) -> str | None: ...

    def vectors_by_key(self, keys: list[str]) -> dict[str, np.ndarray]: ...

    def stale_context_documents(self, mode: str) -> list[str]: ...

    def load_document(self, doc_id: str) -> ChunkedDocument: ...

    def cached_contexts(self, keys: list[str]) -> dict[str, str]: ...

    def cache_context(self, key: str, context: str, source: str) -> None: ...

    def add_documents(self, docs: list[tuple[str, ChunkedDocument, np.ndarray, list[str]]]) -> int: ...

    def remove_document(self, doc_id: str) -> int: ...

    def flush(self) -> None:
        """Publish derived files for everything written so far (readers switch to them)."""
        ...
