"""Whether the dense first stage should search the corpus as the just-trained bi-encoder embeds it.

Fine-tuning the embedder on the corpus's questions can move which candidates the search finds at all, at
first-stage cost, but on a corpus it was trained on from too little data it can also forget what the shipped
embedder knew. So the publish encodes every chunk with the new int8 model and keeps the vectors only when the
first stage as configured ranks the held-out questions' source chunks at least as well with them as with the
embedder's (`train.reembed = "auto"`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ingest.core.progress import NullProgress, Progress
from ingest.core.settings import SearchSettings, TrainSettings
from retrieval.pipeline_factory import PipelineFactory
from retrieval.trained_scorer import OnnxTrainedScorer
from retrieval.trained_vectors import VECTORS_FILE, TrainedVectors
from retrieval.training.items import TrainingItem

#: Below this many held-out questions an MRR difference is mostly which few questions were drawn: keep the
#: embedder's vectors (the previous behaviour) rather than switch on noise.
MIN_QUESTIONS = 10
#: Ranks read per question: the depth at which a report's research loop takes chunks.
DEPTH = 10


class ReembeddingTrial:
    """Called by the publisher with the new int8 scorer and its generation folder, before the pointer switches;
    writes `vectors.npz` there when they are to be used, and returns what it measured for meta.json."""

    def __init__(self, factory: PipelineFactory, search: SearchSettings, train: TrainSettings,
                 items: list[TrainingItem], held_out: set[str], progress: Progress | None = None) -> None:
        self.factory = factory
        self.search = search
        self.mode = train.reembed
        self.progress = progress or NullProgress()
        self.sources: dict[str, set[int]] = {}
        for item in items:
            if item.answerable and item.question in held_out:
                self.sources.setdefault(item.question, set()).add(item.chunk_id)

    def __call__(self, scorer: OnnxTrainedScorer, folder: Path) -> dict[str, Any]:
        kind = scorer.meta.get("kind", "cross-encoder")
        if self.mode == "never" or kind != "bi-encoder":
            why = "train.reembed is 'never'" if self.mode == "never" else f"a {kind} gives no vectors to search"
            return {"used": False, "why": why}
        t0 = time.perf_counter()
        self.progress.log("encoding the corpus with the trained encoder")
        vectors = TrainedVectors.encode_corpus(self.factory.index, scorer.vectors, self.progress, save_to=folder)
        record: dict[str, Any] = {"chunks": len(vectors), "encode_s": round(time.perf_counter() - t0, 1)}
        used = True
        if self.mode == "auto":
            record["held_out"] = measured = self.compare(vectors)
            enough = measured["questions"] >= MIN_QUESTIONS
            used = enough and measured["trained_mrr"] >= measured["embedder_mrr"]
            record["why"] = (f"held-out MRR@{DEPTH} {measured['trained_mrr']:.3f} with the trained vectors against "
                             f"{measured['embedder_mrr']:.3f} with the embedder's on {measured['questions']} "
                             "questions" + ("" if enough else f" (fewer than {MIN_QUESTIONS}: not enough to tell)"))
            self.progress.log(f"trained encoder vectors {'used' if used else 'not used'}: {record['why']}")
        else:
            record["why"] = "train.reembed is 'always'"
        if not used:
            (Path(folder) / VECTORS_FILE).unlink(missing_ok=True)
        return {"used": used, **record}

    def compare(self, vectors: TrainedVectors) -> dict[str, Any]:
        """MRR@DEPTH of the held-out questions' source chunks, the first stage as configured (no query analysis,
        no reranking) over the embedder's vectors and over `vectors`."""
        first = self.search.model_copy(update={"analysis": self.search.analysis.model_copy(update={"enabled": False}),
                                               "rerank": self.search.rerank.model_copy(update={"stages": []})})
        f = self.factory
        embedder = f.build(first.model_copy(update={"dense_vectors": "embedder"}))
        trial = PipelineFactory(f.index, f.embedder, corpus_vectors=vectors).build(
            first.model_copy(update={"dense_vectors": "trained"}))
        out: dict[str, Any] = {"questions": len(self.sources)}
        for name, pipeline in (("embedder_mrr", embedder), ("trained_mrr", trial)):
            total = 0.0
            for question, sources in self.sources.items():
                ranked = [cid for cid, _ in pipeline.run(question, DEPTH).ranked[:DEPTH]]
                total += next((1.0 / (r + 1) for r, cid in enumerate(ranked) if cid in sources), 0.0)
            out[name] = round(total / max(len(self.sources), 1), 4)
        return out
