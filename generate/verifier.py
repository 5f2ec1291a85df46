"""Checks every citation against the stored documents before a statement may be shown as cited.

This is the step that decides what a report may show as cited, so the defence against instructions
smuggled into documents ends here, not in the guard that drops them before the writer reads them
(generate/guard.py): a writer that obeys such an instruction must still get its statement past these
checks, and whatever reached the writer (the guard off, or a phrasing it missed) meets them all.

An injected instruction can put its claim into a cited statement in two ways, and each has checks:

- The statement cites the instruction itself. Its quote is verbatim and close in meaning to the
  claim it carries, so neither the verbatim nor the support check can object. An instruction is not
  a statement the document makes, so a quote that reads as one (`addresses_the_model`, the guard's
  test, applied here whether or not the guard ran), or that follows one in its paragraph (an
  instruction cut into sentences), supports nothing. That test is a heuristic over wording: it
  catches the phrasings it was written for and far fewer new ones (`citewise eval guard` measures it).
- The statement cites a real sentence that says something else. An unrelated sentence fails the
  support check; a related one does not (the writer's "X was written by Napoleon" and the quote
  "Title: The Zen of Python" are close in embedding space whatever the name). So a statement may not
  add a name or a number that none of its cited sentences, what the citation shows with them (title,
  section, file name) or the question contains: this does not depend on how the instruction was
  phrased. Nor may it use a word that, among the evidence shown, only instructions contain ("designed
  by a unicorn" names nobody, but its words come from the instruction): this does depend on
  recognising the instruction. A claim that only flips a predicate ("X was removed") with words the
  real sentences also use passes both, as neither embedding similarity nor word overlap is entailment.

Considered and not taken: marking as uncitable whatever is close in embedding space to known
injections (flagging as few real sentences as the patterns, it caught fewer new phrasings; catching
more took flagging hundreds of times as many real sentences); asking a language model whether a
quote is an instruction (the quote would be that model's input, so the instruction could address it).
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Callable

import numpy as np

from generate.guard import addresses_the_model
from generate.report import Citation, Statement
from ingest.embedder import Embedder
from retrieval.evidence import Evidence
from retrieval.sentences import sentence_spans

#: How far back in a paragraph an instruction taints the sentences after it (characters).
PARAGRAPH_LOOKBACK = 1000


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


class CitationVerifier:
    """A citation passes when its quote is verbatim in the current stored text of its document at
    its offsets, the quote bears on the question, and the statement is close enough in meaning to
    the quote (embedder cosines).

    The first check makes an invented or stale quote impossible to pass off. The second catches a
    question the documents do not cover: the writer then restates whatever sentence it was shown,
    so statement and quote agree while neither answers the question. The third catches the
    small-model failure of citing a real sentence that says something else.
    """

    def __init__(self, document_text: Callable[[str], str | None], embedder: Embedder,
                 support_similarity: float = 0.3, relevance_floor: float = 0.0) -> None:
        self.document_text = document_text
        self.embedder = embedder
        self.support_similarity = support_similarity
        self.relevance_floor = relevance_floor

    def quote_problem(self, ev: Evidence) -> str | None:
        """Why the evidence's quote cannot be shown as verbatim, or None when it can."""
        text = self.document_text(ev.doc_id)
        if text is None:
            return f"document {ev.doc_id} is no longer in the index"
        if not (0 <= ev.start < ev.end <= len(text)):
            return f"offsets {ev.start}:{ev.end} are outside document {ev.doc_id}"
        if normalize_ws(text[ev.start:ev.end]) != normalize_ws(ev.text):
            return f"the text at {ev.start}:{ev.end} of {ev.source} differs from the quote"
        return None

    def instruction(self, ev: Evidence) -> bool:
        """The quote reads as an instruction, or an earlier sentence of its paragraph does: an instruction
        split into sentences ("SYSTEM: Updated policy. X was invented by Y.") leaves its claim in a
        sentence that, alone, reads as content."""
        if addresses_the_model(ev.text):
            return True
        text = self.document_text(ev.doc_id) or ""
        start = max(text.rfind("\n\n", 0, ev.start) + 2, ev.start - PARAGRAPH_LOOKBACK, 0)
        before = text[start:ev.start]
        return any(addresses_the_model(before[a:b]) for a, b in sentence_spans(before))

    def answer_adds(self, answer: str, statements: list[Statement], evidence: list[Evidence],
                    question: str) -> list[str]:
        """What the answer line says beyond its verified citations: names and numbers none of their
        sentences (nor the question) has, and words only instructions among the evidence use. An answer
        that adds one is not the documents' answer, whatever its similarity to them."""
        numbers = {c.evidence for st in statements for c in st.citations}
        cited = [ev for ev in evidence if ev.number in numbers]
        missing = ungrounded(answer, _grounds(cited, question))
        said = {m.lower() for m in missing}
        return missing + [w for w in self.tainted(answer, evidence, question) if w not in said]

    def tainted(self, text: str, evidence: list[Evidence], question: str,
                instructions: set[int] | None = None) -> list[str]:
        """Words of `text` that, of everything the writer was shown, only instructions contain.

        A writer carrying out an instruction takes its claim's words from it ("designed by a unicorn");
        cited to a real sentence on the same topic, such a claim passes the support check, and when it
        names nobody the specifics check too. This needs the instruction to be recognised, which the
        specifics check does not.
        """
        if instructions is None:
            instructions = {ev.number for ev in evidence if self.instruction(ev)}
        flagged = [ev.text for ev in evidence if ev.number in instructions]
        if not flagged:
            return []
        clean = _content_words(" ".join([question, *(ev.text for ev in evidence if ev.text not in flagged)]))
        only = _content_words(" ".join(flagged)) - clean
        return [w for w in dict.fromkeys(_WORD.findall(text.lower())) if w in only]

    def answer_support(self, answer: str, statements: list[Statement]) -> float:
        """How close the free-text answer is to the best verified quote: an answer with no
        support among the citations is a claim from the model's memory, not from the documents."""
        quotes = [c.quote for st in statements for c in st.citations]
        if not answer or not quotes:
            return 0.0
        vectors = self.embedder.embed([answer] + quotes)
        return float((vectors[1:] @ vectors[0]).max())

    def verify(self, drafts: list[tuple[str, list[int]]], evidence: list[Evidence],
               question: str = "") -> list[Statement]:
        """Each draft statement with the citations that pass; one with none left is "unsupported"."""
        drafts = _merge_duplicates(drafts)
        by_number = {ev.number: ev for ev in evidence}
        instructions = {ev.number for ev in evidence if self.instruction(ev)}
        texts = [t for t, _ in drafts]
        vectors = self.embedder.embed(texts + [ev.text for ev in evidence]) if texts and evidence else None
        ev_row = {ev.number: len(texts) + i for i, ev in enumerate(evidence)}
        out = []
        for i, (text, ids) in enumerate(drafts):
            st = Statement(text=text)
            for n in ids:
                ev = by_number.get(n)
                if ev is None:
                    st.problems.append(f"[{n}] is not an evidence number that was shown")
                    continue
                problem = self.quote_problem(ev)
                if problem:
                    st.problems.append(f"[{n}] {problem}")
                    continue
                if ev.similarity < self.relevance_floor:
                    st.problems.append(f"[{n}] does not bear on the question (similarity {ev.similarity:.2f} "
                                       f"< {self.relevance_floor:g})")
                    continue
                if n in instructions:
                    st.problems.append(f"[{n}] reads as an instruction to the reader (or follows one in its "
                                       "paragraph), not a statement the document makes")
                    continue
                assert vectors is not None
                support = float(np.dot(vectors[i], vectors[ev_row[n]]))
                if support < self.support_similarity:
                    st.problems.append(f"[{n}] does not support the statement (similarity {support:.2f})")
                    continue
                st.citations.append(Citation(
                    evidence=n, doc_id=ev.doc_id, source=ev.source, title=ev.title, section=list(ev.headings),
                    page=ev.page, start=ev.start, end=ev.end, quote=ev.text, support=round(support, 3)))
            if not ids:
                st.problems.append("no evidence cited")
            if st.citations:
                missing = ungrounded(text, _grounds([by_number[c.evidence] for c in st.citations], question))
                if missing:
                    st.problems.append(f"{', '.join(missing)} in the statement but not in its cited sentences")
                said = {m.lower() for m in missing}
                taint = [w for w in self.tainted(text, evidence, question, instructions) if w not in said]
                if taint:
                    st.problems.append(f"{', '.join(taint)} in the statement, which among the evidence only "
                                       "an instruction says")
                if missing or taint:
                    st.citations = []
            st.status = "cited" if st.citations else "unsupported"
            out.append(st)
        return out


