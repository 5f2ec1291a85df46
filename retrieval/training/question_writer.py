"""Synthetic training questions about an index's own chunks, written by the data-preparation model.

For each sampled chunk the model writes questions the chunk answers, each with its answer copied from
the chunk, and near misses: questions that look answerable from the chunk while it does not answer them
(a changed name, number, date or relation, as SQuAD 2.0's unanswerable questions are), made by swapping a name,
date or number of a question the chunk answers for another of the same kind from the chunk (`swap_candidates`),
or, where the question has none, by the model editing one of its words.
Neither is taken on the model's word. An answer must be in the chunk's stored text, verbatim up to
whitespace, case and quote marks, or the item is dropped (the item keeps the chunk's wording); a near miss
is kept only when the same model, asked separately whether the chunk answers it, says no. Prompts are short
and put the passage first, so a small model on a few cores reads each chunk once (llama.cpp reuses the
shared prefix) and the replies are held to a JSON schema, as the query writer's are.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from typing import Any

from ingest.core.generator import Generator, Message
from ingest.core.index import Index
from ingest.core.progress import NullProgress, Progress
from ingest.core.settings.train import TrainSettings
from ingest.core.text import normalize_ws
from ingest.core.types import ChunkRow
from retrieval.training.data_summary import DataSummary
from retrieval.training.entity_tagger import EntityTagger
from retrieval.training.item_store import ItemStore
from retrieval.training.items import TrainingItem
from retrieval.training.near_miss_edits import Tagger, swap_candidates
from retrieval.training.verbatim import ANSWER_MATCH, locate_answer, sentence_at

PROMPT_VERSION = 3
#: One system line for writing and judging, so every call about a chunk shares the prefix up to its passage.
SYSTEM = "You write and check quiz questions about a passage."
ASK = ("Write {n} different questions that the passage answers. For each, first copy the answer from the "
       "passage word for word (a short phrase), then write the question.")
#: A near miss is an edit of a question the chunk answers: the model picks a word and what to put in its
#: place. Asked to write whole near-miss questions, the 0.5B model repeated the question it was given.
EDIT = ("Question: {q}\nPick one word of this question (a name, number, date or relation) and a different word "
        "to put in its place, so that the passage no longer answers the question.")
JUDGE = "Question: {q}\nDoes the passage answer this question? Answer only yes or no."
QUESTION_CHARS = 160
ANSWER_CHARS = 80
#: Swaps judged per question at most: each judgement is a model call, and the swaps after the first few change
#: the same words again.
SWAPS_JUDGED = 3
#: How near misses are made, recorded in the set's recipe.
EDITS = "entity swaps within the passage (spaCy en_core_web_sm 3.8.0), else the model's one-word edit"


class QuestionWriter:
    """Writes synthetic `TrainingItem`s for a seeded sample of an index's chunks into an `ItemStore`."""

    def __init__(self, model: Generator, settings: TrainSettings, max_tokens: int = 200,
                 passage_chars: int = 1200, min_chars: int = 200, judge_threshold: float = 0.5,
                 tagger: Tagger | None = None) -> None:
        """`max_tokens` bounds each reply; the model reads the first `passage_chars` of a chunk; chunks
        shorter than `min_chars` are not sampled (a heading or a code line has nothing to ask about); a near
        miss is kept when the model's P(yes) that the chunk answers it is below `judge_threshold`. `tagger`
        finds the names, dates and numbers a near miss swaps (spaCy's small model by default)."""
        self.model = model
        self.tagger: Tagger = tagger if tagger is not None else EntityTagger()
        self.settings = settings
        self.max_tokens = max_tokens
        self.passage_chars = passage_chars
        self.min_chars = min_chars
        self.judge_threshold = judge_threshold

    def recipe(self) -> dict[str, Any]:
        """Everything that shapes an item: an `ItemStore` resumes a set only when this is unchanged. The
        number of chunks is not in it, since a larger sample extends a smaller one (see `sample`)."""
        s = self.settings
        return {"prompt_version": PROMPT_VERSION, "prompts": {"system": SYSTEM, "ask": ASK, "near_miss": EDIT,
                                                               "judge": JUDGE},
                "near_miss_edits": EDITS, "swaps_judged": SWAPS_JUDGED, "answer_match": ANSWER_MATCH,
                "model": self.model.name, "backend": type(self.model).__name__,
                "questions_per_chunk": s.questions_per_chunk, "near_misses_per_chunk": s.near_misses_per_chunk,
                "seed": s.seed, "max_tokens": self.max_tokens, "passage_chars": self.passage_chars,
                "min_chars": self.min_chars, "judge_threshold": self.judge_threshold}

    # -- which chunks ------------------------------------------------------------------------------
    def sample(self, index: Index, n: int | None = None) -> list[int]:
        """Up to `n` (default `synthetic_chunks`) chunk ids long enough to ask about, spread over documents:
        documents in a seeded order, one chunk from each in turn. The order depends only on the seed and the
        index, so a run asked for more chunks starts with the chunks a smaller run took."""
        n = self.settings.synthetic_chunks if n is None else n
        by_doc: dict[str, list[int]] = {}
        ids = sorted(index.chunk_ids())
        for i in range(0, len(ids), 1000):
            for cid, row in sorted(index.chunks(ids[i:i + 1000]).items()):
                if len(row.text.strip()) >= self.min_chars:
                    by_doc.setdefault(row.doc_id, []).append(cid)
        rng = random.Random(self.settings.seed)
        docs = sorted(by_doc)
        rng.shuffle(docs)
        for doc in docs:
            rng.shuffle(by_doc[doc])
        picked: list[int] = []
        for turn in range(max((len(v) for v in by_doc.values()), default=0)):
            picked += [by_doc[d][turn] for d in docs if turn < len(by_doc[d])]
            if len(picked) >= n:
                break
        return picked[:n]

    # -- writing -----------------------------------------------------------------------------------
    def write(self, index: Index, store: ItemStore, progress: Progress | None = None, fresh: bool = False,
              n: int | None = None) -> DataSummary:
        """Write items for the sampled chunks the store does not have yet; each chunk is stored (and so
        survives a kill) as soon as it is done."""
        progress = progress or NullProgress()
        started = time.perf_counter()
        done = store.begin(self.recipe(), self.settings.model_dump(mode="json"), fresh=fresh)
        store.forget(index.chunk_ids)  # what a removal made while this set was busy
        chunks = self.sample(index, n)
        todo = [c for c in chunks if c not in done]
        summary = DataSummary(chunks_resumed=len(chunks) - len(todo))
        progress.stage("questions", len(chunks))
        progress.advance("questions", summary.chunks_resumed)
        for cid in todo:
            row = index.chunks([cid]).get(cid)
            if row is None:  # removed from the index since sampling
                summary.dropped["chunk removed"] += 1
                continue
            items, dropped = self.items_for(row)
            store.append(cid, items, dropped)
            summary.chunks_done += 1
            summary.items += len(items)
            summary.answerable += sum(1 for it in items if it.answerable)
            summary.unanswerable += sum(1 for it in items if not it.answerable)
            summary.dropped.update(dropped)
            progress.advance("questions")
        summary.seconds = time.perf_counter() - started
        return summary

    def items_for(self, chunk: ChunkRow) -> tuple[list[TrainingItem], Counter[str]]:
        """One chunk's answerable questions and near misses, and what was dropped, by reason."""
        dropped: Counter[str] = Counter()
        items = self._answerable(chunk, dropped)
        seen = {normalize_ws(it.question).lower() for it in items}
        if self.settings.near_misses_per_chunk:
            items += self._near_misses(chunk, [it.question for it in items], seen, dropped)
        return items, dropped

    def _passage(self, chunk: ChunkRow) -> str:
        return chunk.text[: self.passage_chars]

    def _messages(self, chunk: ChunkRow, ask: str) -> list[Message]:
        # The passage first and the request after it: the calls about one chunk share the longest prefix.
        return [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Passage:\n{self._passage(chunk)}\n\n{ask}"}]

    def _reply(self, messages: list[Message], schema: dict[str, Any], key: str,
               dropped: Counter[str]) -> list[Any]:
        """The schema's list under `key`, or nothing when the reply cannot be used (cut off by the budget)."""
        completion = self.model.chat(messages, schema=schema, max_tokens=self.max_tokens)
        try:
            data = json.loads(completion.text)
        except json.JSONDecodeError:
            dropped["unusable reply"] += 1
            return []
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, list):
            dropped["unusable reply"] += 1
            return []
        return value

    def _answerable(self, chunk: ChunkRow, dropped: Counter[str]) -> list[TrainingItem]:
        n = self.settings.questions_per_chunk
        pair = {"type": "object", "required": ["answer", "question"],
                "properties": {"answer": {"type": "string", "minLength": 1, "maxLength": ANSWER_CHARS},
                               "question": {"type": "string", "minLength": 8, "maxLength": QUESTION_CHARS}}}
        schema = {"type": "object", "required": ["items"],
                  "properties": {"items": {"type": "array", "minItems": 1, "maxItems": n, "items": pair}}}
        out: list[TrainingItem] = []
        seen: set[str] = set()
        for entry in self._reply(self._messages(chunk, ASK.format(n=n)), schema, "items", dropped)[:n]:
            question = _one_question(str(entry.get("question", ""))) if isinstance(entry, dict) else ""
            answer = str(entry.get("answer", "")) if isinstance(entry, dict) else ""
            if not question or question.lower() in seen:
                dropped["repeated question" if question else "not a question"] += 1
                continue
            span = locate_answer(chunk.text, answer)
            if span is None:
                dropped["answer not verbatim in the chunk"] += 1
                continue
            seen.add(question.lower())
            out.append(TrainingItem(question=question, chunk_id=chunk.id, doc_id=chunk.doc_id, answerable=True,
                                    origin="synthetic", answer=chunk.text[span[0]:span[1]],
                                    sentence=sentence_at(chunk.text, *span)))
        return out

    def _near_misses(self, chunk: ChunkRow, answered: list[str], seen: set[str],
                     dropped: Counter[str]) -> list[TrainingItem]:
        """Up to `near_misses_per_chunk` near misses, spread over the chunk's answered questions: swaps of a
        question's name, date or number for another of the chunk's (up to `SWAPS_JUDGED` judged per question),
        or the model's one-word edit where the question has nothing to swap. Each is kept only when the model,
        asked separately, says the chunk does not answer it (P(yes) under `judge_threshold` and under the
        P(yes) of the question it was made from)."""
        n = self.settings.near_misses_per_chunk
        if not answered:
            dropped["near miss without a question to edit"] += n
            return []
        per_question = -(-n // len(answered))
        passage_entities = self.tagger(self._passage(chunk))
        rng = random.Random(f"{self.settings.seed}:{chunk.id}")
        out: list[TrainingItem] = []
        for original in answered:
            if len(out) >= n:
                break
            candidates = swap_candidates(original, self.tagger(original), passage_entities, rng,
                                         limit=SWAPS_JUDGED)
            if not candidates:
                edited = self._model_edit(chunk, original)
                if edited is None:
                    dropped["edit not applicable to the question"] += 1
                    continue
                candidates = [edited]
            kept, p_original = 0, None
            for question in candidates:
                if kept >= per_question or len(out) >= n:
                    break
                if question.lower() in seen:
                    dropped["repeated question"] += 1
                    continue
                seen.add(question.lower())
                p_yes, _ = self.model.yes_probability(self._messages(chunk, JUDGE.format(q=question)))
                if p_yes >= self.judge_threshold:
                    dropped["near miss the chunk answers"] += 1
                    continue
                # A small model's P(yes) is poorly calibrated (answered questions score below one half too), so
                # the edit must also read as less answerable than the question it was made from.
                if p_original is None:
                    p_original, _ = self.model.yes_probability(self._messages(chunk, JUDGE.format(q=original)))
                if p_yes >= p_original:
                    dropped["near miss judged no less answerable than its original"] += 1
                    continue
                kept += 1
                out.append(TrainingItem(question=question, chunk_id=chunk.id, doc_id=chunk.doc_id,
                                        answerable=False, origin="synthetic"))
        return out

    def _model_edit(self, chunk: ChunkRow, original: str) -> str | None:
        """The model's one-word edit of `original`, or None when its reply names no word of the question."""
        schema = {"type": "object", "required": ["word", "replacement"], "properties": {
            "word": {"type": "string", "minLength": 1, "maxLength": 40},
            "replacement": {"type": "string", "minLength": 1, "maxLength": 40}}}
        completion = self.model.chat(self._messages(chunk, EDIT.format(q=original)), schema=schema,
                                     max_tokens=self.max_tokens)
        return _edited(original, completion.text)


def _edited(question: str, reply: str) -> str | None:
    """The question with the reply's word replaced (first whole-word match, any case), or None when the
    reply is unusable, names no word of the question, or replaces it with itself."""
    try:
        data = json.loads(reply)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    word, new = normalize_ws(str(data.get("word", ""))), normalize_ws(str(data.get("replacement", "")))
    if not word or not new or word.lower() == new.lower():
        return None
    edited, count = re.subn(rf"(?<!\w){re.escape(word)}(?!\w)", lambda _: new, question, count=1, flags=re.IGNORECASE)
    return (_one_question(edited) or None) if count else None


def _one_question(text: str) -> str:
    """The text up to its first question mark: a small model runs on past the question ("... ? - It is
    used to ..."); a reply with no question mark is no question."""
    text = normalize_ws(text)
    end = text.find("?")
    return text[: end + 1] if end >= 8 else ""
