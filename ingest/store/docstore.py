"""SQLite document store: the source of truth. FAISS and BM25 files are rebuilt from it when stale."""

from __future__ import annotations

import json
import re
import os
import sqlite3
import time
from itertools import groupby
from pathlib import Path
from typing import AbstractSet, Any, Callable, Iterable, Iterator, TypeVar
from urllib.parse import quote

import numpy as np

from ingest.core.errors import IndexStateError
from ingest.store.failures import reading, sqlite_failure
from ingest.core.types import Chunk, ChunkedDocument, ChunkRow, DocumentRow, ParsedDocument

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    format TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    headings TEXT NOT NULL,
    page INTEGER,
    page_end INTEGER,
    n_tokens INTEGER NOT NULL,
    context TEXT NOT NULL DEFAULT '',
    embed_key TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal);
CREATE INDEX IF NOT EXISTS chunks_embed_key ON chunks(embed_key);
CREATE TABLE IF NOT EXISTS context_state (
    doc_id TEXT PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    mode TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS context_cache (key TEXT PRIMARY KEY, context TEXT NOT NULL, created_at REAL NOT NULL,
                                          source TEXT);
"""


class SqliteDocStore:
    """Documents, chunks and their vectors in one SQLite file; every write is one transaction.

    A reader (`writable=False`) opens the file read-only and never creates it, its schema or a journal,
    so an index on a read-only disk, or owned by another user, can still be searched.
    """

    def __init__(self, path: Path, writable: bool = True) -> None:
        self.path = Path(path)
        self.writable = writable
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open_writer() if self.writable else self._open_reader()
        return self._conn

    def _open_writer(self) -> sqlite3.Connection:
        conn = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            # a removed document's text is overwritten, not left in free pages (not every build's default)
            conn.execute("PRAGMA secure_delete=ON")
            conn.executescript(SCHEMA)
            if "source" not in {row[1] for row in conn.execute("PRAGMA table_info(context_cache)")}:
                # stores made before sentences recorded their document: their rows stay unattributed (NULL)
                conn.execute("ALTER TABLE context_cache ADD COLUMN source TEXT")
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise sqlite_failure(exc, self.path, writing=True, outcome="nothing was changed") from exc
        return conn

    def _open_reader(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise IndexStateError(f"{self.path} is missing, and with it the index's documents: restore it from a "
                                  "backup, or ingest the documents again")
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            return self._probe(uri)
        except sqlite3.Error as exc:
            code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
            if code not in (8, 14) or os.access(self.path.parent, os.W_OK):  # SQLITE_READONLY, SQLITE_CANTOPEN
                raise sqlite_failure(exc, self.path, writing=False) from exc
            # Reading a WAL database needs its -shm file, which SQLite cannot create in a directory this user
            # may not write. A writer at work keeps a log and a -shm file beside the store (mode=ro reads through
            # them); with neither, the file alone holds every committed write, so it is read as immutable.
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise IndexStateError(
                    f"{self.path.parent} holds writes still in {wal.name}, which can only be read with write access "
                    f"to that directory: give this user write access, or have its owner open the index for writing "
                    f"once (e.g. `citewise ingest FILE --index {self.path.parent}` of an ingested file) to fold them "
                    f"into {self.path.name}") from exc
        try:
            return self._probe(uri + "&immutable=1")
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, self.path, writing=False) from exc

    @staticmethod
    def _probe(uri: str) -> sqlite3.Connection:
        """Connect and read the schema now, so a damaged or unreadable file fails at open, not mid-search."""
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- meta -------------------------------------------------------------------------------
    @property
    @reading
    def generation(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def _bump(self) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES('generation', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    @reading
    def recorded_embedder(self) -> dict[str, Any] | None:
        """The embedder whose vectors the store holds, as recorded by the writer that stored them."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='embedder'").fetchone()
        return json.loads(row[0]) if row else None

    def record_embedder(self, embedder: dict[str, Any]) -> None:
        """Keep the embedder in the store itself, so a lost manifest can be rebuilt without guessing it."""
        try:
            self.conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('embedder', ?)",
                              (json.dumps(embedder, sort_keys=True),))
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, self.path, writing=True, outcome="nothing was changed") from exc

    @reading
    def vector_dim(self) -> int | None:
        """Dimension of the stored vectors (float32 blobs), None when the store holds none."""
        row = self.conn.execute("SELECT LENGTH(embedding) FROM chunks LIMIT 1").fetchone()
        return int(row[0]) // 4 if row else None

    # -- writes -----------------------------------------------------------------------------
    def _transaction(self, work: Callable[[sqlite3.Connection], T], outcome: str) -> T:
        """Run `work` in one transaction that bumps the generation; a failure keeps nothing of it.

        A COMMIT that fails for lack of space may already have rolled back, and the ROLLBACK then fails too:
        the first error is the one reported.
        """
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = work(conn)
            self._bump()
            conn.execute("COMMIT")
            return result
        except BaseException as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite drops an open transaction when the connection closes
            if isinstance(exc, sqlite3.Error):
                raise sqlite_failure(exc, self.path, writing=True, outcome=outcome) from exc
            raise

    def replace_documents(self, docs: list[tuple[str, ChunkedDocument, np.ndarray, list[str]]]) -> int:
        """Insert or replace whole documents with their chunks, vectors and embed keys, atomically."""

        def work(conn: sqlite3.Connection) -> int:
            added = 0
            for doc_id, chunked, vectors, keys in docs:
                doc = chunked.doc
                changed = conn.execute("SELECT id FROM documents WHERE (id = ? OR source = ?) AND content_hash != ?",
                                       (doc_id, doc.source, doc.content_hash)).fetchall()
                for (old_id,) in changed:  # a new version: what was written about the old one goes with it
                    _forget_contexts(conn, old_id, keep={_sentence(c.context) for c in chunked.chunks})
                conn.execute("DELETE FROM documents WHERE id = ? OR source = ?", (doc_id, doc.source))
                conn.execute(
                    "INSERT INTO documents(id, source, title, format, content_hash, text, metadata, ingested_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (doc_id, doc.source, doc.title, doc.format, doc.content_hash, chunked.text,
                     json.dumps(doc.metadata, default=str), time.time()),
                )
                conn.executemany(
                    "INSERT INTO chunks(doc_id, ordinal, start, end, headings, page, page_end, n_tokens, context, "
                    "embed_key, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (doc_id, c.ordinal, c.start, c.end, json.dumps(c.headings), c.page, c.page_end,
                         c.n_tokens, c.context, key, np.asarray(vec, dtype=np.float32).tobytes())
                        for c, vec, key in zip(chunked.chunks, vectors, keys)
                    ],
                )
                if chunked.context_mode:
                    conn.execute("INSERT OR REPLACE INTO context_state(doc_id, mode) VALUES (?, ?)",
                                 (doc_id, chunked.context_mode))
                added += len(chunked.chunks)
            return added

        n = len(docs)
        return self._transaction(work, f"nothing of this batch of {n} document{'s' * (n != 1)} was stored")

    def delete_document(self, doc_id: str) -> int:
        """Remove a document and its chunks, and the cached llm context sentences they carry; returns how many
        chunks went with it."""

        def work(conn: sqlite3.Connection) -> int:
            n = conn.execute("SELECT COUNT(*) FROM chunks WHERE doc_id = ?", (doc_id,)).fetchone()[0]
            # every sentence written for it (in any mode it was ever in), and the unattributed ones it carries
            conn.execute("DELETE FROM context_cache WHERE source = (SELECT source FROM documents WHERE id = ?)",
                         (doc_id,))
            _forget_contexts(conn, doc_id)
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            return int(n)

        return self._transaction(work, "nothing was removed")

    def cache_context(self, key: str, context: str, source: str) -> None:
        """Keep a generated context (autocommitted at once, so a crash keeps what was paid for), with the source
        of the document it was written for, so removing that document removes it too."""
        try:
            self.conn.execute("INSERT OR REPLACE INTO context_cache(key, context, created_at, source) "
                              "VALUES (?, ?, ?, ?)", (key, context, time.time(), source))
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, self.path, writing=True, outcome="the sentence was not cached") from exc

    # -- reads ------------------------------------------------------------------------------
    @reading
    def cached_contexts(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for batch in _batches(sorted(set(keys)), 500):
            marks = ",".join("?" * len(batch))
            found.update(self.conn.execute(f"SELECT key, context FROM context_cache WHERE key IN ({marks})", batch))
        return found

    @reading
    def stale_context_documents(self, mode: str, legacy_mode: str) -> list[str]:
        """Ids of documents whose chunk contexts were made in another mode (or fell back to another).

        Documents stored before modes were recorded per document count as `legacy_mode`, the mode
        the index manifest recorded.
        """
        rows = self.conn.execute(
            "SELECT d.id FROM documents d LEFT JOIN context_state s ON s.doc_id = d.id "
            "WHERE COALESCE(s.mode, ?) != ? ORDER BY d.source", (legacy_mode, mode)).fetchall()
        return [r[0] for r in rows]

    @reading
    def load_document(self, doc_id: str) -> ChunkedDocument:
        """A stored document with its chunks, as the pipeline knows it: re-contextualized without re-parsing."""
        source, title, fmt, content_hash, text, metadata = self.conn.execute(
            "SELECT source, title, format, content_hash, text, metadata FROM documents WHERE id = ?", (doc_id,)
        ).fetchone()
        rows = self.conn.execute(
            "SELECT ordinal, start, end, headings, page, page_end, n_tokens, context FROM chunks "
            "WHERE doc_id = ? ORDER BY ordinal", (doc_id,)).fetchall()
        chunks = [Chunk(ordinal=o, start=a, end=b, text=text[a:b], headings=json.loads(h), page=p, page_end=pe,
                        n_tokens=n, context=c) for o, a, b, h, p, pe, n, c in rows]
        doc = ParsedDocument(source=source, title=title, elements=[], format=fmt, content_hash=content_hash,
                             metadata=json.loads(metadata))
        return ChunkedDocument(doc=doc, text=text, chunks=chunks)

    @reading
    def content_hash(self, source: str) -> str | None:
        row = self.conn.execute("SELECT content_hash FROM documents WHERE source = ?", (source,)).fetchone()
        return row[0] if row else None

    @reading
    def documents(self) -> list[DocumentRow]:
        rows = self.conn.execute(
            "SELECT d.id, d.source, d.title, d.format, d.content_hash, "
            "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id), LENGTH(d.text), d.ingested_at "
            "FROM documents d ORDER BY d.source"
        ).fetchall()
        return [DocumentRow(*r) for r in rows]

    def find_document(self, id_or_source: str) -> DocumentRow | None:
        for row in self.documents():
            if id_or_source in (row.id, row.source):
                return row
        return None

    @reading
    def documents_with_word(self, word: str, enough: int) -> int:
        """How many documents hold `word` as a whole word (any case), counting no further than `enough`:
        a common word stops the scan after a few documents, a rare one reads every text once."""
        pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
        found = 0
        for (text,) in self.conn.execute("SELECT text FROM documents"):
            if pattern.search(text):
                found += 1
                if found >= enough:
                    break
        return found

    def document_text(self, doc_id: str) -> str | None:
        row = self.conn.execute("SELECT text FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row[0] if row else None

    @reading
    def counts(self) -> tuple[int, int]:
        docs = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    @reading
    def chunk_ids(self) -> np.ndarray:
        rows = self.conn.execute("SELECT id FROM chunks ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    @reading
    def vectors(self, ids: Iterable[int], dim: int) -> np.ndarray:
        ids = list(ids)
        out = np.zeros((len(ids), dim), dtype=np.float32)
        for i, batch in enumerate(_batches(ids, 500)):
            marks = ",".join("?" * len(batch))
            found = dict(self.conn.execute(f"SELECT id, embedding FROM chunks WHERE id IN ({marks})", batch))
            for j, cid in enumerate(batch):
                out[i * 500 + j] = np.frombuffer(found[cid], dtype=np.float32)
        return out

    @reading
    def vectors_by_key(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors for texts embedded before (same text, same embedder): reused, not recomputed."""
        found: dict[str, np.ndarray] = {}
        for batch in _batches(sorted(set(keys)), 500):
            marks = ",".join("?" * len(batch))
            for key, blob in self.conn.execute(
                f"SELECT embed_key, embedding FROM chunks WHERE embed_key IN ({marks}) GROUP BY embed_key", batch
            ):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    @reading
    def index_texts(self, neighbours: int = 0) -> Iterator[tuple[int, str]]:
        """(chunk id, text to index) for every chunk, by id: its context line, then its text widened by
        `neighbours` chunks on each side within its document."""
        rows = self.conn.execute(
            "SELECT id, doc_id, context, start, end FROM chunks ORDER BY doc_id, ordinal").fetchall()
        out: list[tuple[int, str]] = []
        for doc_id, group in groupby(rows, key=lambda r: r[1]):
            chunks = list(group)
            text = self.document_text(doc_id) or ""
            for i, (cid, _, context, start, end) in enumerate(chunks):
                lo = min(start, chunks[max(i - neighbours, 0)][3])
                hi = max(end, chunks[min(i + neighbours, len(chunks) - 1)][4])
                body = text[lo:hi]
                out.append((int(cid), f"{context}\n{body}" if context else body))
        out.sort(key=lambda item: item[0])
        return iter(out)

    @reading
    def chunks(self, ids: list[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        for batch in _batches(ids, 500):
            marks = ",".join("?" * len(batch))
            rows = self.conn.execute(
                "SELECT c.id, c.doc_id, d.source, d.title, c.ordinal, c.start, c.end, substr(d.text, c.start + 1, "
                f"c.end - c.start), c.headings, c.page, c.page_end, c.context, c.n_tokens FROM chunks c "
                f"JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
                batch,
            ).fetchall()
            for r in rows:
                out[int(r[0])] = ChunkRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]),
                                          r[9], r[10], r[11], r[12])
        return out


def _sentence(context: str) -> str:
    """The generated sentence of a chunk's context: its last line (an llm context is the trail, then it)."""
    return context.rsplit("\n", 1)[-1]


def _forget_contexts(conn: sqlite3.Connection, doc_id: str, keep: AbstractSet[str] = frozenset()) -> None:
    """Drop the cached llm sentences a document's chunks carry, but those in `keep`.

    The cache is keyed by prompt hash, not by document, so its rows are found by sentence; another document's
    identical sentence goes too, which only costs generating it again. A mode switch stores the same version
    again and drops nothing, so switching back still finds every sentence cached.
    """
    mode = conn.execute("SELECT mode FROM context_state WHERE doc_id = ?", (doc_id,)).fetchone()
    if (mode is not None and not mode[0].startswith("llm")) or conn.execute(
            "SELECT 1 FROM context_cache LIMIT 1").fetchone() is None:
        return  # its chunks carry no generated sentence, or none is cached: spare the scan of the cache
    rows = conn.execute("SELECT context FROM chunks WHERE doc_id = ? AND context != ''", (doc_id,))
    sentences = sorted({_sentence(c) for (c,) in rows} - keep)
    for batch in _batches(sentences, 500):
        conn.execute(f"DELETE FROM context_cache WHERE context IN ({','.join('?' * len(batch))})", batch)


def _batches(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
