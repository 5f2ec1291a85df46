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

from dataclasses import dataclass, field, replace
from typing import Callable, Literal

import numpy as np

from generate.grounding import WORD, content_words, grounds, ungrounded
from generate.guard import addresses_the_model, says_evidence_is_silent
from generate.report import Citation, Statement
from generate.task import Task
from generate.writer import ANSWER_MAX_CHARS, Draft
from ingest.core.embedder import Embedder
from retrieval.evidence import Evidence
from retrieval.sentences import sentence_spans
from ingest.core.text import normalize_ws

#: How far back in a paragraph an instruction taints the sentences after it (characters).
PARAGRAPH_LOOKBACK = 1000


NOT_ANSWERED = "The indexed documents do not answer this question."
NOT_DECIDED = "The indexed documents do not decide this claim."
#: A claim check's answer line, from the verdict its cited statements carry.
VERDICT_ANSWERS = {"supports": "The cited evidence supports the claim.",
                   "contradicts": "The cited evidence contradicts the claim."}


@dataclass
class Verified:
    """What verification leaves of a draft: the statements shown as cited, the rest, and the answer line."""

    answered: bool
    answer: str
    cited: list[Statement] = field(default_factory=list)
    unsupported: list[Statement] = field(default_factory=list)
    checked: int = 0
    answer_support: float = 0.0
    answer_adds: list[str] = field(default_factory=list)
    #: Sentences the writer was not shown that corroborating citations cite, numbered after the evidence.
    added: list[Evidence] = field(default_factory=list)


