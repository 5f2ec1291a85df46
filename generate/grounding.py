"""Whether a statement says only what its cited sentences say: the names and numbers it may use.

Embedding similarity cannot tell "X was written by Guido" from "X was written by Napoleon"; a check on
the specifics a statement names can. These helpers serve the verifier (generate/verifier.py).
"""

from __future__ import annotations

import re
from pathlib import PurePath

from retrieval.evidence import Evidence

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
WORD = re.compile(r"[^\W_][\w'’-]*")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)})
_NUMBER_WORDS.update({"hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000"})
_ORDINALS = {w: str(i) for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split(), 1)}
#: "one" and "zero" are too often not numbers ("one of", "no one") to count as a statement's specifics.
_SPECIFIC_NUMBER_WORDS = {w: v for w, v in _NUMBER_WORDS.items() if w not in ("zero", "one")}


#: Function words, which say nothing a statement could have taken from an instruction.
_FUNCTION_WORDS = frozenset("""a an the and or but nor of to in on at by for with from as into onto about over under
than then that this these those there here it its it's is are was were be been being has have had do does did
will would shall should can could may might must not no yes so if when while which who whom whose what where why
how all any each every some such only also very more most less least own same other another both either neither
i you he she we they me him her us them my your his our their""".split())


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in _FUNCTION_WORDS and len(w) > 2}


def _number(text: str) -> str:
    """One spelling per number: no thousands separators, no leading zeros ("pep-0008" is PEP 8)."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):
        text = text.replace(",", "")
    return text.lstrip("0") or "0" if text.isdigit() else text


def grounds(evidence: list[Evidence], question: str) -> str:
    """What a statement may take its names and numbers from: what its citations show the reader (the
    sentences, their document's title, section and file name) and the question."""
    return " ".join([question, *(" ".join([ev.text, ev.title, *ev.headings, PurePath(ev.source).name])
                                 for ev in evidence)])


def specifics(text: str) -> list[str]:
    """The names (capitalised words past the first) and numbers (digits or number words) in text."""
    found: list[str] = []
    words = list(WORD.finditer(text))
    for i, m in enumerate(words):
        word = re.sub(r"['’]s$", "", m.group()).strip("'’-")
        before = text[:m.start()].rstrip()
        starts_sentence = i == 0 or before.endswith((".", "!", "?", ":", '"', "“"))
        if word and word[0].isupper() and len(word) > 1 and not starts_sentence and not word.isdigit():
            found.append(word)
        elif word.lower() in _SPECIFIC_NUMBER_WORDS:
            found.append(word.lower())
    found += [_number(n) for n in _NUMBER.findall(text)]
    return list(dict.fromkeys(found))


def ungrounded(text: str, grounds: str) -> list[str]:
    """The specifics of `text` that `grounds` does not contain (case-insensitive; numbers as digits or words)."""
    low = grounds.lower()
    words = {w.strip("'’-") for w in WORD.findall(low)}
    words |= {part for w in list(words) for part in re.split(r"['’-]", w) if part}
    numbers = {_number(n) for n in _NUMBER.findall(low)}
    numbers |= {".".join(n.split(".")[:k]) for n in list(numbers) for k in range(1, n.count(".") + 1)}
    numbers |= {part for n in list(numbers) for part in re.split(r"[.,]", n)}
    numbers |= {v for w, v in {**_NUMBER_WORDS, **_ORDINALS}.items() if w in words}
    missing = []
    for item in specifics(text):
        if item[0].isdigit():
            ok = item in numbers
        elif item in _SPECIFIC_NUMBER_WORDS:
            ok = _SPECIFIC_NUMBER_WORDS[item] in numbers
        else:
            key = item.lower()
            ok = key in words or all(p in words for p in re.split(r"['’-]", key) if p)
        if not ok:
            missing.append(item)
    return missing
