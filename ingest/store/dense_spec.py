"""Which FAISS index type holds the vectors, with its parameters: chosen by collection size, kept in the manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ingest.core.settings import IndexSettings

Kind = Literal["flat", "hnsw"]


@dataclass(frozen=True)
class DenseSpec:
    """An index type and the parameters it was built with; `ef_search` is the query-time beam width."""

    kind: Kind = "flat"
    m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None

    @classmethod
    def hnsw(cls, settings: IndexSettings) -> DenseSpec:
        return cls("hnsw", settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef_search)

    @classmethod
    def choose(cls, settings: IndexSettings, n_vectors: int, current: DenseSpec | None = None) -> DenseSpec:
        """The type for a collection of n_vectors. Under 'auto' an HNSW index returns to flat only below half
        the threshold, so a collection hovering around it is not rebuilt back and forth; an existing index of
        the wanted type keeps the build parameters it has (changing them means a rebuild)."""
        kind: Kind
        if settings.dense_index != "auto":
            kind = settings.dense_index
        elif n_vectors >= settings.exact_below:
            kind = "hnsw"
        elif current is not None and current.kind == "hnsw" and n_vectors >= settings.exact_below // 2:
            kind = "hnsw"
        else:
            kind = "flat"
        if current is not None and current.kind == kind:
            return current
        return cls.hnsw(settings) if kind == "hnsw" else cls()

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DenseSpec:
        """An index written before types were recorded is flat."""
        if not data:
            return cls()
        return cls(data.get("kind", "flat"), data.get("m"), data.get("ef_construction"), data.get("ef_search"))
