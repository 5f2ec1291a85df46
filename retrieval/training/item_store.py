"""The training set written about an index, kept beside it at INDEX/training/ so it can be read and resumed.

`items.jsonl` holds one `TrainingItem` a line; `meta.json` records how they were written (the prompts,
the model and its backend, the settings), the counts, and which chunks are done. Writing a chunk's
questions costs model calls, so an interrupted run must not lose or repeat them: a chunk's items are
appended in one write and fsynced, and only then is the chunk marked done in `meta.json` (replaced
atomically). On resume, a line torn by a kill is cut off and items of a chunk not marked done are
removed, so that chunk is written again once and never twice.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ingest.core.errors import IndexStateError
from ingest.core.exclusive_lock import acquire
from retrieval.training.items import TrainingItem

FORMAT_VERSION = 1


class ItemStore:
    """One training set in a folder (`for_index` gives the one beside an index). Holds a lock while open
    for writing, so two runs cannot interleave their chunks."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.items_path = self.root / "items.jsonl"
        self.meta_path = self.root / "meta.json"
        self._meta: dict[str, Any] | None = None
        self._lock: int | None = None

    @classmethod
    def for_index(cls, index_path: Path) -> ItemStore:
        return cls(Path(index_path) / "training")

    # -- reading ------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any] | None:
        """What meta.json records, or None when no set has been started here."""
        if not self.meta_path.exists():
            return None
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexStateError(f"{self.meta_path} is damaged ({exc}); delete {self.root} to write the "
                                  "training set again") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("done_chunks"), list) \
                or meta.get("version") != FORMAT_VERSION:
            raise IndexStateError(f"{self.meta_path} is not a citewise training set of format {FORMAT_VERSION}; "
                                  f"delete {self.root} to write the training set again")
        return meta

    def items(self) -> list[TrainingItem]:
        """Every stored item, in the order written (a torn last line is left out, not repaired: read-only)."""
        return list(self._read(repair=False))

    def done_chunks(self) -> set[int]:
        meta = self.meta()
        return set() if meta is None else {int(c) for c in meta["done_chunks"]}

    # -- writing ------------------------------------------------------------------------------------
    def begin(self, recipe: dict[str, Any], settings: dict[str, Any], fresh: bool = False) -> set[int]:
        """Start a set, or resume the one here when it was written by the same `recipe` (prompts, model,
        everything that shapes an item); returns the chunk ids already done.

        A set written by another recipe is an error unless `fresh`, which replaces it: mixing the two
        would make the data say two things at once.
        """
        self._acquire()
        try:
            return self._begin(recipe, settings, fresh)
        except BaseException:
            self.close()  # a run that cannot start leaves the set to the next one
            raise

    def _begin(self, recipe: dict[str, Any], settings: dict[str, Any], fresh: bool) -> set[int]:
        self.root.mkdir(parents=True, exist_ok=True)
        meta = None if fresh else self.meta()
        if meta is not None and meta.get("recipe") != recipe:
            differs = sorted(k for k in set(recipe) | set(meta.get("recipe") or {})
                             if recipe.get(k) != (meta.get("recipe") or {}).get(k))
            raise IndexStateError(f"{self.root} holds a training set written another way (differs in: "
                                  f"{', '.join(differs)}); start a fresh set to replace it")
        if meta is None:
            if not fresh and self.items_path.exists() and self.items_path.stat().st_size > 0:
                raise IndexStateError(f"{self.items_path} has items but {self.meta_path} is missing; start a "
                                      "fresh set to replace them")
            self.items_path.unlink(missing_ok=True)
            meta = {"version": FORMAT_VERSION, "recipe": recipe, "created_at": time.time(), "done_chunks": [],
                    "counts": {"items": 0, "answerable": 0, "unanswerable": 0, "dropped": {}}}
        meta["settings"] = settings
        self._meta = meta
        self._write_meta()
        done = {int(c) for c in meta["done_chunks"]}
        kept = [it for it in self._read(repair=True) if it.chunk_id in done]
        if self.items_path.exists() and len(kept) != self._count_lines():
            self._replace(kept)  # items of a chunk the kill interrupted: it is written again
        return done

    def append(self, chunk_id: int, items: list[TrainingItem], dropped: Counter[str] | None = None) -> None:
        """Store one chunk's items and mark the chunk done, in that order, both on disk before returning."""
        meta = self._require_open()
        if items:
            data = "".join(json.dumps(it.to_json(), ensure_ascii=False) + "\n" for it in items)
            with open(self.items_path, "a", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        counts = meta["counts"]
        counts["items"] += len(items)
        counts["answerable"] += sum(1 for it in items if it.answerable)
        counts["unanswerable"] += sum(1 for it in items if not it.answerable)
        for reason, n in (dropped or {}).items():
            counts["dropped"][reason] = counts["dropped"].get(reason, 0) + n
        meta["done_chunks"].append(int(chunk_id))
        self._write_meta()

    def rewrite(self, items: list[TrainingItem], note: dict[str, Any] | None = None) -> None:
        """Replace every item at once (negatives mined into them); `note` is merged into meta.json."""
        meta = self._require_open()
        self._replace(items)
        meta.update(note or {})
        self._write_meta()

    def forget(self, live_chunks: Callable[[], Iterable[int]]) -> int:
        """Drop the items of chunks the index no longer holds (a removed or re-ingested document), so no text
        of a removed document stays in the set; returns how many went. `live_chunks` is asked only when there
        is a set (every ingest calls this). Takes the set's lock for the rewrite unless this store already holds
        it (IndexBusyError while another run writes the set).

        Their chunks stay marked done: an id is never reused, so nothing would sample them again."""
        if not self.items_path.exists():
            return 0
        held = self._lock is not None
        self._acquire()
        try:
            items = list(self._read(repair=True))
            live = set(live_chunks())
            kept = [it for it in items if it.chunk_id in live]
            gone = len(items) - len(kept)
            if gone:
                self._replace(kept)
                meta = self._meta if held else self.meta()
                if meta is not None:
                    counts = meta["counts"]
                    counts["items"] = len(kept)
                    counts["answerable"] = sum(1 for it in kept if it.answerable)
                    counts["unanswerable"] = len(kept) - counts["answerable"]
                    meta["forgotten"] = int(meta.get("forgotten", 0)) + gone
                    self._meta = meta
                    self._write_meta()
            return gone
        finally:
            if not held:
                self.close()

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        self._meta = None

    def __enter__(self) -> ItemStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------
    def _acquire(self) -> None:
        if self._lock is None:
            self._lock = acquire(self.root / ".lock", f"another run is writing the training set in {self.root}")

    def _require_open(self) -> dict[str, Any]:
        if self._meta is None:
            raise RuntimeError("ItemStore.begin() must be called before writing")
        return self._meta

    def _read(self, repair: bool) -> Iterator[TrainingItem]:
        """Parse items.jsonl; a last line without its newline is a write a kill cut short (cut off when
        `repair`). Any other bad line is damage, named by line number."""
        if not self.items_path.exists():
            return
        raw = self.items_path.read_bytes()
        whole = raw.rfind(b"\n") + 1
        if whole < len(raw) and repair:
            with open(self.items_path, "r+b") as fh:
                fh.truncate(whole)
                fh.flush()
                os.fsync(fh.fileno())
        for n, line in enumerate(raw[:whole].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield TrainingItem.from_json(json.loads(line))
            except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
                raise IndexStateError(f"{self.items_path}:{n} is damaged ({exc}); delete {self.root} to write "
                                      "the training set again") from None

    def _count_lines(self) -> int:
        return sum(1 for line in self.items_path.read_bytes().splitlines() if line.strip())

    def _replace(self, items: list[TrainingItem]) -> None:
        tmp = self.items_path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(it.to_json(), ensure_ascii=False) + "\n" for it in items)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.items_path)
        self._sync_dir()

    def _write_meta(self) -> None:
        meta = self._require_open()
        meta["updated_at"] = time.time()
        tmp = self.meta_path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.meta_path)
        self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
