"""Small deterministic stand-ins that implement citewise's protocols, for unit tests of the logic
around the models. Integration tests use the real models."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any, Callable, Union

import numpy as np

from generate.gatherer import Gatherer
from generate.guard import addresses_the_model
from generate.researcher import Researcher
from generate.verifier import CitationVerifier
from generate.writer import ReportWriter
from ingest.core.errors import GenerationError
from ingest.core.generator import Completion, Message
from ingest.core.scorer import EvidenceRanking
from ingest.core.settings import ResearchSettings, SearchSettings
from ingest.core.types import ChunkRow
from retrieval.evidence import EvidenceSelector
from retrieval.pipeline import PipelineResult
from retrieval.query_writer import QueryWriter
from retrieval.rrf_fusion import RrfFusion
from retrieval.stages import SearchHit, StageTrace

#: What a fake model answers: text, a JSON-able object, or a function of the messages.
Reply = Union[str, dict[str, Any], Callable[[list[Message]], str]]


#: Two short documents the fake-backed research tests ask about.
HARBOUR_DOCS = {
    "harbour": "The Old Harbour\n\nThe old harbour was built in 1820 by the town council. "
               "It was rebuilt in 1910 after a storm destroyed the pier.\n\n"
               "Fishing boats still use the harbour every morning.",
    "market": "The Market\n\nThe weekly market opens on Saturdays in the square. "
              "Farmers sell cheese, bread and apples at the market.",
}


class HashingEmbedder:
    """Bag of lower-cased words hashed into 256 dimensions: similar wording, similar vectors."""

    name = "hashing"
    dim = 256
    max_tokens = 254
    precision = "fp32"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\S+", text)]

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z0-9]+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def warm_up(self) -> None:
        """Nothing to load."""


class HashingTokenEncoder:
    """One hashed one-hot vector per word (a TokenEncoder): MaxSim is then the share of the question's words the
    sentence contains."""

    dim = 512

    def token_vectors(self, texts: list[str]) -> list[np.ndarray]:
        out = []
        for t in texts:
            words = re.findall(r"[a-z0-9]+", t.lower())
            rows = np.zeros((len(words), self.dim), dtype=np.float32)
            for i, w in enumerate(words):
                rows[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] = 1.0
            out.append(rows)
        return out


class FakeGenerator:
    """The one fake language model: implements the Generator protocol and records every call.

    `chat` answers with the next of `replies` when a script is given (running out is a test error), else
    with `reply`; a reply that is a function gets the messages. `yes_probability` looks up the first
    word of `yes` found in the prompt's passage (0.1 otherwise). Failures are scripted too: a prompt
    containing `fail_on` raises GenerationError (a model that broke), one containing `crash_on` raises
    KeyboardInterrupt (a process killed mid-call). `delay` sleeps and `cpu_s` burns CPU in every call,
    for tests about time budgets and cost accounting. `reset()` counts the KV-cache drops a caller asks for.
    """

    def __init__(self, replies: list[Reply] | None = None, *, reply: Reply = "", name: str = "fake",
                 yes: dict[str, float] | None = None, delay: float = 0.0, cpu_s: float = 0.0,
                 fail_on: str | None = None, crash_on: str | None = None) -> None:
        self.replies = None if replies is None else list(replies)
        self.reply = reply
        self.name = name
        self.yes = yes or {}
        self.delay = delay
        self.cpu_s = cpu_s
        self.fail_on = fail_on
        self.crash_on = crash_on
        self.calls: list[list[Message]] = []
        self.schemas: list[dict[str, Any] | None] = []
        self.resets = 0
        self.warmed = 0

    def chat(self, messages: list[Message], *, schema: dict[str, Any] | None = None, max_tokens: int = 256,
             stop: list[str] | None = None, on_text: Callable[[str], None] | None = None) -> Completion:
        self.calls.append(messages)
        self.schemas.append(schema)
        prompt = messages[-1]["content"]
        if self.crash_on and self.crash_on in prompt:
            raise KeyboardInterrupt
        if self.fail_on and self.fail_on in prompt:
            raise GenerationError("the fake model broke")
        self._spend()
        if self.replies is not None:
            assert self.replies, f"{self.name}: no scripted reply left for call {len(self.calls)}"
            reply = self.replies.pop(0)
        else:
            reply = self.reply
        text = reply(messages) if callable(reply) else reply if isinstance(reply, str) else json.dumps(reply)
        if on_text:
            for i in range(0, len(text), 7):
                on_text(text[i:i + 7])
        return Completion(text=text, prompt_tokens=sum(len(m["content"].split()) for m in messages),
                          completion_tokens=len(text.split()), prefill_s=0.01, decode_s=0.01, total_s=0.02,
                          finish_reason="stop")

    def yes_probability(self, messages: list[Message], yes: str = "yes", no: str = "no") -> tuple[float, Completion]:
        self.calls.append(messages)
        self._spend()
        passage = messages[-1]["content"].split("Passage:", 1)[-1]
        return next((p for word, p in self.yes.items() if word in passage), 0.1), Completion("")

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def warm_up(self) -> None:
        self.warmed += 1

    def reset(self) -> None:
        self.resets += 1

    def _spend(self) -> None:
        time.sleep(self.delay)
        started = time.process_time()
        while time.process_time() - started < self.cpu_s:
            pass


class ListSearch:
    """Searches a few in-memory documents by shared words; each paragraph is one chunk."""

    def __init__(self, docs: dict[str, str]) -> None:
        self.docs = docs
        self.chunks: list[ChunkRow] = []
        for d, (doc_id, text) in enumerate(docs.items()):
            pos = 0
            for n, para in enumerate(text.split("\n\n")):
                start = text.index(para, pos)
                pos = start + len(para)
                self.chunks.append(ChunkRow(id=d * 100 + n, doc_id=doc_id, source=f"/docs/{doc_id}.md",
                                            title=doc_id.title(), ordinal=n, start=start, end=pos, text=para,
                                            headings=[doc_id.title()], page=None, page_end=None, context="",
                                            n_tokens=len(para.split())))
        self.queries: list[str] = []
        self.rerank_s = 0.0

    def search(self, query: str, k: int) -> list[SearchHit]:
        self.queries.append(query)
        words = set(re.findall(r"[a-z0-9]+", query.lower()))
        scored = [(len(words & set(re.findall(r"[a-z0-9]+", c.text.lower()))), c) for c in self.chunks]
        scored = [(s, c) for s, c in scored if s > 0]
        scored.sort(key=lambda sc: (-sc[0], sc[1].id))
        return [SearchHit(c, float(s)) for s, c in scored[:k]]

    def explain(self, query: str, k: int) -> tuple[list[SearchHit], PipelineResult]:
        """The hits, and a rerank stage that takes `rerank_s` seconds when that is set."""
        hits = self.search(query, k)
        if not self.rerank_s:
            return hits, PipelineResult([])
        time.sleep(self.rerank_s)
        return hits, PipelineResult([], [StageTrace("late", "sleeps", self.rerank_s, kind="rerank")])

    def document_text(self, doc_id: str) -> str | None:
        return self.docs.get(doc_id)


def fake_researcher(docs: dict[str, str], writer_replies: list[Reply], planner_replies: list[Reply] | None = None,
                    guard: Callable[[str], bool] | None = addresses_the_model,
                    corroboration: EvidenceRanking | None = None,
                    **settings: Any) -> tuple[Researcher, ListSearch, FakeGenerator]:
    """The real research loop (gather, write, verify) over `docs`, with scripted writer and planner models.

    Built as the engine builds it; no planner when `planner_replies` is None. `settings` are `research.*`;
    `corroboration` stands in for an index's trained corroboration model.
    """
    search = ListSearch(docs)
    embedder = HashingEmbedder()
    writer_model = FakeGenerator(writer_replies, name="writer")
    planner = None if planner_replies is None else QueryWriter(FakeGenerator(planner_replies, name="planner"))
    s = ResearchSettings(**settings)
    selector = EvidenceSelector(embedder, 6, 300, tokens=HashingTokenEncoder() if corroboration else None,
                                corroboration=(lambda: corroboration) if corroboration else None,
                                neighbours=lambda ids: {c.id: c for c in search.chunks if c.id in ids},
                                passage_chunks=s.corroboration_chunks)
    gatherer = Gatherer(search, selector, planner, RrfFusion(SearchSettings().rrf_k), guard=guard)
    verifier = CitationVerifier(search.document_text, embedder, s.support_similarity, s.relevance_floor,
                                relevance_scope=s.relevance_scope, citation_choice=s.citation_choice,
                                passage_similarity=s.enough_similarity, passage_probability=s.answer_probability,
                                corroboration_probability=s.corroboration_probability if corroboration else None)
    return Researcher(gatherer, ReportWriter(writer_model), verifier, s), search, writer_model


def number_of(messages: list[Message], fragment: str) -> int:
    """The evidence number the writer's prompt gave the sentence containing `fragment`."""
    lines = messages[-1]["content"].splitlines()
    return next(int(line[1:line.index("]")]) for line in lines if fragment in line)
