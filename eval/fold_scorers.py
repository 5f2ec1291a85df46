"""Scorers an evaluation trains for itself: one per fold of the dataset's queries (`--train-folds K`: trained
on the other folds' labels, evaluated on this fold's queries only) or one from synthetic data alone
(`--train synthetic`: no labels). Each is trained once into the run folder and reused on `--resume`, so no
figure is ever measured on a query its scorer was trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from generate.engine import Engine
from ingest.core.errors import ConfigError
from ingest.core.index import Index
from ingest.core.progress import Progress
from ingest.core.scorer import Scorer
from ingest.core.settings import Settings
from retrieval.trained_scorer import OnnxTrainedScorer, current_generation
from retrieval.training.labeled_data import query_folds
from retrieval.training.training_run import TrainingRun

TrainMode = Literal["synthetic"]


class FoldScorers:
    """Trains (or finds, when resuming) the scorers of one evaluation run, under `root`."""

    def __init__(self, engine: Engine, index: Index, settings: Settings, root: Path, progress: Progress) -> None:
        self.engine = engine
        self.index = index
        self.settings = settings
        self.root = Path(root)
        self.progress = progress
        self.trained: dict[str, Any] = {}

    def folds(self, query_ids: list[str], k: int) -> list[list[str]]:
        if k < 2 or k > len(query_ids):
            raise ConfigError(f"--train-folds {k}: need at least 2 folds and no more folds than queries "
                              f"({len(query_ids)})")
        return query_folds(query_ids, k, self.settings.train.seed)

    def for_fold(self, fold: int, train_queries: list[str], labels: Path, split: str) -> Scorer:
        """The scorer trained on `train_queries`' labels only (the other folds)."""
        root = self.root / f"fold-{fold}"
        if current_generation(root) is None:
            self.progress.log(f"training the scorer of fold {fold} on {len(train_queries)} queries' labels")
            run = TrainingRun(self.index, self.engine.pipeline_factory(self.index), self.settings.train,
                              self.settings.search, None, self.progress, root=root)
            result = run.run(labels, split, synthetic=False, only_queries=train_queries)
            (root / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
        return self._load(root, f"fold-{fold}")

    def synthetic(self) -> Scorer:
        """The scorer trained on questions the data-preparation model wrote about the corpus, no labels."""
        root = self.root / "synthetic"
        if current_generation(root) is None:
            s = self.settings.train
            run = TrainingRun(self.index, self.engine.pipeline_factory(self.index), s, self.settings.search,
                              lambda: self.engine.model(s.data_model), self.progress, root=root)
            result = run.run(None, synthetic=True)
            (root / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
        return self._load(root, "synthetic")

    def described(self) -> dict[str, Any]:
        """What every scorer of this run folder was trained on, including ones a resumed run did not load."""
        out = dict(self.trained)
        for done in sorted(self.root.glob("*/result.json")):
            name = done.parent.name
            if name not in out:
                generation = current_generation(done.parent)
                meta = json.loads((generation / "meta.json").read_text()) if generation else {}
                out[name] = {**json.loads(done.read_text()), "meta": meta}
        return out

    def _load(self, root: Path, name: str) -> Scorer:
        scorer = OnnxTrainedScorer(folder=current_generation(root))
        done = root / "result.json"
        self.trained[name] = {**(json.loads(done.read_text()) if done.is_file() else {}),
                              "meta": scorer.meta}
        return scorer
