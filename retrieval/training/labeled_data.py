"""The user's own labels as training items, mapped onto the chunks of the index they were ingested into.

Two layouts, the ones `citewise eval` reads: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv;
SciFact's records add the gold evidence sentences) and squad-wiki (docs/*.md and questions.jsonl with
answers at character offsets, some questions unanswerable by design). A label names a dataset document;
the index knows it by its source: `beir://<name>/<id>` for records ingested as a dataset (as eval does),
or a file whose name (BEIR: whose stem) is the document's. Offsets into a dataset's files do not hold in
the index's stored text (parsing normalises it), so sentences and answers are found there verbatim, as
quotes are, and a label that cannot be found is dropped and counted rather than guessed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Iterator

from ingest.core.errors import ConfigError
from ingest.core.index import Index
from retrieval.sentences import sentence_spans
from retrieval.training.data_summary import DataSummary
from retrieval.training.items import TrainingItem
from retrieval.training.verbatim import locate, sentence_at

#: Query id -> its items (one per gold document; a query's items share its question).
Labeled = dict[str, list[TrainingItem]]


class LabeledData:
    """Reads a labelled dataset folder and ties each label to the index chunk that holds it.

    `summary` counts what was mapped and what was dropped (gold document not in the index, evidence not
    found in it), so the CLI can say why fewer items came out than there are labels.
    """

    def __init__(self, index: Index) -> None:
        self.index = index
        self.summary = DataSummary()
        self._chunks: dict[str, list[tuple[int, int, int]]] | None = None
        self._texts: dict[str, str] = {}

    def load(self, path: Path, split: str = "train") -> Labeled:
        """Either layout, recognised by its files; anything else is a ConfigError naming the folder."""
        path = Path(path)
        if (path / "questions.jsonl").is_file() and (path / "docs").is_dir():
            return self.squad(path)
        if (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file():
            return self.beir(path, split)
        raise ConfigError(f"{path} is neither a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) nor "
                          "a squad-wiki folder (docs/, questions.jsonl)")

    # -- BEIR ----------------------------------------------------------------------------------------
    def beir(self, path: Path, split: str = "train") -> Labeled:
        """An item per (query, gold document): at the chunk holding most of the query's evidence sentences
        for that document when the dataset gives them (SciFact), with the first of them as `sentence`
        and the others as `more_evidence`;
        otherwise at the document's chunk sharing most words with the query."""
        path = Path(path)
        if not split or split.startswith(".") or "/" in split or "\\" in split:
            raise ConfigError(f"split {split!r} is not a split name (qrels/<split>.tsv)")
        qrels_path = path / "qrels" / f"{split}.tsv"
        if not qrels_path.is_file():
            raise ConfigError(f"{path} has no qrels/{split}.tsv")
        qrels: dict[str, list[str]] = {}
        with open(qrels_path, newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.DictReader(fh, delimiter="\t"), start=2):
                try:
                    positive = int(row["score"]) > 0
                    query, doc = row["query-id"], row["corpus-id"]
                except (KeyError, TypeError, ValueError):
                    raise ConfigError(f"{qrels_path}:{n}: expected query-id, corpus-id and an integer score") from None
                if positive:
                    qrels.setdefault(query, []).append(doc)
        queries = {str(q["_id"]): q for q in _jsonl(path / "queries.jsonl") if str(q.get("_id")) in qrels}
        wanted = {d for docs in qrels.values() for d in docs}
        sentences = {str(d["_id"]): list((d.get("metadata") or {}).get("sentences") or [])
                     for d in _jsonl(path / "corpus.jsonl") if str(d.get("_id")) in wanted}
        docs = self._documents(_beir_id)
        out: Labeled = {}
        for qid in sorted(queries, key=_natural):
            q = queries[qid]
            evidence = (q.get("metadata") or {}).get("evidence") or {}
            for gold in qrels[qid]:
                doc_id = docs.get(gold)
                if doc_id is None:
                    self.summary.dropped["gold document not in the index"] += 1
                    continue
                given = evidence.get(gold) or {}
                wanted_sentences = [sentences.get(gold, [])[i] for i in given.get("sentences", [])
                                    if isinstance(i, int) and 0 <= i < len(sentences.get(gold, []))]
                item = self._beir_item(str(q["text"]), doc_id, wanted_sentences)
                if item is not None:
                    out.setdefault(qid, []).append(item)
        return out

    def _beir_item(self, question: str, doc_id: str, evidence: list[str]) -> TrainingItem | None:
        text = self._text(doc_id)
        if evidence:
            found = [span for span in (locate(text, s) for s in evidence) if span is not None]
            if not found:
                self.summary.dropped["evidence sentence not found in the document"] += 1
                return None
            holding: dict[int, list[tuple[int, int]]] = {}
            for span in found:
                chunk = self._chunk_at(doc_id, *span)
                if chunk is not None:
                    holding.setdefault(chunk[0], []).append(span)
            if not holding:
                self.summary.dropped["evidence sentence not in any chunk"] += 1
                return None
            cid = max(holding, key=lambda c: (len(holding[c]), -c))
            s, e = holding[cid][0]
            more = tuple(dict.fromkeys(text[a:b] for a, b in found if (a, b) != (s, e)))
            return self._mapped(TrainingItem(question, cid, doc_id, True, "qrels", sentence=text[s:e],
                                             more_evidence=more))
        chunks = self._doc_chunks(doc_id)
        if not chunks:
            self.summary.dropped["gold document has no chunks"] += 1
            return None
        words = set(re.findall(r"\w+", question.lower()))
        cid = max(chunks, key=lambda c: (len(words & set(re.findall(r"\w+", text[c[1]:c[2]].lower()))), -c[0]))[0]
        return self._mapped(TrainingItem(question, cid, doc_id, True, "qrels"))

    # -- squad-wiki --------------------------------------------------------------------------------
    def squad(self, path: Path) -> Labeled:
        """Answerable questions at the chunk holding the answer (found in the sentence around its offset in
        the Markdown file); unanswerable ones at the chunk holding the start of their gold paragraph."""
        path = Path(path)
        docs = self._documents(lambda source: PurePath(source).name)
        markdown: dict[str, str] = {}
        out: Labeled = {}
        for q in _jsonl(path / "questions.jsonl"):
            name = str(q.get("doc", ""))
            doc_id = docs.get(name)
            if doc_id is None:
                self.summary.dropped["gold document not in the index"] += 1
                continue
            if name not in markdown:
                file = path / "docs" / name
                markdown[name] = file.read_text(encoding="utf-8") if file.is_file() else ""
            item = self._squad_item(q, doc_id, markdown[name])
            if item is not None:
                out.setdefault(str(q["id"]), []).append(item)
        return out

    def _squad_item(self, q: dict[str, Any], doc_id: str, md: str) -> TrainingItem | None:
        text = self._text(doc_id)
        question = str(q.get("question", "")).strip()
        answers = [a for a in q.get("answers") or [] if isinstance(a, dict) and a.get("text")]
        if q.get("answerable") and answers:
            a = answers[0]
            start = a.get("start")
            if not isinstance(start, int) or start < 0 or md[start:start + len(a["text"])] != a["text"]:
                self.summary.dropped["answer offset does not match the dataset file"] += 1
                return None
            around = sentence_at(md, start, start + len(a["text"]))
            where = locate(text, around)
            inner = locate(text[: where[1]], a["text"], where[0]) if where else None
            chunk = self._chunk_at(doc_id, *inner) if inner else None
            if inner is None or chunk is None:
                self.summary.dropped["answer not found in the indexed document"] += 1
                return None
            (s, e), (cid, c_start, c_end) = inner, chunk
            return self._mapped(TrainingItem(question, cid, doc_id, True, "squad", answer=text[s:e],
                                             sentence=sentence_at(text[c_start:c_end], s - c_start, e - c_start)))
        if q.get("answerable"):
            self.summary.dropped["answerable question without an answer"] += 1
            return None
        paragraph = _paragraph(md, q.get("paragraph"))
        first = sentence_spans(paragraph)[:1]
        where = locate(text, paragraph[first[0][0]:first[0][1]]) if first else None
        chunk = self._chunk_at(doc_id, *where) if where else None
        if chunk is None:
            self.summary.dropped["gold paragraph not found in the indexed document"] += 1
            return None
        return self._mapped(TrainingItem(question, chunk[0], doc_id, False, "squad"))

    # -- the index side ----------------------------------------------------------------------------
    def _documents(self, key: Callable[[str], str]) -> dict[str, str]:
        """Dataset document name -> index document id, by each stored document's source."""
        out: dict[str, str] = {}
        for row in self.index.documents():
            name = key(row.source)
            if name:
                out.setdefault(name, row.id)
        return out

    def _text(self, doc_id: str) -> str:
        if doc_id not in self._texts:
            self._texts[doc_id] = self.index.document_text(doc_id) or ""
        return self._texts[doc_id]

    def _doc_chunks(self, doc_id: str) -> list[tuple[int, int, int]]:
        """(chunk id, start, end) of a document's chunks; every chunk's place is read once, on first use."""
        if self._chunks is None:
            self._chunks = {}
            ids = sorted(self.index.chunk_ids())
            for i in range(0, len(ids), 1000):
                for cid, row in self.index.chunks(ids[i:i + 1000]).items():
                    self._chunks.setdefault(row.doc_id, []).append((cid, row.start, row.end))
            for spans in self._chunks.values():
                spans.sort(key=lambda c: (c[1], c[0]))
        return self._chunks.get(doc_id, [])

    def _chunk_at(self, doc_id: str, start: int, end: int) -> tuple[int, int, int] | None:
        """The chunk holding text[start:end] whole, else the one where it starts."""
        chunks = self._doc_chunks(doc_id)
        return (next((c for c in chunks if c[1] <= start and end <= c[2]), None)
                or next((c for c in chunks if c[1] <= start < c[2]), None))

    def _mapped(self, item: TrainingItem) -> TrainingItem:
        self.summary.items += 1
        if item.answerable:
            self.summary.answerable += 1
        else:
            self.summary.unanswerable += 1
        return item


