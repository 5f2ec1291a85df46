"""How hard `citewise ask` searches before it writes, and how much the writer may read and write."""

from __future__ import annotations

import copy
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from ingest.core.settings.base import Section


class ResearchSettings(Section):
    """How hard `citewise ask` searches before it writes, and how much the writer may read and write."""

    max_rounds: int = Field(default=2, ge=1, le=6, description="Search rounds at most (the first uses the question).")
    time_budget_s: float = Field(default=60.0, gt=0, le=600, description="No new search round starts after this.")
    plan: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Ask the fast model for search queries: 'auto' only when a round found too little.",
    )
    max_queries: int = Field(default=3, ge=1, le=6, description="Queries the planner may add per round.")
    chunks_per_query: int = Field(default=8, ge=1, le=50, description="Chunks retrieved for each query.")
    rerank: list[Literal["late", "llm", "cross-encoder", "trained"]] | None = Field(
        default=["late"],
        description="Reranking stages for the research loop's searches (none: the same as search.rerank.stages). "
                    "A report can afford a second more per search than an interactive search can.",
    )
    pool_chunks: int = Field(default=12, ge=1, le=100, description="Chunks whose sentences compete as evidence.")
    evidence_sentences: int = Field(default=6, ge=1, le=40, description="Evidence sentences the writer reads.")
    evidence_documents: int = Field(default=3, ge=0, le=20,
                                    description="Documents the evidence sentences may come from (0: any).")
    evidence_tokens: int = Field(default=256, ge=32, description="Word-piece budget for all evidence sentences.")
    evidence_rank_weight: float = Field(
        default=0.6, ge=0, le=2,
        description="Weight of a sentence's chunk rank (search order) beside its similarity to the question, "
                    "when no learned evidence ranking applies (evidence_ranking). With a trained scorer ranking "
                    "the evidence it only picks which sentences the scorer reads (scored_sentences).",
    )
    evidence_ranking: Literal["auto", "rule"] = Field(
        default="auto",
        description="'auto': when `citewise train` published a scorer for the index and, with it, an evidence "
                    "ranking that ranked its held-out training questions' sentences at least as well as the "
                    "hand-set rule, candidate sentences are ordered by that learned ranking (cosine, token-level "
                    "match, chunk rank and place in the chunk, weighed as the corpus's own questions taught). "
                    "'rule': the cosine plus evidence_rank_weight times the chunk-rank prior. An index without a "
                    "trained scorer uses the rule either way.",
    )
    evidence_document_margin: float | None = Field(
        default=0.1, ge=0,
        description="Another document joins the evidence only when its best sentence scores within this of the "
                    "best document's (none: no limit beyond evidence_documents). Applies when the index has no "
                    "trained scorer; with one, a document joins when its best sentence reaches answer_probability.",
    )
    enough_similarity: float = Field(
        default=0.55, ge=0, le=1,
        description="Stop searching once the best evidence sentence is this similar to the question. Applies "
                    "when the index has no trained scorer (then answer_probability decides).",
    )
    use_trained_scorer: Literal["auto", "evidence", "never"] = Field(
        default="never",
        description="'auto': when `citewise train` published a scorer for the index, its calibrated probabilities "
                    "rank the evidence sentences and decide when to stop searching and whether the documents "
                    "answer, in place of the embedder-cosine thresholds (enough_similarity, relevance_floor, "
                    "evidence_document_margin). 'evidence': the scorer only ranks the evidence sentences; the "
                    "cosine thresholds still decide. 'never' (default): the cosine thresholds. Not 'auto' by "
                    "default because the scorer's probabilities rank a question's passages better than they say "
                    "whether any passage answers: with 'auto' reports decline answerable questions "
                    "(docs/training.md). The scorer's ranking also reaches reports through research.rerank = "
                    "[\"trained\"].",
    )
    scored_sentences: int = Field(
        default=24, ge=1, le=200,
        description="With a trained scorer: how many candidate sentences (the best by embedder similarity and "
                    "chunk rank) the scorer reads per selection. Each is one model run on the CPU, so this bounds "
                    "what scoring adds to a report; sentences beyond it do not compete as evidence.",
    )
    answer_probability: float = Field(
        default=0.5, ge=0, le=1,
        description="With a trained scorer: searching stops once the evidence has at least this probability of "
                    "answering the question (the scorer's answerability, fitted on held-out questions shown with "
                    "and without their answer), and below it the report says the documents do not answer and "
                    "the writer is not called; a document beyond the first joins the evidence when its best "
                    "sentence has this probability. Calibrated, so 0.5 means 'more likely than not' on every "
                    "corpus, unlike a tuned similarity.",
    )
    citation_probability: float = Field(
        default=0.2, ge=0, le=1,
        description="With a trained scorer: a citation counts only if its quote has at least this probability of "
                    "answering the question. Lower than answer_probability: once one sentence answers, a "
                    "statement may cite one that supports the answer without answering it alone (the scorer was "
                    "trained to call such sentences non-answers), while a quote this improbable does not bear on "
                    "the question at all.",
    )
    writer_max_tokens: int = Field(default=300, ge=16, le=2048, description="Tokens the writer may generate.")
    max_statements: int = Field(default=3, ge=1, le=10, description="Cited statements in a report at most.")
    support_similarity: float = Field(
        default=0.3, ge=0, le=1,
        description="A citation counts only if statement and quote are at least this similar (embedder cosine).",
    )
    common_name_documents: int = Field(
        default=3, ge=1, le=1000,
        description="A name a statement adds beyond its cited sentences is allowed when at least this many documents "
                    "of the index hold it (the collection's own vocabulary, as 'Python' in the PEPs); any other "
                    "added name or number makes the citation fail, so an injected claim cannot be pinned on a real "
                    "sentence that lacks it.")
    relevance_floor: float = Field(
        default=0.35, ge=0, le=1,
        description="A citation counts only if its quote is at least this similar to the question (embedder "
                    "cosine); with no evidence sentence this close, the report says the documents do not answer "
                    "and the writer is not called. Chosen on tuning slices (docs/research-loop.md). Applies when "
                    "the index has no trained scorer (then answer_probability and citation_probability decide).",
    )
    relevance_scope: Literal["passage", "sentence"] = Field(
        default="sentence",
        description="What the relevance bound (relevance_floor, or citation_probability) is read from: the quoted "
                    "sentence alone, or also its passage (chunk): a quote under the bound still bears on the "
                    "question when a sentence of its passage shown with it is close enough to stop searching "
                    "(enough_similarity, or answer_probability). A sentence that refers back ('the operator', "
                    "'this change') bears on the question through the neighbour that names the subject, while its "
                    "own similarity to the question is low; a neighbour that only just clears the floor is as "
                    "likely to be about a nearby topic, so it lends nothing. See docs/research-loop.md.",
    )
    citation_choice: Literal["writer", "passage", "specifics"] = Field(
        default="specifics",
        description="Which sentence a statement's citation shows. 'specifics': the one the writer numbered, and when "
                    "no sentence it numbered passes the checks, the shown sentence holding every name and number the "
                    "statement gives beyond the question, if one passes them (a small writer copies a fact from one "
                    "sentence and numbers another; such a citation is marked located); 'writer': the numbered one "
                    "only; 'passage': the sentence of that one's passage (chunk, among the evidence) closest in "
                    "meaning to the statement, for a writer that keeps the passage it meant but takes a neighbour's "
                    "number (pair with relevance_scope 'passage', which alone would let such a number through). See "
                    "docs/research-loop.md.",
    )
    corroboration: Literal["auto", "never"] = Field(
        default="auto",
        description="'auto': when `citewise train` published, with the index's scorer, a corroboration model whose "
                    "additions on held-out questions' passages were mostly evidence, a cited statement also cites "
                    "the other sentences of its cited passage (whether or not the evidence budgets showed them to "
                    "the writer) that the model finds likely to be evidence too (corroboration_probability), each "
                    "passing the same checks as the writer's citations. A small writer cites one sentence where "
                    "the documents give two or three. 'never': "
                    "only what the writer cited. An index without such a model cites as 'never'.",
    )
    corroboration_probability: float = Field(
        default=0.5, ge=0.05, le=0.99,
        description="A passage's sentence corroborates a cited one when the corroboration model finds it at least "
                    "this likely to be evidence too. Calibrated on the index's own training passages, so 0.5 means "
                    "'more likely than not'.",
    )
    corroboration_chunks: int = Field(
        default=4, ge=0, le=16,
        description="A cited sentence's passage, for corroboration: its chunk and up to this many chunks on each "
                    "side of the same document under the same headings. Chunks are cut to a size, not to what a "
                    "document says in one place (an abstract's findings often sit in the chunk after the one naming "
                    "its subject). `citewise train` fits the corroboration model on passages of this reach, so "
                    "change it before training; 0 keeps a passage to one chunk.",
    )


#: Longest question (or claim, or search query) accepted, by the CLI and the HTTP API alike.
MAX_QUESTION_CHARS = 2000

#: The research settings a single request (an HTTP body, `citewise ask --rounds`) may change.
PER_REQUEST = ("max_rounds", "plan", "time_budget_s", "writer_max_tokens", "max_statements")


class _Options(BaseModel):
    """Per-request overrides of `research.*`; unset fields keep the configured values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def apply(self, settings: ResearchSettings) -> ResearchSettings:
        """The settings with these options applied, validated as a whole."""
        if not self.overrides():
            return settings
        return ResearchSettings.model_validate({**settings.model_dump(), **self.overrides()})


def _optional(name: str) -> tuple[Any, Any]:
    """The setting's own field (bounds, description), made optional: the bounds cannot drift apart."""
    field = copy.deepcopy(ResearchSettings.model_fields[name])
    field.default = None
    return Optional[field.annotation], field  # noqa: UP007 (a runtime type expression)


#: Validated on construction with exactly the bounds of the settings they override.
ResearchOptions = create_model("ResearchOptions", __base__=_Options,
                               **{name: _optional(name) for name in PER_REQUEST})  # type: ignore[call-overload]
ResearchOptions.__doc__ = _Options.__doc__
