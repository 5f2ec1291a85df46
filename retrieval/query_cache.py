"""Query analyses cached by query text: an in-memory LRU in front of an optional SQLite file."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

CACHE_FILE = "query-analysis.sqlite"


class QueryCache:
    """Maps a key (model, prompt version, options and query text) to a JSON-able value.

    The disk file makes repeated evaluation runs and repeated questions free; the LRU bounds memory.
    """

    def __init__(self, directory: Path | None = None, size: int = 1024) -> None:
        self.directory = Path(directory) if directory else None
        self.size = size
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection | None:
        if self.directory is None:
            return None
        if self._conn is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.directory / CACHE_FILE, check_same_thread=False)
            self._conn.execute("CREATE TABLE IF NOT EXISTS analysis (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._conn.commit()
        return self._conn

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
            db = self._db()
            row = db.execute("SELECT value FROM analysis WHERE key = ?", (key,)).fetchone() if db else None
            if row is None:
                return None
            value = json.loads(row[0])
            self._remember(key, value)
            return value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._remember(key, value)
            db = self._db()
            if db is not None:
                db.execute("INSERT OR REPLACE INTO analysis (key, value) VALUES (?, ?)", (key, json.dumps(value)))
                db.commit()

    def _remember(self, key: str, value: Any) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self.size:
            self._memory.popitem(last=False)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