class CitationVerifier:
    """A citation passes when its quote is verbatim in the current stored text of its document at
    its offsets, the quote bears on the question (the index's trained scorer's probability when it has
    one, else an embedder cosine), and the statement is close enough in meaning to the quote (cosine).

    The first check makes an invented or stale quote impossible to pass off. The second catches a
    question the documents do not cover: the writer then restates whatever sentence it was shown,
    so statement and quote agree while neither answers the question. The third catches the
    small-model failure of citing a real sentence that says something else.
    """

    def __init__(self, document_text: Callable[[str], str | None], embedder: Embedder,
                 support_similarity: float = 0.3, relevance_floor: float = 0.0,
                 common_name: Callable[[str], bool] | None = None, citation_probability: float = 0.2,
                 relevance_scope: Literal["passage", "sentence"] = "sentence",
                 citation_choice: Literal["writer", "passage"] = "writer", passage_similarity: float | None = None,
                 passage_probability: float | None = None, corroboration_probability: float | None = None) -> None:
        """`relevance_floor` (cosine) decides whether a quote bears on the question, unless the evidence
        carries the index's trained scorer's probability: then `citation_probability` does. With
        `relevance_scope` "passage" a quote under that bound still bears on the question when a sentence of
        its passage (its chunk's sentences among the evidence) reaches `passage_similarity` (or, scored,
        `passage_probability`; None: the quote's own bound), since a sentence can name its subject only through
        its neighbour. The lending bar is the research loop's "close enough to stop searching": a neighbour that
        only just clears the relevance floor is as likely to be a passage on a nearby topic. With
        `citation_choice` "passage" a citation moves to the sentence of the cited one's passage that is
        closest to the statement (see `repoint`).

        `common_name` says whether a name is the collection's common vocabulary (in many of its documents,
        as "Python" is in every PEP): such a name is no claim a citation must carry. An injected name lives
        in the one document that carries the injection, so it stays a name the citation must contain.

        With `corroboration_probability` (None: off), a cited statement also cites the other sentences of its
        cited passages, shown to the writer or not, whose `corroboration` (the index's trained model) reaches it,
        each through the same checks (see `corroborate`)."""
        self.document_text = document_text
        self.embedder = embedder
        self.support_similarity = support_similarity
        self.relevance_floor = relevance_floor
        self.citation_probability = citation_probability
        self.relevance_scope = relevance_scope
        self.citation_choice = citation_choice
        self.passage_similarity = relevance_floor if passage_similarity is None else passage_similarity
        self.passage_probability = citation_probability if passage_probability is None else passage_probability
        self.common_name = common_name
        self.corroboration_probability = corroboration_probability
        self._common: dict[str, bool] = {}

    def verify_draft(self, draft: Draft, evidence: list[Evidence], question: str, task: Task,
                     mates: list[Evidence] | None = None) -> Verified:
        """The verify stage of a report: every statement's citations checked, then the answer line.

        Statements about the evidence's silence are no findings, and an answer that says so answers
        nothing. An answer none of its own citations supports is the model's memory, not the documents,
        and so is one adding what none of them says: the report then says the documents do not answer,
        and verified statements stay as related findings. A verdict is checked through its statements.
        `mates` are the cited passages' sentences the writer was not shown, which only corroborate.
        """
        findings = [(text, ids) for text, ids in draft.statements if not says_evidence_is_silent(text)]
        answerable = draft.answerable
        if task == Task.ANSWER and (not findings or says_evidence_is_silent(draft.answer)):
            answerable = False
        added: list[Evidence] = []
        checked = self.verify(findings, evidence, question, mates, added) if answerable else []
        out = Verified(answered=False, answer="", cited=[st for st in checked if st.status == "cited"],
                       unsupported=[st for st in checked if st.status != "cited"], checked=len(checked),
                       added=added)
        if task == Task.ANSWER:
            answer = _whole_sentences(draft.answer)
            if answerable and out.cited:
                out.answer_support = self.answer_support(answer, out.cited)
                out.answer_adds = self.answer_adds(answer, out.cited, evidence, question)
            out.answered = (answerable and bool(out.cited) and out.answer_support >= self.support_similarity
                            and not out.answer_adds)
        else:
            out.answered = answerable and bool(out.cited)
            answer = VERDICT_ANSWERS.get(draft.verdict or "", "")
        out.answer = answer if out.answered else NOT_ANSWERED if task == Task.ANSWER else NOT_DECIDED
        if answerable and not out.cited:
            out.unsupported = out.unsupported or [Statement(text=draft.answer or out.answer, status="unsupported",
                                                            problems=["no statement with a verified citation"])]
        return out

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

    def irrelevant(self, ev: Evidence, evidence: list[Evidence] | None = None) -> str | None:
        """Why the quote does not bear on the question (its figure below the bound), or None when it does.

        With the passage scope, a sentence among `evidence` from the quote's chunk that reaches the passage bar
        lends it relevance: "the operator" in one sentence is the walrus operator its neighbour names.
        """
        scored = ev.probability is not None
        figure, bound = (ev.probability, self.citation_probability) if scored else (ev.similarity,
                                                                                   self.relevance_floor)
        assert figure is not None
        if figure >= bound:
            return None
        name = "probability" if scored else "similarity"
        why = f"{name} {figure:.2f} < {bound:g}" + (", research.citation_probability" if scored else "")
        if self.relevance_scope != "passage":
            return why
        mates = [m for m in evidence or [] if _passage(m) == _passage(ev)]
        best = max(((m.probability if scored else m.similarity) or 0.0 for m in mates), default=figure)
        lend = self.passage_probability if scored else self.passage_similarity
        return None if best >= max(bound, lend) else f"{why}, and no sentence of its passage shown reaches {lend:g}"

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
        that adds one is not the documents' answer, whatever its similarity to them. Only the writer's own
        citations count: a corroborating one was added after the writer, so it may not carry the answer."""
        numbers = {c.evidence for st in statements for c in st.citations if not c.corroborating}
        cited = [ev for ev in evidence if ev.number in numbers]
        missing = self._uncommon(ungrounded(answer, grounds(cited, question)))
        said = {m.lower() for m in missing}
        return missing + [w for w in self.tainted(answer, evidence, question) if w not in said]

    def _uncommon(self, missing: list[str]) -> list[str]:
        """The missing specifics that are not the collection's common vocabulary (numbers always count)."""
        if self.common_name is None:
            return missing
        out = []
        for item in missing:
            if item[0].isdigit() or item.isdigit():
                out.append(item)
                continue
            key = item.lower()
            if key not in self._common:
                if len(self._common) > 4096:
                    self._common.clear()
                self._common[key] = self.common_name(item)
            if not self._common[key]:
                out.append(item)
        return out

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
        clean = content_words(" ".join([question, *(ev.text for ev in evidence if ev.text not in flagged)]))
        only = content_words(" ".join(flagged)) - clean
        return [w for w in dict.fromkeys(WORD.findall(text.lower())) if w in only]

    def answer_support(self, answer: str, statements: list[Statement]) -> float:
        """How close the free-text answer is to the best verified quote: an answer with no
        support among the citations is a claim from the model's memory, not from the documents. As in
        `answer_adds`, corroborating citations do not count."""
        quotes = [c.quote for st in statements for c in st.citations if not c.corroborating]
        if not answer or not quotes:
            return 0.0
        vectors = self.embedder.embed([answer] + quotes)
        return float((vectors[1:] @ vectors[0]).max())

    @staticmethod
    def repoint(statement: np.ndarray, ids: list[int], evidence: list[Evidence], instructions: set[int],
                vector: Callable[[int], np.ndarray]) -> list[int]:
        """The statement's evidence numbers, moved within their passages: a statement citing k sentences of a
        passage (same chunk, among the evidence) cites the k sentences of it closest in meaning to the
        statement. The writer reads a passage's sentences side by side and keeps the passage it meant more
        reliably than the number; the support check then still applies to the sentence shown. A number that
        was not shown stays (and fails), and so does one read as an instruction; no citation moves onto one.
        """
        by_number = {ev.number: ev for ev in evidence}
        out: list[int] = []
        done: set[tuple[str, int]] = set()
        for n in ids:
            ev = by_number.get(n)
            if ev is None or n in instructions:
                out.append(n)
                continue
            passage = _passage(ev)
            if passage in done:
                continue
            done.add(passage)
            wanted = len({m for m in ids if m not in instructions and m in by_number
                          and _passage(by_number[m]) == passage})
            mates = [m.number for m in evidence if _passage(m) == passage and m.number not in instructions]
            mates.sort(key=lambda m: -float(np.dot(statement, vector(m))))
            out.extend(mates[:wanted])
        return list(dict.fromkeys(out))

    def _cite(self, n: int, by_number: dict[int, Evidence], evidence: list[Evidence], instructions: set[int],
              support: Callable[[int], float] | None) -> tuple[Citation | None, str | None]:
        """Evidence number `n` as a citation of the statement `support` measures against, or why it cannot be."""
        ev = by_number.get(n)
        if ev is None:
            return None, f"[{n}] is not an evidence number that was shown"
        problem = self.quote_problem(ev)
        if problem:
            return None, f"[{n}] {problem}"
        irrelevant = self.irrelevant(ev, evidence)
        if irrelevant:
            return None, f"[{n}] does not bear on the question ({irrelevant})"
        if n in instructions:
            return None, (f"[{n}] reads as an instruction to the reader (or follows one in its paragraph), not a "
                          "statement the document makes")
        assert support is not None
        similarity = support(n)
        if similarity < self.support_similarity:
            return None, f"[{n}] does not support the statement (similarity {similarity:.2f})"
        return Citation(evidence=n, doc_id=ev.doc_id, source=ev.source, title=ev.title, section=list(ev.headings),
                        page=ev.page, start=ev.start, end=ev.end, quote=ev.text, support=round(similarity, 3)), None

    def locate(self, text: str, tried: list[int], by_number: dict[int, Evidence], evidence: list[Evidence],
               question: str, instructions: set[int], support: Callable[[int], float]) -> Citation | None:
        """The shown sentence that holds every name and number of a statement none of whose own citations passed,
        as its citation (`located`), or None. A small writer copies a fact from one sentence and numbers
        another; the specifics a statement names beyond the question locate the sentence it was copied from
        better than its number does. The sentence must pass every check a cited one does, so this never cites
        what the writer could not have; a statement that names nothing beyond the question locates nothing.
        Among several such sentences, the one closest in meaning to the statement."""
        if not self._uncommon(ungrounded(text, question)):
            return None
        holding = [ev.number for ev in evidence if ev.number not in tried
                   and not self._uncommon(ungrounded(text, grounds([ev], question)))]
        for n in sorted(holding, key=lambda m: -support(m)):
            citation, _ = self._cite(n, by_number, evidence, instructions, support)
            if citation is not None:
                return replace(citation, located=True)
        return None

    def verify(self, drafts: list[tuple[str, list[int]]], evidence: list[Evidence], question: str = "",
               mates: list[Evidence] | None = None, added: list[Evidence] | None = None) -> list[Statement]:
        """Each draft statement with the citations that pass; one with none left is "unsupported". A `mate`
        (a passage's sentence the writer was not shown) that corroborates is numbered after the evidence and
        appended to `added`."""
        drafts = _merge_duplicates(drafts)
        by_number = {ev.number: ev for ev in evidence}
        instructions = {ev.number for ev in evidence if self.instruction(ev)}
        mates = list(mates or []) if self.corroboration_probability is not None else []
        added = added if added is not None else []
        texts = [t for t, _ in drafts]
        vectors = (self.embedder.embed(texts + [ev.text for ev in evidence + mates]) if texts and evidence
                   else None)
        ev_row = {ev.number: len(texts) + i for i, ev in enumerate(evidence)}
        mate_row = {id(m): len(texts) + len(evidence) + j for j, m in enumerate(mates)}
        out = []
        for i, (text, ids) in enumerate(drafts):
            st = Statement(text=text)
            if vectors is not None and self.citation_choice == "passage":
                ids = self.repoint(vectors[i], ids, evidence, instructions, lambda n: vectors[ev_row[n]])
            support = (lambda n, row=i: float(np.dot(vectors[row], vectors[ev_row[n]]))) if vectors is not None else None
            for n in ids:
                citation, problem = self._cite(n, by_number, evidence, instructions, support)
                if citation is not None:
                    st.citations.append(citation)
                else:
                    st.problems.append(problem or "")
            if not ids:
                st.problems.append("no evidence cited")
            taint: list[str] = []
            if st.citations:
                missing = self._uncommon(ungrounded(text, grounds([by_number[c.evidence] for c in st.citations],
                                                                  question)))
                if missing:
                    st.problems.append(f"{', '.join(missing)} in the statement but not in its cited sentences")
                said = {m.lower() for m in missing}
                taint = [w for w in self.tainted(text, evidence, question, instructions) if w not in said]
                if taint:
                    st.problems.append(f"{', '.join(taint)} in the statement, which among the evidence only "
                                       "an instruction says")
                if missing or taint:
                    st.citations = []
            if not st.citations and support is not None and self.citation_choice == "specifics":
                # A statement carrying an instruction's words stays uncited, whatever sentence holds its names.
                taint = taint or self.tainted(text, evidence, question, instructions)
                located = None if taint else self.locate(text, ids, by_number, evidence, question, instructions,
                                                         support)
                if located is not None:
                    st.citations = [located]
            if st.citations and vectors is not None:
                st.citations += self.corroborate(
                    st, evidence, instructions,
                    lambda ev: float(np.dot(vectors[i], vectors[ev_row[ev.number] if ev.shown else mate_row[id(ev)]])),
                    mates, added)
            st.status = "cited" if st.citations else "unsupported"
            out.append(st)
        return out


    def corroborate(self, statement: Statement, evidence: list[Evidence], instructions: set[int],
                    support: Callable[[Evidence], float], mates: list[Evidence] | None = None,
                    added: list[Evidence] | None = None) -> list[Citation]:
        """Corroborating citations of a statement whose own citations passed: the other sentences of its cited
        passages that the corroboration model finds at least `corroboration_probability` likely to be evidence
        too, each verbatim, bearing on the question, not an instruction and supporting the statement, as the
        writer's citations must. A small writer cites the one sentence it read first where a passage states the
        finding in two or three; which of the neighbours are evidence too is what the model learned from the
        index's own labelled passages, rather than a similarity cut-off set by hand. The neighbours include the
        passage's sentences the writer was not shown (`mates`, which the evidence budgets left out): the model
        was trained and checked on whole passages. A mate that corroborates is numbered after the evidence and
        the mates added before it, and appended to `added`, so the report can show what it cites."""
        if self.corroboration_probability is None:
            return []
        cited = {c.evidence for c in statement.citations}
        passages = {_section(ev) for ev in evidence if ev.number in cited}
        added = added if added is not None else []
        numbered = {(a.doc_id, a.start, a.end): a for a in added}
        out: list[Citation] = []
        for ev in [*evidence, *(mates or [])]:
            if ((ev.shown and ev.number in cited) or _section(ev) not in passages
                    or ev.corroboration is None or ev.corroboration < self.corroboration_probability
                    or (ev.number in instructions if ev.shown else self.instruction(ev))
                    or self.quote_problem(ev) or self.irrelevant(ev, evidence)):
                continue
            score = support(ev)
            if score < self.support_similarity:
                continue
            if not ev.shown:
                key = (ev.doc_id, ev.start, ev.end)
                if key not in numbered:
                    numbered[key] = replace(ev, number=max((e.number for e in evidence), default=0) + len(added) + 1)
                    added.append(numbered[key])
                ev = numbered[key]
            out.append(Citation(evidence=ev.number, doc_id=ev.doc_id, source=ev.source, title=ev.title,
                                section=list(ev.headings), page=ev.page, start=ev.start, end=ev.end,
                                quote=ev.text, support=round(score, 3), corroborating=True))
        return out


def _passage(ev: Evidence) -> tuple[str, int]:
    """The chunk a sentence was shown from: the unit whose sentences name each other's subjects."""
    return ev.doc_id, ev.chunk_id


def _section(ev: Evidence) -> tuple[str, tuple[str, ...]]:
    """What a corroborating citation must share with the cited sentence: its document and headings (the
    research loop gives it only sentences of the chunks around the cited one, see `EvidenceSelector.passages`)."""
    return ev.doc_id, tuple(ev.headings)


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


def _whole_sentences(text: str, limit: int = ANSWER_MAX_CHARS) -> str:
    """Drop a trailing fragment the length limit cut off, when at least one whole sentence remains."""
    text = text.strip()
    if len(text) < limit - 10 or text[-1] in ".!?\"')":
        return text
    end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
    return text[: end + 1] if end > 0 else text + "…"
