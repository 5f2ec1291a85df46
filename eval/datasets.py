"""Dataset readers: any BEIR-layout folder, and the squad-wiki layout (Markdown docs + questions)."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ingest.core.errors import ConfigError
from ingest.core.types import Element, ParsedDocument


@dataclass
class BeirDataset:
    """corpus.jsonl, queries.jsonl and qrels/<split>.tsv, as BEIR ships them."""

    name: str
    path: Path
    split: str
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    query_metadata: dict[str, dict[str, object]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, split: str = "train", limit: int | None = None) -> BeirDataset:
        path = Path(path)
        if not split or split.startswith(".") or "/" in split or "\\" in split:
            raise ConfigError(f"--split {split!r} is not a split name (qrels/<split>.tsv)")
        for needed in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
            if not (path / needed).exists():
                have = sorted(p.stem for p in (path / "qrels").glob("*.tsv")) if needed.startswith("qrels") else []
                splits = f" (its splits: {', '.join(have)}; choose one with --split)" if have else ""
                raise ConfigError(f"{path} is not a BEIR dataset with split {split!r}: {needed} is missing{splits}")
        qrels: dict[str, dict[str, int]] = {}
        with open(path / "qrels" / f"{split}.tsv", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if int(row["score"]) > 0:
                    qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
        queries: dict[str, str] = {}
        metadata: dict[str, dict[str, object]] = {}
        with open(path / "queries.jsonl") as fh:
            for line in fh:
                q = json.loads(line)
                if q["_id"] in qrels:
                    queries[q["_id"]] = q["text"]
                    metadata[q["_id"]] = q.get("metadata", {})
        ids = sorted(queries, key=_natural)[:limit] if limit else sorted(queries, key=_natural)
        queries = {i: queries[i] for i in ids}
        corpus: dict[str, dict[str, str]] = {}
        with open(path / "corpus.jsonl") as fh:
            for line in fh:
                d = json.loads(line)
                corpus[str(d["_id"])] = {"title": d.get("title", ""), "text": d.get("text", "")}
        return cls(path.name, path, split, corpus, queries, {i: qrels[i] for i in ids},
                   {i: metadata[i] for i in ids})

    def documents(self) -> list[ParsedDocument]:
        """Each corpus record as a parsed document: its title as the heading, its text as one paragraph."""
        docs = []
        for doc_id, d in self.corpus.items():
            elements = [Element(d["title"].strip(), "Title", 0)] if d["title"].strip() else []
            elements.append(Element(d["text"].strip() or d["title"].strip(), "NarrativeText"))
            raw = json.dumps(d, sort_keys=True).encode()
            docs.append(ParsedDocument(source=self.source(doc_id), title=d["title"].strip() or doc_id,
                                       elements=elements, format="beir",
                                       content_hash=hashlib.sha256(raw).hexdigest()))
        return docs

    def source(self, doc_id: str) -> str:
        return f"beir://{self.name}/{doc_id}"

    @staticmethod
    def doc_id(source: str) -> str:
        return source.rsplit("/", 1)[-1]

    def fingerprint(self) -> str:
        """The corpus's content hash: a copied or re-extracted dataset (new mtimes) still finds its index."""
        digest = hashlib.sha256()
        with open(self.path / "corpus.jsonl", "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:12]


@dataclass
class SquadQuestion:
    id: str
    question: str
    doc: str
    answerable: bool
    answers: list[str]


@dataclass
class SquadWikiDataset:
    """docs/*.md plus questions.jsonl (answers with offsets; some questions unanswerable by design)."""

    name: str
    path: Path
    questions: list[SquadQuestion]

    @classmethod
    def load(cls, path: Path, limit: int | None = None) -> SquadWikiDataset:
        path = Path(path)
        if not (path / "questions.jsonl").exists() or not (path / "docs").is_dir():
            raise ConfigError(f"{path} is not a squad-wiki dataset: needs docs/ and questions.jsonl")
        questions = []
        with open(path / "questions.jsonl") as fh:
            for line in fh:
                q = json.loads(line)
                questions.append(SquadQuestion(q["id"], q["question"], q["doc"], bool(q["answerable"]),
                                               sorted({a["text"] for a in q.get("answers", [])})))
        return cls(path.name, path, questions[:limit] if limit else questions)

    @property
    def docs_dir(self) -> Path:
        return self.path / "docs"

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for f in sorted(self.docs_dir.glob("*")):
            digest.update(f.name.encode() + f.read_bytes())
        return digest.hexdigest()[:12]


def _natural(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 62, key)
