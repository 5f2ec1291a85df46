"""Hard negatives: what the index's own search ranks high for a training question without it being the answer.

A scorer learns most from the passages the first stage confuses with the right one, so negatives come
from the same fused (dense + BM25) search the scorer will rerank, with no query analysis or reranking
(those would make mining cost model calls). A candidate is not a negative when it is the item's source
chunk, a chunk of any gold document of a question labelled by qrels (those label whole documents, and a
query's gold documents all count as relevant), or a chunk holding the item's answer verbatim (it may well
answer the question too). SQuAD labels a paragraph, so the other chunks of its article stay candidates.
"""

from __future__ import annotations

import time
from dataclasses import replace

from ingest.core.index import Index
from ingest.core.progress import NullProgress, Progress
from ingest.core.settings import SearchSettings
from retrieval.pipeline import RetrievalPipeline
from retrieval.pipeline_factory import PipelineFactory
from retrieval.training.data_summary import DataSummary
from retrieval.training.items import TrainingItem
from retrieval.training.verbatim import locate


class NegativeMiner:
    """Fills `negatives` of training items with up to `hard_negatives` chunk ids from the first `depth`
    of a pipeline's ranking, best first."""

    def __init__(self, pipeline: RetrievalPipeline, index: Index, hard_negatives: int, depth: int = 30) -> None:
        self.pipeline = pipeline
        self.index = index
        self.hard_negatives = hard_negatives
        self.depth = max(depth, hard_negatives)

    @classmethod
    def fused(cls, factory: PipelineFactory, search: SearchSettings, hard_negatives: int,
              depth: int = 30) -> NegativeMiner:
        """Mining over the index's configured fusion of dense and BM25 search, without analysis or reranking."""
        s = search.model_copy(update={"sources": ["dense", "bm25"],
                                      "analysis": search.analysis.model_copy(update={"enabled": False}),
                                      "rerank": search.rerank.model_copy(update={"stages": []})})
        depth = max(depth, hard_negatives)
        return cls(factory.build(s, candidates=max(s.candidates, depth)), factory.index, hard_negatives, depth)

    def mine(self, items: list[TrainingItem],
             progress: Progress | None = None) -> tuple[list[TrainingItem], DataSummary]:
        """The items with their negatives (in the same order), and counts of what mining left out."""
        progress = progress or NullProgress()
        started = time.perf_counter()
        summary = DataSummary()
        gold: dict[str, set[str]] = {}
        for it in items:
            if it.origin == "qrels" and it.answerable:
                gold.setdefault(it.question, set()).add(it.doc_id)
        ranked: dict[str, list[int]] = {}
        progress.stage("negatives", len(items))
        out = []
        for it in items:
            if self.hard_negatives == 0:
                out.append(it)
                progress.advance("negatives")
                continue
            if it.question not in ranked:
                ranked[it.question] = [cid for cid, _ in self.pipeline.run(it.question, self.depth).ranked[: self.depth]]
            negatives = self._negatives(it, ranked[it.question], gold.get(it.question, set()), summary)
            if not negatives:
                summary.dropped["items with no negative found"] += 1
            out.append(replace(it, negatives=tuple(negatives)))
            summary.items += 1
            summary.answerable += int(it.answerable)
            summary.unanswerable += int(not it.answerable)
            progress.advance("negatives")
        summary.seconds = time.perf_counter() - started
        return out, summary

    def _negatives(self, it: TrainingItem, candidates: list[int], gold_docs: set[str],
                   summary: DataSummary) -> list[int]:
        rows = self.index.chunks([c for c in candidates if c != it.chunk_id])
        negatives: list[int] = []
        for cid in candidates:
            row = rows.get(cid)
            if row is None or cid == it.chunk_id:
                continue
            if row.doc_id in gold_docs:
                summary.dropped["candidates skipped: in a gold document"] += 1
                continue
            if it.answer and locate(row.text, it.answer) is not None:
                summary.dropped["candidates skipped: hold the answer"] += 1
                continue
            negatives.append(cid)
            if len(negatives) == self.hard_negatives:
                break
        return negatives