def query_folds(query_ids: Iterable[str], k: int, seed: int) -> list[list[str]]:
    """The query ids dealt into `k` folds of near-equal size by a seeded hash of each id: the same ids and
    seed give the same folds whatever order they come in, so `--train-folds` can hold one fold out."""
    if k < 2:
        raise ConfigError(f"folds must be at least 2, not {k}")
    order = sorted(set(query_ids), key=lambda q: (hashlib.sha256(f"{seed}:{q}".encode()).hexdigest(), q))
    return [order[i::k] for i in range(k)]


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"{path} is missing")
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{n} is not a JSON line ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{n} is not a JSON object")
            yield row


def _beir_id(source: str) -> str:
    """A dataset id from a stored source: `beir://<name>/<id>`, or a file's stem."""
    if source.startswith("beir://"):
        return source.rsplit("/", 1)[-1]
    return PurePath(source).stem


def _paragraph(md: str, number: Any) -> str:
    """The numbered paragraph of a squad-wiki Markdown file: blocks between blank lines, headings not counted."""
    blocks = [b for b in re.findall(r"[^\n]+(?:\n[^\n]+)*", md) if not b.startswith("#")]
    return blocks[number] if isinstance(number, int) and 0 <= number < len(blocks) else ""


def _natural(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 62, key)
