"""Evaluation indexes, cached by dataset fingerprint and the settings that shape an index."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from generate.engine import Engine
from ingest.pipeline import IngestSummary
from ingest.core.errors import IndexStateError
from ingest.store.local_index import LocalIndex


def index_key(comps: Engine, dataset_key: str) -> str:
    s = comps.settings
    shaping = {"embedder": s.models.embedder, "chunk_tokens": s.ingest.chunk_tokens,
               "context_mode": s.ingest.context_mode, "stemmer": s.index.bm25_stemmer,
               "stopwords": s.index.bm25_stopwords}
    # The FAISS type and build parameters shape the index too; listed only when changed from the
    # defaults, so indexes cached before they were keyed stay valid. (ef_search is a query-time knob.)
    dense = {k: v for k, v in s.index.model_dump().items()
             if k in ("dense_index", "exact_below", "hnsw_m", "hnsw_ef_construction")
             and v != type(s.index).model_fields[k].default}
    if dense:
        shaping["dense"] = dense
    if comps.embedder.precision != "fp32":  # listed only when not fp32, so older cached indexes stay valid
        shaping["embed_precision"] = comps.embedder.precision
    if s.ingest.context_mode == "llm":
        from ingest.llm_context import PROMPT_VERSION

        shaping["llm_context"] = {"model": s.models.fast, "prompt": PROMPT_VERSION,
                                  **{k: v for k, v in s.ingest.model_dump().items()
                                     if k.startswith("context_") and k not in ("context_mode", "context_timeout_s")}}
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:10]
    return f"{dataset_key}-{digest}"


def prepared_index(comps: Engine, root: Path, dataset_key: str,
                   ingest: Callable[[LocalIndex], IngestSummary]) -> Path:
    """Build (or finish, or reuse) the index; ingest is incremental, so a rerun only adds what is missing."""
    path = Path(root) / "indexes" / index_key(comps, dataset_key)
    done_marker = path / "eval-complete"
    if done_marker.exists():
        with comps.open_index(path, writable=True) as index:
            index.flush()  # republishes BM25 if its settings changed (bm25_neighbours), without re-embedding
        return path
    with comps.open_index(path, writable=True) as index:
        summary = ingest(index)
    if summary.failed:
        first = summary.failed[0]
        raise IndexStateError(f"{len(summary.failed)} dataset documents failed to ingest into {path}; first: "
                              f"{first['path']}: {first['reason']}")
    done_marker.write_text(json.dumps(summary.to_dict()))
    return path
