"""`citewise train` in one place: the data (synthetic, the user's labels, or both), hard negatives, pairs,
then the scorer, under one lock per index. The CLI and the evaluation's folds run the same steps."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ingest.core.errors import ConfigError
from ingest.core.exclusive_lock import ExclusiveLock
from ingest.core.generator import Generator
from ingest.core.index import Index
from ingest.core.progress import NullProgress, Progress
from ingest.core.settings import ResearchSettings, SearchSettings, TrainSettings
from retrieval.evidence import EvidenceSelector
from retrieval.pipeline_factory import PipelineFactory
from retrieval.trained_scorer import META_FILE, TRAIN_LOCK
from retrieval.token_encoder import late_token_encoder
from retrieval.training.data_summary import DataSummary
from retrieval.training.item_store import ItemStore
from retrieval.training.items import TrainingItem
from retrieval.training.labeled_data import LabeledData
from retrieval.training.negative_miner import NegativeMiner
from retrieval.training.pair_builder import PairBuilder
from retrieval.training.question_writer import QuestionWriter
from retrieval.training.ranker_trainer import SentenceRankerTrainer
from retrieval.training.reembedding_trial import ReembeddingTrial
from retrieval.training.scorer_trainer import ScorerTrainer

@dataclass
class TrainResult:
    """What one run made, for the CLI's summary and the evaluation's report."""

    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    pairs: dict[str, Any] = field(default_factory=dict)
    scorer: Path | None = None
    held_out: dict[str, Any] = field(default_factory=dict)
    evidence_ranking: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "pairs": self.pairs, "scorer": str(self.scorer) if self.scorer else None,
                "scorer_bytes": self.scorer_bytes(),
                "held_out": self.held_out, "evidence_ranking": self.evidence_ranking, "vectors": self.vectors,
                "seconds": {k: round(v, 1) for k, v in self.seconds.items()}}

    def scorer_bytes(self) -> int | None:
        """What the published scorer occupies on disk (it is copied to every read replica), None when none was."""
        if self.scorer is None or not self.scorer.is_dir():
            return None
        return sum(f.stat().st_size for f in self.scorer.rglob("*") if f.is_file())


class TrainingRun:
    """Builds the training set for one index and trains its scorer.

    `root` is where the scorer and its checkpoints go (the index folder by default; the evaluation gives
    each fold a folder of its own so folds never see each other's models). `synthetic_root` is where the
    synthetic set is kept (`root` by default): the evaluation's folds share one, as it is written from the
    corpus alone and costs minutes to write.
    """

    def __init__(self, index: Index, factory: PipelineFactory, train: TrainSettings, search: SearchSettings,
                 data_model: Callable[[], Generator] | None = None, progress: Progress | None = None,
                 root: Path | None = None, research: ResearchSettings | None = None,
                 synthetic_root: Path | None = None) -> None:
        self.index = index
        self.factory = factory
        self.train = train
        self.search = search
        self.research = research or ResearchSettings()
        self.data_model = data_model
        self.progress = progress or NullProgress()
        self.root = Path(root) if root else Path(index.path)
        self.synthetic_root = Path(synthetic_root) if synthetic_root else self.root

    def run(self, qrels: Path | None = None, split: str = "train", synthetic: bool = True, fresh: bool = False,
            only_queries: Iterable[str] | None = None) -> TrainResult:
        """Train on synthetic items (when `synthetic` and train.synthetic_chunks > 0) and/or the labels in
        `qrels`, restricted to `only_queries` when given (the training folds of an evaluation)."""
        if not (synthetic and self.train.synthetic_chunks > 0) and qrels is None:
            raise ConfigError("nothing to train on: give --qrels, or let the data-preparation model write "
                              "questions (train.synthetic_chunks > 0)")
        result = TrainResult()
        busy = f"another `citewise train` is running on {self.root}"
        with ExclusiveLock(self.root / TRAIN_LOCK, busy):
            items = self.items(result, qrels, split, synthetic, fresh, only_queries)
            t0 = time.perf_counter()
            mined, summary = NegativeMiner.fused(self.factory, self.search, self.train.hard_negatives).mine(
                items, self.progress)
            result.data["negatives"] = summary.to_dict()
            result.seconds["negatives"] = time.perf_counter() - t0
            builder = PairBuilder(self.index, seed=self.train.seed)
            pairs = builder.build(mined)
            result.pairs = pairs.counts()
            t0 = time.perf_counter()
            held_out = builder.held_out_questions(items)
            ranking = self.evidence_ranking(items, held_out)
            result.evidence_ranking = {k: v for k, v in ranking.items() if k not in ("weights", "mean", "scale")}
            result.seconds["evidence_ranking"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            trainer = ScorerTrainer(self.root, self.train, progress=self.progress)
            trial = ReembeddingTrial(self.factory, self.search, self.train, items, held_out, self.progress)
            result.scorer = trainer.run(pairs, {"sources": {k: v.get("items", 0) for k, v in result.data.items()
                                                            if k != "negatives"}, "evidence_ranker": ranking}, trial)
            result.seconds["train"] = time.perf_counter() - t0
            result.held_out = trainer.last_held_out
            result.vectors = json.loads((result.scorer / META_FILE).read_text()).get("vectors", {})
        return result

    def evidence_ranking(self, items: list[TrainingItem], held_out: set[str]) -> dict[str, Any]:
        """The learned evidence ranking (weights and what the held-out questions measured), published with the
        scorer. Its questions are searched as the research loop searches (its rerank stages, without the
        'trained' one, whose model this run is about to replace)."""
        r = self.research
        stages = [st for st in (r.rerank if r.rerank is not None else self.search.rerank.stages) if st != "trained"]
        s = self.search.model_copy(update={"rerank": self.search.rerank.model_copy(update={"stages": stages})})
        embedder = self.factory.embedder
        selector = EvidenceSelector(embedder, rank_weight=r.evidence_rank_weight,
                                    tokens=late_token_encoder(embedder, s.rerank.late_tokens, s.query_threads),
                                    neighbours=self.index.chunks, passage_chunks=r.corroboration_chunks)
        trainer = SentenceRankerTrainer(self.factory.searcher(s), selector, r.chunks_per_query, r.pool_chunks,
                                        self.progress)
        ranker, report = trainer.fit(items, held_out)
        return {**(ranker.to_json() if ranker is not None else {}), **report}

    def items(self, result: TrainResult, qrels: Path | None, split: str, synthetic: bool, fresh: bool,
              only_queries: Iterable[str] | None) -> list[TrainingItem]:
        items: list[TrainingItem] = []
        if synthetic and self.train.synthetic_chunks > 0:
            if self.data_model is None:
                raise ConfigError("synthetic training data needs the data-preparation model, but none was given")
            t0 = time.perf_counter()
            writer = QuestionWriter(self.data_model(), self.train)
            with ItemStore.for_index(self.synthetic_root) as store:
                summary = writer.write(self.index, store, self.progress, fresh=fresh)
                items += [it for it in store.items() if it.origin == "synthetic"]
            result.data["synthetic"] = {**summary.to_dict(), "items": len(items)}
            result.seconds["synthetic"] = time.perf_counter() - t0
        if qrels is not None:
            labeled = LabeledData(self.index)
            by_query = labeled.load(qrels, split)
            wanted = set(only_queries) if only_queries is not None else None
            chosen = [it for q, its in by_query.items() if wanted is None or q in wanted for it in its]
            summary = DataSummary(items=len(chosen), answerable=sum(1 for it in chosen if it.answerable),
                                  unanswerable=sum(1 for it in chosen if not it.answerable),
                                  dropped=labeled.summary.dropped)
            result.data["labels"] = {**summary.to_dict(), "queries": len({it.question for it in chosen})}
            items += chosen
        if not items:
            raise ConfigError("no training items: the data step kept none (see what it dropped above)")
        return items
