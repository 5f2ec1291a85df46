"""Training items + the index -> labelled (question, passage) pairs at sentence and chunk granularity.

The scorer is asked two things at run time: does this chunk answer the question (reranking), and
does this sentence (evidence selection). So every item yields pairs at both levels: its evidence
sentence and its source chunk as positives; the chunk's other sentences, the chunks the search
confuses with the source (and their closest sentences), and near-miss questions against the chunk
they almost match as negatives.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from typing import Iterable

from ingest.core.index import Index
from ingest.core.types import ChunkRow
from retrieval.sentences import sentence_spans
from retrieval.training.items import TrainingItem
from retrieval.training.pairs import Kind, PairSet, TrainingPair

#: Sentences shorter than this (headings, list bullets, "See below.") say too little to be judged alone.
MIN_SENTENCE_CHARS = 20
_WORD = re.compile(r"\w+")
_FETCH = 500


def chunk_passage(row: ChunkRow) -> str:
    """What the scorer reads for a whole chunk: its context line (title, sections) then its text, exactly
    what the reranking stages read (PipelineFactory.texts), so training and use see the same input."""
    return f"{row.context}\n{row.text}" if row.context else row.text


def sentence_passage(title: str, sentence: str) -> str:
    """What the scorer reads for one sentence: the document title, then the sentence.

    The title names the topic a sentence's "it" or "this PEP" refers to, at a few word pieces; the
    section path and neighbouring sentences would cost many more and make a sentence pair look like
    a chunk pair, blurring the two questions the scorer answers.
    """
    return f"{title}\n{sentence}" if title else sentence


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2}


def _best_sentences(question: str, sentences: list[str], n: int) -> list[str]:
    """The `n` sentences sharing the most words with the question (per square root of their length, so long
    sentences do not win by size); a cheap, deterministic stand-in for "the sentence a model would confuse"."""
    q = _words(question)
    scored = [(len(q & w) / math.sqrt(len(w) or 1), -i, s) for i, s in enumerate(sentences) for w in [_words(s)]]
    return [s for _, _, s in sorted(scored, reverse=True)[:n]]


class PairBuilder:
    """Deterministic for a seed: the same items and index give the same pairs, split the same way."""

    def __init__(self, index: Index, seed: int = 13, held_out: float = 0.1, siblings: int = 3,
                 near_miss_sentences: int = 2) -> None:
        self.index = index
        self.seed = seed
        self.held_out = held_out
        self.siblings = siblings
        self.near_miss_sentences = near_miss_sentences

    def build(self, items: Iterable[TrainingItem]) -> PairSet:
        items = list(items)
        rows = self._rows(items)
        held = self.held_out_questions(items)
        pairs: dict[tuple[str, str], TrainingPair] = {}
        used: Counter[str] = Counter()
        skipped = 0
        for item in items:
            source = rows.get(item.chunk_id)
            if source is None:  # removed from the index since the item was written
                skipped += 1
                continue
            used[item.origin] += 1
            for pair in self._pairs(item, source, rows):
                key = (pair.question, pair.passage)
                # a passage that answers the question in one item is no negative for it in another
                if key not in pairs or pair.label > pairs[key].label:
                    pairs[key] = pair
        train = [p for p in pairs.values() if p.question not in held]
        held_out = [p for p in pairs.values() if p.question in held]
        return PairSet(train, held_out, used, skipped)

    def _rows(self, items: list[TrainingItem]) -> dict[int, ChunkRow]:
        ids = sorted({i.chunk_id for i in items} | {n for i in items for n in i.negatives})
        rows: dict[int, ChunkRow] = {}
        for start in range(0, len(ids), _FETCH):
            rows.update(self.index.chunks(ids[start: start + _FETCH]))
        return rows

    def held_out_questions(self, items: list[TrainingItem]) -> set[str]:
        """About `held_out` of the distinct questions, chosen by a seeded hash of the question (the same
        question is held out whatever the items' order), answerable and near-miss questions apart so the
        held-out slice has positives to calibrate on: at least one of each kind that has two."""
        answerable = {i.question for i in items if i.answerable}
        groups = [sorted(answerable), sorted({i.question for i in items} - answerable)]
        held: set[str] = set()
        for questions in groups:
            if len(questions) < 2 or self.held_out <= 0:
                continue
            n = max(1, round(len(questions) * self.held_out))
            held.update(sorted(questions, key=lambda q: hashlib.sha256(f"{self.seed}|{q}".encode()).hexdigest())[:n])
        return held

    def _pairs(self, item: TrainingItem, source: ChunkRow, rows: dict[int, ChunkRow]) -> list[TrainingPair]:
        def pair(passage: str, label: float, level: str, kind: Kind) -> TrainingPair:
            return TrainingPair(item.question, passage, label, level, kind, item.origin)  # type: ignore[arg-type]

        out: list[TrainingPair] = []
        sentences = self._sentences(source)
        if item.answerable:
            out.append(pair(chunk_passage(source), 1.0, "chunk", "positive"))
            if item.sentence:
                out.append(pair(sentence_passage(source.title, item.sentence), 1.0, "sentence", "positive"))
                out += [pair(sentence_passage(source.title, s), 0.0, "sentence", "sibling")
                        for s in self._siblings(item, source, sentences)]
        else:
            out.append(pair(chunk_passage(source), 0.0, "chunk", "near-miss"))
            out += [pair(sentence_passage(source.title, s), 0.0, "sentence", "near-miss")
                    for s in _best_sentences(item.question, sentences, self.near_miss_sentences)]
        for cid in item.negatives:
            row = rows.get(cid)
            if row is None or cid == item.chunk_id:
                continue
            out.append(pair(chunk_passage(row), 0.0, "chunk", "hard"))
            out += [pair(sentence_passage(row.title, s), 0.0, "sentence", "hard")
                    for s in _best_sentences(item.question, self._sentences(row), 1)]
        return out

    def _siblings(self, item: TrainingItem, source: ChunkRow, sentences: list[str]) -> list[str]:
        """Up to `siblings` other sentences of the source chunk: neither overlapping an evidence sentence
        (the splitter may cut them differently) nor holding the answer."""
        assert item.sentence is not None
        spans = []
        for known in (item.sentence, *item.more_evidence):
            at = source.text.find(known)
            if at >= 0:
                spans.append((at, at + len(known)))
        candidates = []
        for start, end in sentence_spans(source.text):
            text = source.text[start:end]
            if text not in sentences or any(start < b and a < end for a, b in spans):
                continue
            if (item.answer and item.answer in text) or text in item.sentence:
                continue
            candidates.append(text)
        rng = random.Random(f"{self.seed}|{item.question}|{item.chunk_id}")
        picked = set(rng.sample(range(len(candidates)), min(self.siblings, len(candidates))))
        return [s for i, s in enumerate(candidates) if i in picked]

    @staticmethod
    def _sentences(row: ChunkRow) -> list[str]:
        return [row.text[s:e] for s, e in sentence_spans(row.text) if e - s >= MIN_SENTENCE_CHARS]
