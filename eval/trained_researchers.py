"""The researchers of evaluation systems that use a scorer the run trained, each item's held out from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from generate.engine import Engine
from generate.researcher import Researcher
from eval.fold_scorers import FoldScorers, TrainMode, check_train_mode
from ingest.core.errors import InvalidRequestError
from ingest.core.progress import Progress
from ingest.core.settings import Settings

#: Systems answering each item with a scorer this run trained (held out from the item).
#: Each one's research settings: how it uses the scorer.
#: Each but citewise-trained (everything the run trained) keeps the hand-set evidence ranking unless it is
#: the thing measured, so each measures one use.
TRAINED = {"citewise-trained": {"use_trained_scorer": "auto", "evidence_ranking": "auto", "corroboration": "auto"},
           "citewise-reranked": {"use_trained_scorer": "never", "rerank": ["trained"], "evidence_ranking": "rule",
                                 "corroboration": "never"},
           "citewise-scored-evidence": {"use_trained_scorer": "evidence", "evidence_ranking": "rule",
                                        "corroboration": "never"},
           "citewise-ranked-evidence": {"use_trained_scorer": "never", "evidence_ranking": "auto",
                                        "corroboration": "never"},
           "citewise-corroborated": {"use_trained_scorer": "never", "evidence_ranking": "rule",
                                     "corroboration": "auto"},
           "citewise-reembedded": {"use_trained_scorer": "never", "evidence_ranking": "rule", "corroboration": "never"},
           # What an index answers with after `citewise train` with the default settings, all uses together.
           "citewise-as-trained": {"use_trained_scorer": "never", "evidence_ranking": "auto", "corroboration": "auto"}}
#: Systems whose searches' dense part reads the corpus as the item's scorer embeds it (search.dense_vectors).
REEMBEDDED = {"citewise-reembedded", "citewise-as-trained"}


def check_trained_options(systems: list[str], train_folds: int | None, train: TrainMode | None) -> None:
    """Trained systems need exactly one way to train that never sees the items they answer, and it applies to
    them alone: a run without one would quietly use nothing, or the index's own scorer."""
    check_train_mode(train_folds, train)
    if bool(set(TRAINED) & set(systems)) != bool(train_folds or train):
        raise InvalidRequestError(f"{', '.join(sorted(TRAINED))} need --train-folds K (optionally with --train "
                                  "labels+synthetic) or --train synthetic, and they apply to them alone")


class TrainedResearchers:
    """The trained systems' researcher for each item, with its fold's scorer (trained on the other folds'
    labels) or the synthetic one; off-topic items, in no fold, get the first fold's. How each system uses
    the scorer is in TRAINED."""

    def __init__(self, comps: Engine, index: Any, settings: Settings, root: Path, progress: Progress,
                 labels: Path, split: str, folds: int | None, mode: TrainMode | None, query_ids: list[str]) -> None:
        self.comps, self.index, self.labels, self.split, self.mode = comps, index, labels, split, mode
        self.settings = settings
        self._engines: dict[str, Engine] = {}
        self.scorers = FoldScorers(comps, index, settings, root, progress)
        self.folds = self.scorers.folds(query_ids, folds) if folds else []
        self.fold_of = {q: k for k, fold in enumerate(self.folds) for q in fold}
        self.built: dict[tuple[int, str], Researcher] = {}

    def engine(self, system: str) -> Engine:
        """An engine sharing the run's loaded models whose researchers use the scorer as `system` does
        (TRAINED), whatever the run's settings say."""
        if system not in self._engines:
            mine = self.settings.model_copy(deep=True)
            for key, value in TRAINED[system].items():
                setattr(mine.research, key, value)
            mine.search.dense_vectors = "trained" if system in REEMBEDDED else "embedder"
            self._engines[system] = Engine(mine, embedder=self.comps.embedder, fast_model=self.comps.fast_model,
                                           writer_model=self.comps.writer_model)
        return self._engines[system]

    def for_item(self, qid: str, system: str) -> Researcher:
        only_synthetic = self.mode == "synthetic"
        k = -1 if only_synthetic else self.fold_of.get(qid, 0)
        if (k, system) not in self.built:
            if only_synthetic:
                scorer = self.scorers.synthetic()
            else:
                rest = [q for j, fold in enumerate(self.folds) if j != k for q in fold]
                scorer = self.scorers.for_fold(k, rest, self.labels, self.split, self.mode == "labels+synthetic")
            factory = self.scorers.factory(self.comps.pipeline_factory(self.index), scorer,
                                           "synthetic" if only_synthetic else f"fold-{k}", system in REEMBEDDED)
            researcher = self.engine(system).researcher_over(self.index, factory)
            researcher.warm_up()
            self.built[(k, system)] = researcher
        return self.built[(k, system)]
