"""Candidate near misses made by swapping one name, date or number of a question for another of the same kind
that the passage uses.

SQuAD 2.0's unanswerable questions were written by changing a word of an answerable one, and the new word is
usually one the article uses elsewhere ("When was the French version of the word Norman first recorded?" where
the passage records the Latin one). A swap within the passage makes such questions without asking the model
to pick a word: asked for an edit, the 0.5B model mostly named a word its question does not contain. Swaps keep
the kind (a person for a person, a date for a date), so the question still reads as one the passage could
answer. Whether a candidate is really unanswerable is not decided here: the data-preparation model judges each
one (`QuestionWriter`).
"""

from __future__ import annotations

import random
import re
from typing import Callable, Sequence

#: (text, kind) of the names, dates and numbers in a text: spaCy's entity labels in the product.
Entities = Sequence[tuple[str, str]]
Tagger = Callable[[str], Entities]

#: Entities that are the question's own words, not a thing it names ("what century", "first").
_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how)\b", re.IGNORECASE)
_SKIP_KINDS = {"ORDINAL"}
#: A capitalized word inside a question (not its first): a name the tagger may have missed in the question
#: while tagging it in the passage ("Rollo").
_CAPITALIZED = re.compile(r"(?<=\s)[A-Z][\w'’-]+")


def _bare(text: str) -> str:
    """An entity without its leading article: the question keeps its own ("the 10th century" -> "10th century")."""
    return re.sub(r"^(?:the|The)\s+", "", text.strip())


def _replace(question: str, old: str, new: str) -> str | None:
    edited, count = re.subn(rf"(?<![\w]){re.escape(old)}(?![\w])", lambda _: new, question, count=1)
    return edited if count and edited != question else None


def _slots(question: str, question_entities: Entities, kinds: dict[str, str]) -> list[tuple[str, str]]:
    """The question's swappable phrases with their kind: its own entities, and capitalized words the passage
    tagged (the tagger reads a short question with less context than a paragraph)."""
    out: list[tuple[str, str]] = []
    for text, kind in ((_bare(t), k) for t, k in question_entities):
        if text and kind not in _SKIP_KINDS and not _WH.search(text) and (text, kind) not in out:
            out.append((text, kind))
    for m in _CAPITALIZED.finditer(question):
        word = m.group(0)
        if word in kinds and not any(word in text for text, _ in out):
            out.append((word, kinds[word]))
    return out


def swap_candidates(question: str, question_entities: Entities, passage_entities: Entities,
                    rng: random.Random, limit: int = 6) -> list[str]:
    """Up to `limit` edits of `question`, each changing one of its entities to another of the same kind that the
    passage holds and the question does not, or exchanging two of its entities of one kind (a reversed relation:
    "Who did King Charles III swear fealty to?"). Slots are interleaved, so the first few candidates change
    different words. Seeded by `rng`, so a set is written the same way twice."""
    passage_entities = [(_bare(t), k) for t, k in passage_entities if _bare(t)]
    kinds: dict[str, str] = {}
    for text, kind in passage_entities:
        kinds.setdefault(text, kind)
    slots = _slots(question, question_entities, kinds)
    lowered = question.lower()
    pools: list[list[str]] = []
    for old, kind in slots:
        choices = sorted({text for text, k in passage_entities if k == kind and text.lower() not in lowered
                          and old.lower() not in text.lower() and not _WH.search(text)})
        rng.shuffle(choices)
        pools.append([e for e in (_replace(question, old, new) for new in choices) if e])
    for i, (a, kind) in enumerate(slots):
        for b, other in slots[i + 1:]:
            if kind == other and a not in b and b not in a:
                swapped = _replace(question, a, "\x00")
                swapped = _replace(swapped, b, a) if swapped else None
                if swapped:
                    pools.insert(0, [swapped.replace("\x00", b)])
    out: list[str] = []
    seen = {lowered}
    for turn in range(max((len(p) for p in pools), default=0)):
        for pool in pools:
            if turn < len(pool) and pool[turn].lower() not in seen:
                seen.add(pool[turn].lower())
                out.append(pool[turn])
                if len(out) >= limit:
                    return out
    return out
