"""One index directory: SQLite store (truth), FAISS vectors and BM25, kept consistent across crashes.

Every write is a SQLite transaction that bumps a generation number. FAISS and BM25 files are
written under generation-stamped names and published by an atomic manifest replace; on open, a
store generation newer than the published files is caught up from SQLite. A SIGKILL at any point
therefore leaves whole documents or nothing, and never vectors or terms without their chunks.

The FAISS type (exact flat, or HNSW for large collections) is chosen by a writer from the collection size and
recorded in the manifest; readers open whatever the manifest names and never rebuild.
"""

from __future__ import annotations

import fcntl
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ingest.core.errors import EmbedderMismatchError, IndexBusyError, IndexStateError, IndexWriteError
from ingest.core.settings import IndexSettings
from ingest.store.bm25_index import Bm25Analyzer, Bm25Index
from ingest.store.dense_spec import DenseSpec
from ingest.store.docstore import SqliteDocStore
from ingest.store.failures import faiss_failure, os_failure
from ingest.store.faiss_index import FaissIndex
from ingest.store.manifest import FORMAT_VERSION, CorruptManifestError, read_manifest, write_manifest
from ingest.core.types import ChunkedDocument, ChunkRow, DocumentRow

MANIFEST = "manifest.json"
STORE = "store.sqlite"
PARSE_TEMP = "parse-tmp"  # parsers' temporary copies of documents; a writer clears it on opening


