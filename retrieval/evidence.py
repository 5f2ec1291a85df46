"""Evidence selection: the few sentences of the top chunks that bear on the question.

Prompt tokens are the dominant cost of writing on a CPU (prefill reads every one of them), so the writer reads a ranked handful of sentences, each with its exact
offsets in the stored document, instead of whole chunks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ingest.core.embedder import Embedder
from ingest.core.scorer import EvidenceRanking, Scorer
from ingest.core.text import normalize_ws
from ingest.core.types import ChunkRow
from retrieval.sentence_ranker import FEATURES, features, maxsim
from retrieval.sentences import sentence_spans
from retrieval.stages import SearchHit
from retrieval.training.pair_builder import sentence_passage

if TYPE_CHECKING:
    from retrieval.late_interaction_reranker import TokenEncoder


@dataclass
class Evidence:
    """One quotable sentence: where it is (document, section, page, offsets) and how well it matched."""

    number: int
    chunk_id: int
    doc_id: str
    source: str
    title: str
    headings: list[str]
    page: int | None
    start: int
    end: int
    text: str
    score: float
    similarity: float = 0.0  # cosine to the question itself
    found_by: list[str] = field(default_factory=list)
    probability: float | None = None  # the index's trained scorer: chance it answers the question (None: no scorer)
    #: The index's corroboration model: chance that this sentence is evidence for the question too when another
    #: sentence of its passage is cited (None: no such model, or no sentence of its passage was cited).
    corroboration: float | None = None
    #: False for a sentence of a cited passage that the writer was not shown, which verification added as a
    #: corroborating citation (see `EvidenceSelector.passage_sentences`).
    shown: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EvidenceSelector:
    """Scores every sentence of the retrieved chunks against the question with the embedder.

    A sentence's score is its cosine similarity to the question plus a prior from its chunk's
    first-stage rank, so a sentence from the best chunk wins a near tie. Sentences come from a few
    documents at most, and a document joins only when its best sentence is within
    `document_margin` of the best document's: each document costs the writer a header line, and
    every extra source is one more the writer can cite by mistake.

    With the index's trained `scorer`, the best `scored_sentences` by that score are read by the scorer
    with the question, in one call, and ranked by its probability that they answer it. No rank prior
    is added to the probability: it must stay a calibrated probability for `answer_probability` to mean
    what it says, and the scorer reads the sentence itself, which the prior only stood in for. The
    cosine margin gives way to `document_probability`: a document beyond the first joins only when its
    best sentence probably answers, which says directly what the margin approximated relative to the best.
    A `ranker` instead of a `scorer` only orders the sentences the same way: its probabilities are not
    attached to the evidence, so documents join, and the research loop stops and declines, on the cosine.

    With a `learned` evidence ranking (the index's `SentenceRanker`, from `citewise train`), sentences are
    ordered by its probability instead of the cosine plus `rank_weight` times the rank prior: the same
    signals and the sentence's token-level match (MaxSim over `tokens`), weighed as the index's training
    questions taught. Documents still join by the cosine margin, and the cosine still decides stopping.
    A `corroboration` model (also from `citewise train`) gives each sentence of a cited sentence's passage its
    chance of being evidence too (`passage_sentences`); the verifier adds the likely ones as corroborating
    citations. A passage is a chunk with up to `passage_chunks` chunks on each side of its document under the
    same headings (read through `neighbours`, the index's chunks by id): chunks are cut to a size, not to what
    a document says in one place, and an abstract's findings often sit in the chunk after the one that names
    its subject.
    """

    def __init__(self, embedder: Embedder, max_sentences: int = 8, max_tokens: int = 350, min_words: int = 4,
                 rank_weight: float = 0.1, max_documents: int = 0, document_margin: float | None = None,
                 scorer: Scorer | None = None, scored_sentences: int = 24, document_probability: float = 0.5,
                 ranker: Scorer | None = None, tokens: TokenEncoder | None = None,
                 learned: Callable[[], EvidenceRanking | None] | None = None,
                 corroboration: Callable[[], EvidenceRanking | None] | None = None,
                 neighbours: Callable[[list[int]], dict[int, ChunkRow]] | None = None,
                 passage_chunks: int = 0) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.max_tokens = max_tokens
        self.max_documents = max_documents  # 0: no limit
        self.document_margin = document_margin  # None: no limit
        self.min_words = min_words
        self.rank_weight = rank_weight
        self.scorer = scorer
        self.ranker = ranker
        self.scored_sentences = scored_sentences
        self.document_probability = document_probability
        self.tokens = tokens
        self.learned = learned if tokens is not None else None
        self.corroboration = corroboration if tokens is not None else None
        self.neighbours = neighbours
        self.passage_chunks = passage_chunks if neighbours is not None else 0

    def candidates(self, hits: list[SearchHit]) -> list[tuple[int, SearchHit, int, int]]:
        """(chunk rank, hit, start, end) for each usable sentence, offsets into the document text."""
        out = []
        for rank, hit in enumerate(hits):
            c = hit.chunk
            for s, e in sentence_spans(c.text):
                if len(c.text[s:e].split()) >= self.min_words:
                    out.append((rank, hit, c.start + s, c.start + e))
        return out

    def select(self, queries: list[str], hits: list[SearchHit], found_by: dict[int, list[str]] | None = None,
               exclude: set[tuple[str, int, int]] | None = None) -> list[Evidence]:
        """The best sentences within the sentence and token budgets, best first, numbered from 1.

        `queries[0]` is the question; a sentence scores by its best match over all queries, so a
        sentence answering one part of a multi-part question is not drowned by the whole. The scorer,
        when there is one, reads only the question: the other queries are the planner's ways of finding
        chunks, and a sentence answering one of them need not answer what was asked.
        """
        cands = [c for c in self.candidates(hits) if not exclude or (c[1].chunk.doc_id, c[2], c[3]) not in exclude]
        if not cands:
            return []
        ranking = self.learned() if self.learned is not None else None
        texts, to_question, scores, x = self.weigh(queries, cands, len(hits), with_features=ranking is not None)
        ordering = ranking.probabilities(x) if ranking is not None and x is not None else scores
        order = [int(i) for i in np.argsort(-ordering, kind="stable")]
        probability: dict[int, float] = {}
        if self.scorer is not None or self.ranker is not None:
            order, probability = self._score(queries[0], order, cands, texts)
            if self.scorer is None:
                probability = {}
        chosen: list[Evidence] = []
        seen: set[str] = set()
        docs: set[str] = set()
        used = 0
        for i in order:
            hit = cands[i][1]
            key = normalize_ws(texts[i]).lower()
            if key in seen:
                continue
            if hit.chunk.doc_id not in docs:
                if self.max_documents and len(docs) >= self.max_documents:
                    continue
                # Sentences come best first, so the first chosen is the best document's best one.
                if chosen and not self._joins(chosen[0], float(scores[i]), probability.get(i)):
                    continue
            cost = self.embedder.count_tokens(texts[i])
            if chosen and used + cost > self.max_tokens:
                continue
            seen.add(key)
            docs.add(hit.chunk.doc_id)
            used += cost
            chosen.append(self._evidence(len(chosen) + 1, cands[i], texts[i], float(scores[i]),
                                         float(to_question[i]), found_by, probability.get(i), None))
            if len(chosen) >= self.max_sentences:
                break
        return chosen

    def passage_sentences(self, queries: list[str], chunks: list[ChunkRow]) -> list[Evidence]:
        """Every sentence of these chunks' passages, numbered 0 and not shown, each with the corroboration model's
        probability that it is evidence too (none without a model): what the verifier may add beside a cited
        sentence of the passage. Asked after writing, for the cited chunks only: a passage is read only when a
        report cites it, and the model reads it whole, as it was fitted."""
        corroborating = self.corroboration() if self.corroboration is not None else None
        if corroborating is None or not chunks:
            return []
        cands, texts, to_question, scores, x = self.passage_features(queries, self.passages(chunks))
        likely = corroborating.probabilities(x) if len(cands) else np.zeros(0)
        return [self._evidence(0, cand, texts[i], float(scores[i]), float(to_question[i]), None, None,
                               float(likely[i]), shown=False) for i, cand in enumerate(cands)]

    def passages(self, chunks: list[ChunkRow]) -> list[list[ChunkRow]]:
        """The passages of these chunks, each once and in document order: a chunk with up to `passage_chunks`
        chunks on each side of its document under the same headings (one passage per document and headings).
        A document's chunks are stored together, so its neighbours by ordinal are its neighbours by id."""
        w = self.passage_chunks
        rows = self.neighbours(sorted({c.id + d for c in chunks for d in range(-w, w + 1)})) if w else {}
        grouped: dict[tuple[str, tuple[str, ...]], dict[int, ChunkRow]] = {}
        for c in chunks:
            members = grouped.setdefault((c.doc_id, tuple(c.headings)), {})
            members[c.id] = c
            for step in (-1, 1):
                for d in range(1, w + 1):
                    r = rows.get(c.id + step * d)
                    if r is None or r.doc_id != c.doc_id or r.ordinal != c.ordinal + step * d or r.headings != c.headings:
                        break
                    members[r.id] = r
        return [sorted(m.values(), key=lambda r: r.ordinal) for m in grouped.values()]

    def passage_features(self, queries: list[str], passages: list[list[ChunkRow]]
                         ) -> tuple[list[tuple[int, SearchHit, int, int]], list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Every usable sentence of the passages as a candidate, with its texts, cosine to the question, hand-set
        score and features, the `position` being its place in its passage rather than in its chunk."""
        cands = [(0, hit, s, e) for p in passages
                 for _, hit, s, e in self.candidates([SearchHit(chunk=c, score=0.0) for c in p])]
        spans = {(p[0].doc_id, tuple(p[0].headings)): (p[0].start, p[-1].end) for p in passages}
        if not cands:
            return [], [], np.zeros(0), np.zeros(0), np.zeros((0, len(FEATURES)))
        texts, to_question, scores, x = self.weigh(queries, cands, 1, with_features=True)
        assert x is not None
        x = x.copy()
        for i, (_, hit, s, _) in enumerate(cands):
            lo, hi = spans[(hit.chunk.doc_id, tuple(hit.chunk.headings))]
            x[i, FEATURES.index("position")] = (s - lo) / max(hi - lo, 1)
        return cands, texts, to_question, scores, x

    @staticmethod
    def _evidence(number: int, cand: tuple[int, SearchHit, int, int], text: str, score: float, similarity: float,
                  found_by: dict[int, list[str]] | None, probability: float | None, corroboration: float | None,
                  shown: bool = True) -> Evidence:
        _, hit, s, e = cand
        c = hit.chunk
        return Evidence(number=number, chunk_id=c.id, doc_id=c.doc_id, source=c.source, title=c.title,
                        headings=list(c.headings), page=c.page, start=s, end=e, text=text, score=score,
                        similarity=similarity, found_by=list((found_by or {}).get(c.id, [])),
                        probability=probability, corroboration=corroboration, shown=shown)

    def weigh(self, queries: list[str], cands: list[tuple[int, SearchHit, int, int]],
              hits: int, with_features: bool = False) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None]:
        """The candidates' texts, cosine to the question, hand-set score (cosine plus `rank_weight` times the
        rank prior) and, `with_features`, their features for a learned ranking (`sentence_ranker.FEATURES`;
        None without a token encoder).

        Scores use a sentence's best match over all queries, but the cosine reported (and stopped on) is the
        match to the question itself: follow-up queries may echo sentences already found, so matching them
        proves nothing."""
        texts = [h.chunk.text[s - h.chunk.start:e - h.chunk.start] for _, h, s, e in cands]
        vectors = self.embedder.embed(list(queries) + texts)
        nq = len(queries)
        to_question = vectors[nq:] @ vectors[0]
        cosine = (vectors[nq:] @ vectors[:nq].T).max(axis=1)
        n = max(hits, 1)
        prior = np.array([1.0 - rank / n for rank, _, _, _ in cands])
        x = None
        if with_features and self.tokens is not None:
            found = self.tokens.token_vectors(list(queries) + texts)
            token_match = np.max([maxsim(q, found[nq:]) for q in found[:nq]], axis=0)
            position = np.array([(s - h.chunk.start) / max(len(h.chunk.text), 1) for _, h, s, _ in cands])
            x = features(cosine, token_match, prior, position)
        return texts, to_question, cosine + self.rank_weight * prior, x

    def _score(self, question: str, order: list[int], cands: list[tuple[int, SearchHit, int, int]],
               texts: list[str]) -> tuple[list[int], dict[int, float]]:
        """The best `scored_sentences` distinct candidates (by the order so far) ranked by the scorer's
        probability, with those probabilities; each scored pair is a model run, so the rest are not read."""
        scorer = self.scorer or self.ranker
        assert scorer is not None
        picked: list[int] = []
        keys: set[str] = set()
        for i in order:
            key = normalize_ws(texts[i]).lower()
            if key not in keys:
                keys.add(key)
                picked.append(i)
                if len(picked) >= max(self.scored_sentences, self.max_sentences):
                    break
        passages = [sentence_passage(cands[i][1].chunk.title, texts[i]) for i in picked]
        probs = scorer.probabilities(question, passages)
        probability = {i: float(p) for i, p in zip(picked, probs)}
        # Ties (equal probabilities) keep the cosine order: sorted() is stable.
        return sorted(picked, key=lambda i: -probability[i]), probability

    def _joins(self, best: Evidence, score: float, probability: float | None) -> bool:
        """Whether a sentence from a document not yet in the evidence may bring that document in."""
        if probability is not None:
            return probability >= self.document_probability
        return self.document_margin is None or score >= best.score - self.document_margin