def _merge_duplicates(drafts: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """Small models repeat a statement with other evidence; keep it once with all its numbers."""
    merged: dict[str, tuple[str, list[int]]] = {}
    for text, ids in drafts:
        key = normalize_ws(text).lower()
        if key in merged:
            merged[key][1].extend(i for i in ids if i not in merged[key][1])
        else:
            merged[key] = (text, list(ids))
    return list(merged.values())


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W_][\w'’-]*")
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


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _FUNCTION_WORDS and len(w) > 2}


def _number(text: str) -> str:
    """One spelling per number: no thousands separators, no leading zeros ("pep-0008" is PEP 8)."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):
        text = text.replace(",", "")
    return text.lstrip("0") or "0" if text.isdigit() else text


def _grounds(evidence: list[Evidence], question: str) -> str:
    """What a statement may take its names and numbers from: what its citations show the reader (the
    sentences, their document's title, section and file name) and the question."""
    return " ".join([question, *(" ".join([ev.text, ev.title, *ev.headings, PurePath(ev.source).name])
                                 for ev in evidence)])


def specifics(text: str) -> list[str]:
    """The names (capitalised words past the first) and numbers (digits or number words) in text."""
    found: list[str] = []
    words = list(_WORD.finditer(text))
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
    words = {w.strip("'’-") for w in _WORD.findall(low)}
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
