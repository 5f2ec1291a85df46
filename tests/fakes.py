"""Small deterministic stand-ins that implement citewise's protocols, for unit tests of the logic
around the models. Integration tests use the real models."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any, Callable

import numpy as np

from generate.generator import Completion
from ingest.store.docstore import ChunkRow
from retrieval.hybrid import SearchHit
from retrieval.pipeline import PipelineResult
from retrieval.stages import StageTrace


class HashingEmbedder:
    """Bag of lower-cased words hashed into 256 dimensions: similar wording, similar vectors."""

    name = "hashing"
    dim = 256
    max_tokens = 254

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


class ScriptedGenerator:
    """Replies with the next scripted text (or a function of the messages); records every call."""

    def __init__(self, replies: list[Any], name: str = "scripted") -> None:
        self.replies = list(replies)
        self.name = name
        self.calls: list[list[dict[str, str]]] = []

    def chat(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None = None, max_tokens: int = 256,
             stop: list[str] | None = None, on_text: Callable[[str], None] | None = None) -> Completion:
        self.calls.append(messages)
        reply = self.replies.pop(0)
        text = reply(messages) if callable(reply) else reply if isinstance(reply, str) else json.dumps(reply)
        if on_text:
            for i in range(0, len(text), 7):
                on_text(text[i:i + 7])
        return Completion(text=text, prompt_tokens=sum(len(m["content"].split()) for m in messages),
                          completion_tokens=len(text.split()), prefill_s=0.01, decode_s=0.01, total_s=0.02)

    def yes_probability(self, messages: list[dict[str, str]], yes: str = "yes", no: str = "no") -> tuple[float, Completion]:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return len(text.split())


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
