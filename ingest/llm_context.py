"""`llm` context mode: the fast model writes one sentence situating each chunk in its document.

On a CPU the cost is prefill, so the prompt is built for reuse: the document part (its title and
opening) comes first and is the same for every chunk of that document, so the generator keeps its
KV state and each chunk pays only for its own part (section trail, a little preceding text, the
chunk). Generation is greedy, bounded and stops at the first sentence end. Contexts are cached in the
store by a hash of the exact prompt and model, so re-ingesting or switching modes back costs nothing.

Even so the model must read every chunk, which for a large corpus takes hours on a CPU. The
`document` scope (setting `context_scope`) makes one call per document instead, from its opening
alone, and gives that sentence to every chunk beside the chunk's own section trail.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Protocol

from ingest.core.generator import Generator, Message, Usage
from ingest.context import ContextOutcome, StructureContextualizer
from ingest.core.errors import GenerationError
from ingest.core.progress import NullProgress, Progress
from ingest.core.settings import IngestSettings
from ingest.core.types import Chunk, ChunkedDocument
from ingest.core.text import normalize_ws

#: Bump when the prompt changes, so cached contexts from the old prompt are not reused.
PROMPT_VERSION = "1"

SYSTEM = ("You help a search engine. You are shown the start of a document and one passage from it. "
          "Write one short sentence saying what the passage is about, naming the document's subject and the "
          "specific people, places, things or events the passage refers to. Write only that sentence.")
DOCUMENT_SYSTEM = ("You help a search engine. You are shown the start of a document. Write one short sentence "
                   "saying what the document is about, naming its subject and the specific people, places, things "
                   "or events it deals with. Write only that sentence.")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
STOP = [". ", ".\n", "\n", "! ", "? "]


class ContextCache(Protocol):
    """Where generated contexts are kept between runs (the index's SQLite store)."""

    def cached_contexts(self, keys: list[str]) -> dict[str, str]: ...

    def cache_context(self, key: str, context: str, source: str) -> None: ...


class ContextTimeout(GenerationError):
    """A document's contexts took longer than the setting allows."""


class LlmContextualizer:
    """Structure trail plus a generated sentence per chunk; a failing document keeps the structure trail."""

    def __init__(self, generator: Generator, structure: StructureContextualizer, cache: ContextCache,
                 settings: IngestSettings) -> None:
        self.generator = generator
        self.structure = structure
        self.cache = cache
        self.settings = settings
        self.usage = Usage()
        # Recorded per document, so switching the scope or the skip rule re-contextualizes (cached sentences
        # are reused): "llm", "llm+named", "llm+document".
        if settings.context_scope == "document":
            self.mode = "llm+document"
        else:
            self.mode = "llm" if settings.context_skip == "never" else f"llm+{settings.context_skip}"

    def embed_text(self, chunk: Chunk) -> str:
        return self.structure.embed_text(chunk)

    def contextualize(self, doc: ChunkedDocument, progress: Progress | None = None) -> ContextOutcome:
        progress = progress or NullProgress()
        outcome = ContextOutcome(self.mode)
        trails = [self.structure.trail(doc, c) for c in doc.chunks]
        units = self.units(doc, trails)
        keys = [self.cache_key(prompt) if prompt else "" for prompt, _ in units]
        known = self.cache.cached_contexts([k for k in keys if k])
        sentences = [""] * len(doc.chunks)
        done = 0
        started = time.perf_counter()
        try:
            for (prompt, members), key in zip(units, keys):
                if prompt is None:
                    sentence = ""
                    outcome.skipped += len(members)
                elif key in known:
                    sentence = known[key]
                    outcome.cached += 1
                else:
                    elapsed = time.perf_counter() - started
                    if elapsed > self.settings.context_timeout_s:
                        raise ContextTimeout(f"context generation took over {self.settings.context_timeout_s:g} s "
                                             "(setting ingest.context_timeout_s)")
                    sentence = self._generate(prompt)
                    self.cache.cache_context(key, sentence, doc.doc.source)
                    outcome.generated += 1
                for i in members:
                    sentences[i] = sentence
                done += len(members)
                progress.advance("context", len(members))
        except GenerationError as exc:
            progress.advance("context", len(doc.chunks) - done)
            outcome.failure = f"context generation failed, indexed with structure context: {exc.message}"
            sentences = [""] * len(doc.chunks)
        for chunk, trail, sentence in zip(doc.chunks, trails, sentences):
            chunk.context = "\n".join(p for p in (trail, sentence) if p)
        return outcome

    def units(self, doc: ChunkedDocument, trails: list[str]) -> list[tuple[list[Message] | None, list[int]]]:
        """One model call each: its prompt (None: no call, structure trail only) and the chunks it serves."""
        if self.settings.context_scope == "document":
            return [(self.document_prompt(doc), list(range(len(doc.chunks))))] if doc.chunks else []
        return [(None if self.subject_named(doc, c) else self.prompt(doc, c, t), [i])
                for i, (c, t) in enumerate(zip(doc.chunks, trails))]

    def subject_named(self, doc: ChunkedDocument, chunk: Chunk) -> bool:
        """Whether a generated sentence could add little: the chunk is the whole document, or names its title.

        The model's job is to name the subject a chunk leaves implicit; such a chunk leaves none.
        """
        if self.settings.context_skip != "named":
            return False
        if len(doc.chunks) == 1:
            return True
        title = normalize_ws(doc.doc.title).lower()
        return len(title) >= 4 and title in normalize_ws(chunk.text).lower()

    def prompt(self, doc: ChunkedDocument, chunk: Chunk, trail: str) -> list[Message]:
        """Document part first (shared by all its chunks, so its KV state is reused), chunk part last."""
        s = self.settings
        text = doc.text
        lead, shared = self._document_part(doc)
        before = ""
        if s.context_neighbour_chars and chunk.start > len(lead):
            before = _cut_start(text[max(0, chunk.start - s.context_neighbour_chars): chunk.start])
        own = f"---\nSection: {trail or '(none)'}\n"
        if before:
            own += f"Text just before the passage: ...{before}\n"
        own += f"Passage:\n{_cut_end(chunk.text, s.context_chunk_chars)}\n---\n"
        own += "One sentence on what this passage is about:"
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": shared + own}]

    def document_prompt(self, doc: ChunkedDocument) -> list[Message]:
        """`document` scope: the same document part as a chunk prompt, asked about the document as a whole."""
        _, shared = self._document_part(doc)
        return [{"role": "system", "content": DOCUMENT_SYSTEM},
                {"role": "user", "content": shared + "---\nOne sentence on what this document is about:"}]

    def _document_part(self, doc: ChunkedDocument) -> tuple[str, str]:
        """The document's opening within `context_doc_chars`, and the prompt part built from it."""
        lead = _cut_end(doc.text, self.settings.context_doc_chars)
        return lead, f"Document: {doc.doc.title.strip() or '(untitled)'}\n\n{lead}\n\n"

    def cache_key(self, prompt: list[Message]) -> str:
        ident = [PROMPT_VERSION, self.generator.name, self.settings.context_max_new_tokens, prompt]
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()

    def _generate(self, prompt: list[Message]) -> str:
        completion = self.generator.chat(prompt, max_tokens=self.settings.context_max_new_tokens, stop=STOP)
        self.usage.add(completion)
        return first_sentence(completion.text)


def first_sentence(text: str) -> str:
    """The reply's first sentence, on one line, ending with a full stop."""
    text = normalize_ws(text)
    text = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text


def _cut_end(text: str, limit: int) -> str:
    """At most `limit` characters from the start, ending at a word boundary."""
    if len(text) <= limit:
        return text.strip()
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).strip()


def _cut_start(text: str) -> str:
    """Drop a partial first word."""
    space = text.find(" ")
    return (text[space + 1:] if 0 <= space < len(text) // 2 else text).strip()