class LocalIndex:
    """Documents, chunk vectors and BM25 terms in one directory on local disk."""

    def __init__(self, path: Path, embedder: dict[str, Any], analyzer: Bm25Analyzer,
                 settings: dict[str, Any] | None = None, writable: bool = False,
                 index_settings: IndexSettings | None = None, threads: int = 0) -> None:
        self.path = Path(path)
        self.embedder = embedder
        self.analyzer = analyzer
        self.settings = settings or {}
        self.writable = writable
        self.index_settings = index_settings or IndexSettings()
        self.threads = threads
        self._lock_fh: Any = None
        self._mutex = threading.RLock()
        self._faiss: FaissIndex | None = None
        self._bm25: Bm25Index | None = None
        self._faiss_gen = -1
        self._faiss_rebuilt = False  # rebuilt since the last publish (possibly within one generation)
        self._bm25_gen = -1
        self._docs_stored = 0  # documents this writer stored or removed since it opened
        self._open()

    # -- opening ----------------------------------------------------------------------------
    def _open(self) -> None:
        manifest_path, store_path = self.path / MANIFEST, self.path / STORE
        if self.path.exists() and not self.path.is_dir():
            raise IndexStateError(f"{self.path} is a file, not an index directory")
        if self.writable:
            self._acquire_lock()
            shutil.rmtree(self.temp_path, ignore_errors=True)  # left by a parse that was killed
        try:
            try:
                manifest = read_manifest(manifest_path)
                damage = None
            except CorruptManifestError as exc:
                manifest, damage = None, exc.reason
            except OSError as exc:
                raise os_failure(exc, self.path, writing=False) from exc
            if not self.writable:
                self._check_readable(manifest, damage)
            self.store = SqliteDocStore(store_path, writable=self.writable)
            self.store.conn  # open now: a damaged or unreadable store fails here, before anything is written
            rebuilt = manifest is None and self.store.generation > 0
            if manifest is None:
                manifest = self._new_manifest()
            self._check_compatible(manifest)
            self.manifest = manifest
            if self.writable:
                if self.store.recorded_embedder() is None:
                    self.store.record_embedder(self.embedder)
                self._collect_garbage()
                if rebuilt:
                    self.flush()  # publish FAISS and BM25 for the store at once, under the new manifest
        except BaseException:
            self.close()
            raise

    def _check_readable(self, manifest: dict[str, Any] | None, damage: str | None) -> None:
        """A reader writes nothing, so a missing or damaged manifest is reported with how to repair it."""
        has_store = (self.path / STORE).is_file()
        if manifest is None and not has_store:
            raise IndexStateError(f"no index at {self.path}: run `citewise ingest PATH --index {self.path}` first")
        if manifest is None:
            state = f"damaged ({damage})" if damage else "missing"
            raise IndexStateError(
                f"{self.path / MANIFEST} is {state}, but the documents are safe in {STORE} and any write rebuilds "
                f"it: run `citewise ingest FILE --index {self.path}` (a file already ingested is skipped)")
        if not has_store and manifest.get("generation") == 0:
            raise IndexStateError(f"index {self.path} holds no documents yet: run `citewise ingest PATH --index "
                                  f"{self.path}` first")

    def _new_manifest(self) -> dict[str, Any]:
        """The manifest of a new index, or one rebuilt from the store when it was lost or damaged.

        The store is the source of truth and the FAISS and BM25 files only derive from it, so a rebuilt
        manifest names none and they are rebuilt; only the embedder cannot be derived, and is checked
        against the one the store records (or its vectors' dimension, for stores from before that record).
        """
        recorded = self.store.recorded_embedder()
        if recorded is not None:
            self._check_embedder(recorded)
        else:
            dim = self.store.vector_dim()
            if dim is not None and dim != self.embedder["dim"]:
                raise EmbedderMismatchError(
                    f"index {self.path} holds {dim}-d vectors but the settings name embedder "
                    f"{self.embedder['name']!r} ({self.embedder['dim']}-d); use the embedder that built it "
                    "(models.embedder) or another --index directory")
        manifest = {"format": FORMAT_VERSION, "embedder": self.embedder, "generation": self.store.generation,
                    "faiss_file": None, "bm25_dir": None}
        manifest.update(self.settings)
        self._write_manifest(manifest)
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        try:
            write_manifest(self.path / MANIFEST, manifest)
        except OSError as exc:
            raise os_failure(exc, self.path, outcome=self._kept()) from exc

    @property
    def temp_path(self) -> Path:
        """Where parsing keeps temporary copies of documents, so none outlive a killed run elsewhere."""
        return self.path / PARSE_TEMP

    def _check_compatible(self, manifest: dict[str, Any]) -> None:
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexStateError(f"{self.path} was written by an incompatible citewise (format {manifest.get('format')})")
        self._check_embedder(manifest["embedder"])
        recorded = self.store.recorded_embedder()
        if recorded is not None:
            self._check_embedder(recorded)

    def _check_embedder(self, built: dict[str, Any]) -> None:
        if built.get("name") != self.embedder["name"] or built.get("dim") != self.embedder["dim"]:
            raise EmbedderMismatchError(
                f"index {self.path} was built with embedder {built.get('name')!r} ({built.get('dim')}-d) but the "
                f"settings name {self.embedder['name']!r} ({self.embedder['dim']}-d); use the same embedder "
                "(models.embedder) or another --index directory"
            )
        built_precision = built.get("precision", "fp32")  # indexes from before int8 embedding were fp32
        if built_precision != self.embedder.get("precision", "fp32"):
            raise EmbedderMismatchError(
                f"index {self.path} holds {built_precision} vectors but the embedder now makes "
                f"{self.embedder.get('precision')} ones; set ingest.embed_backend to "
                f"{'onnx-int8' if built_precision == 'int8' else 'torch'} for this index, or re-ingest into "
                "another --index directory"
            )

    def _acquire_lock(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fh = open(self.path / ".lock", "a+")
        except OSError as exc:
            raise os_failure(exc, self.path, outcome="nothing was changed") from exc
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise IndexBusyError(f"index {self.path} is being written by another process; try again when it ends")
        self._lock_fh = fh

    def _kept(self) -> str:
        """What a failed write leaves, for its message: this writer's earlier changes are in the store."""
        if not self._docs_stored:
            return "nothing was changed"
        return (f"what this run stored or removed before it is kept in {STORE}, and searches see it (the search "
                "files are rebuilt from the store when the index opens)")

    def close(self) -> None:
        if getattr(self, "store", None) is not None:
            self.store.close()
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> LocalIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes -----------------------------------------------------------------------------
    def add_documents(self, docs: list[tuple[str, ChunkedDocument, np.ndarray, list[str]]]) -> int:
        """Store whole documents (replacing earlier versions); vectors follow in memory at once."""
        self._require_writable()
        with self._mutex:
            try:
                added = self.store.replace_documents(docs)
            except IndexWriteError as exc:
                if not self._docs_stored:
                    raise
                n = self._docs_stored
                raise IndexWriteError(f"{exc.message}; the {n} document{'s' * (n != 1)} stored before it by this run "
                                      f"{'are' if n != 1 else 'is'} kept: re-run to add the rest", partial=True) from exc
            self._docs_stored += len(docs)
            self._sync_faiss()
            return added

    def remove_document(self, doc_id: str) -> int:
        self._require_writable()
        with self._mutex:
            n = self.store.delete_document(doc_id)
            self._docs_stored += 1
            self._sync_faiss()
            return n

    def flush(self) -> None:
        """Publish FAISS and BM25 files for the current store generation."""
        self._require_writable()
        with self._mutex:
            gen = self.store.generation
            faiss_index = self.faiss
            dense = faiss_index.spec.to_dict()
            # a writer's BM25 always holds its own setting (see _load_bm25), so nothing needs loading to compare
            record = {"stemmer": self.analyzer.stemmer_name, "stopwords": self.analyzer.stopwords,
                      "neighbours": self.index_settings.bm25_neighbours}
            if (self.manifest.get("generation") == gen and self.manifest.get("faiss_file")
                    and self.manifest.get("dense_index") == dense and not self._faiss_rebuilt
                    and self.manifest.get("bm25") == record):
                return
            bm25 = self.bm25
            # a rebuild (type switch, BM25 setting) within one generation needs a new file name too
            faiss_name = f"vectors-{gen}-{faiss_index.spec.kind}.faiss"
            bm25_name = f"bm25-{gen}" + (f"-w{bm25.neighbours}" if bm25.neighbours else "")
            manifest = dict(self.manifest, generation=gen, faiss_file=faiss_name, bm25_dir=bm25_name, bm25=record,
                            dense_index=dense)
            manifest.update(self.settings)
            try:
                if (self.manifest.get("faiss_file") != faiss_name or self._faiss_rebuilt
                        or not (self.path / faiss_name).exists()):
                    faiss_index.save(self.path / faiss_name)
                if not (self.path / bm25_name).exists() or self.manifest.get("bm25_dir") != bm25_name:
                    bm25.save(self.path / bm25_name)
                write_manifest(self.path / MANIFEST, manifest)
            except (OSError, RuntimeError) as exc:  # FAISS reports a failed write as RuntimeError
                self._collect_garbage()  # half-written files of this publish free their space at once
                partial = self._docs_stored > 0
                if isinstance(exc, OSError):
                    raise os_failure(exc, self.path, outcome=self._kept(), partial=partial) from exc
                raise faiss_failure(exc, self.path / faiss_name, outcome=self._kept(), partial=partial) from exc
            self.manifest = manifest
            self._faiss_rebuilt = False
            self._collect_garbage()

    def _require_writable(self) -> None:
        if not self.writable:
            raise IndexStateError(f"index {self.path} was opened read-only")

    def _collect_garbage(self) -> None:
        keep = {MANIFEST, STORE, f"{STORE}-wal", f"{STORE}-shm", ".lock",
                self.manifest.get("faiss_file"), self.manifest.get("bm25_dir")}
        for entry in self.path.iterdir():
            if entry.name in keep:
                continue
            if entry.name.startswith(("vectors-", "bm25-", MANIFEST + ".tmp")):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    # -- derived indexes --------------------------------------------------------------------
    @property
    def faiss(self) -> FaissIndex:
        with self._mutex:
            if self._faiss is None:
                self._faiss = self._load_faiss()
            if self._faiss_gen != self.store.generation:
                self._sync_faiss()
            return self._faiss

    def _load_faiss(self) -> FaissIndex:
        name = self.manifest.get("faiss_file")
        dim = int(self.embedder["dim"])
        spec = DenseSpec.from_dict(self.manifest.get("dense_index"))
        index = FaissIndex(dim, spec, self.threads)
        if name and (self.path / name).exists():
            try:
                index = FaissIndex.load(self.path / name, dim, spec, self.threads)
            except Exception:  # an unreadable derived file is rebuilt from the store, never trusted
                pass
        if spec.kind == "hnsw":
            index.ef_search = self.index_settings.hnsw_ef_search  # a query-time knob: the current setting
        return index

    def _sync_faiss(self) -> None:
        """Make FAISS hold exactly the store's chunk ids: drop extras, add missing from stored vectors.

        A writer then rebuilds from the store when the size calls for another index type, or when HNSW
        tombstones pass `rebuild_removed_fraction`.
        """
        if self._faiss is None:
            self._faiss = self._load_faiss()
        gen = self.store.generation
        want = self.store.chunk_ids()
        have = self._faiss.ids()
        self._faiss.remove(np.setdiff1d(have, want, assume_unique=True))
        missing = np.setdiff1d(want, have, assume_unique=True)
        if self.writable:
            target = DenseSpec.choose(self.index_settings, len(want), self._faiss.spec)
            stored = len(self._faiss) + self._faiss.removed
            too_many_removed = stored and self._faiss.removed / stored > self.index_settings.rebuild_removed_fraction
            if target != self._faiss.spec or too_many_removed:
                self._rebuild_faiss(target, want)
                self._faiss_gen = gen
                return
        if len(missing):
            self._faiss.add(missing, self.store.vectors(missing.tolist(), int(self.embedder["dim"])))
        self._faiss_gen = gen

    def _rebuild_faiss(self, spec: DenseSpec, ids: np.ndarray) -> None:
        dim = int(self.embedder["dim"])
        if spec.kind == "hnsw":
            spec = DenseSpec.hnsw(self.index_settings)  # a rebuild takes the current build settings
        index = FaissIndex(dim, spec, self.threads)
        if spec.kind == "hnsw":
            index.ef_search = self.index_settings.hnsw_ef_search
        for start in range(0, len(ids), 50_000):  # bounded memory while reading vectors back from SQLite
            batch = ids[start:start + 50_000]
            index.add(batch, self.store.vectors(batch.tolist(), dim))
        self._faiss = index
        self._faiss_rebuilt = True

    def _follow_manifest(self) -> None:
        """A reader picks up the manifest a writer published since, so it loads the published BM25 files of
        a new generation instead of rebuilding them from the store (what a read replica does between
        requests). The manifest is replaced atomically: a reader sees the old one or the new one."""
        if self.writable:
            return
        try:
            manifest = read_manifest(self.path / MANIFEST)
        except (CorruptManifestError, OSError):
            return  # keep the one it has: the store stays the truth and catch-up still works
        if manifest is not None:
            self.manifest = manifest

    @property
    def bm25(self) -> Bm25Index:
        with self._mutex:
            gen = self.store.generation
            if self._bm25 is None or self._bm25_gen != gen:
                if self._bm25 is not None:
                    self._follow_manifest()
                self._bm25 = self._load_bm25(gen)
                self._bm25_gen = gen
            return self._bm25

    def _load_bm25(self, gen: int) -> Bm25Index:
        """The published BM25 when it is current; a writer whose `bm25_neighbours` differs rebuilds it
        (readers search what the writer published), as does anyone catching up a newer generation."""
        wanted = self.index_settings.bm25_neighbours
        name = self.manifest.get("bm25_dir")
        if name and self.manifest.get("generation") == gen and (self.path / name).exists():
            try:
                stored = Bm25Index.load(self.path / name, self.analyzer)
                if not self.writable or stored.neighbours == wanted:
                    return stored
            except Exception:  # stale analyzer or damaged files: rebuild from the store
                pass
        if not self.writable and "bm25" in self.manifest:  # published before the setting existed: 0
            wanted = int(self.manifest["bm25"].get("neighbours", 0))
        rows = list(self.store.index_texts(wanted))
        return Bm25Index.build(self.analyzer, [r[0] for r in rows], [r[1] for r in rows], wanted)

    # -- reads ------------------------------------------------------------------------------
    def search_dense(self, query_vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        scores, ids = self.faiss.search(query_vectors, k)
        return [[(int(i), float(s)) for s, i in zip(srow, irow) if i >= 0] for srow, irow in zip(scores, ids)]

    def search_bm25(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.bm25.search(query, k)

    def chunks(self, ids: list[int]) -> dict[int, ChunkRow]:
        return self.store.chunks(ids)

    def chunk_ids(self) -> list[int]:
        return self.store.chunk_ids().tolist()

    def generation(self) -> int:
        return self.store.generation

    def vectors(self, ids: list[int]) -> np.ndarray:
        return self.store.vectors(ids, int(self.embedder["dim"]))

    def index_texts(self) -> Iterator[tuple[int, str]]:
        return self.store.index_texts(self.bm25.neighbours)

    def document_text(self, doc_id: str) -> str | None:
        return self.store.document_text(doc_id)

    def documents_with_word(self, word: str, enough: int) -> int:
        return self.store.documents_with_word(word, enough)

    def documents(self) -> list[DocumentRow]:
        return self.store.documents()

    def find_document(self, id_or_source: str) -> DocumentRow | None:
        return self.store.find_document(id_or_source)

    # -- what the ingest pipeline reads before it writes ---------------------------------------
    @property
    def context_mode(self) -> str:
        return str(self.manifest.get("context_mode") or "structure")

    def content_hash(self, source: str) -> str | None:
        return self.store.content_hash(source)

    def vectors_by_key(self, keys: list[str]) -> dict[str, np.ndarray]:
        return self.store.vectors_by_key(keys)

    def stale_context_documents(self, mode: str) -> list[str]:
        return self.store.stale_context_documents(mode, self.context_mode)

    def load_document(self, doc_id: str) -> ChunkedDocument:
        return self.store.load_document(doc_id)

    def cached_contexts(self, keys: list[str]) -> dict[str, str]:
        return self.store.cached_contexts(keys)

    def cache_context(self, key: str, context: str, source: str) -> None:
        self.store.cache_context(key, context, source)

    def stats(self) -> dict[str, Any]:
        docs, chunks = self.store.counts()
        dense = self._faiss.describe() if self._faiss is not None else self.manifest.get("dense_index", {"kind": "flat"})
        return {"path": str(self.path), "documents": docs, "chunks": chunks, "generation": self.store.generation,
                "embedder": self.manifest.get("embedder"), "dense_index": dense, "size_bytes": _dir_size(self.path)}


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
