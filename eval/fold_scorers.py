"""Scorers an evaluation trains for itself: one per fold of the dataset's queries (`--train-folds K`: trained
on the other folds' labels, evaluated on this fold's queries only; with `--train labels+synthetic` the synthetic
questions about the corpus are added to each fold's labels, as `citewise train --qrels` adds them) or one from
synthetic data alone (`--train synthetic`: no labels). Each is trained once into the run folder and reused on
`--resume`, so no figure is ever measured on a query its scorer was trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Literal, get_args

from eval.reembedded import PREFIX, check_reembedded
from generate.engine import Engine
from ingest.core.errors import ConfigError
from ingest.core.index import Index
from ingest.core.progress import Progress
from ingest.core.scorer import Scorer
from ingest.core.settings import Settings, TrainSettings
from retrieval.pipeline_factory import PipelineFactory
from retrieval.trained_scorer import OnnxTrainedScorer, current_generation
from retrieval.trained_vectors import TrainedVectors
from retrieval.training.labeled_data import query_folds
from retrieval.training.training_run import TrainingRun

TrainMode = Literal["synthetic", "labels+synthetic"]
TRAIN_MODES: tuple[str, ...] = get_args(TrainMode)
#: Where a run keeps the synthetic set its folds share: written once, as it costs minutes per chunk batch.
SHARED_SYNTHETIC = "synthetic-data"


def check_train_mode(train_folds: int | None, train: TrainMode | None) -> None:
    """`synthetic` trains one scorer without labels, so it takes no folds; `labels+synthetic` adds the synthetic
    set to each fold's labels, so it needs them."""
    if train == "synthetic" and train_folds:
        raise ConfigError("choose --train-folds or --train synthetic, not both (--train labels+synthetic adds "
                          "synthetic questions to each fold's labels)")
    if train == "labels+synthetic" and not train_folds:
        raise ConfigError("--train labels+synthetic adds synthetic questions to each fold's labels: give "
                          "--train-folds K")


def with_scorer(factory: PipelineFactory, scorer: Scorer) -> PipelineFactory:
    """The same pipelines, with `scorer` as the trained stage's (the index's own is never used by a run)."""
    return PipelineFactory(factory.index, factory.embedder, factory.models, factory.query_cache, trained=scorer)


class FoldScorers:
    """Trains (or finds, when resuming) the scorers of one evaluation run, under `root`."""

    def __init__(self, engine: Engine, index: Index, settings: Settings, root: Path, progress: Progress) -> None:
        self.engine = engine
        self.index = index
        self.settings = settings
        self.root = Path(root)
        self.progress = progress
        self.trained: dict[str, Any] = {}
        self._reembedded: dict[str, PipelineFactory] = {}

    def folds(self, query_ids: list[str], k: int) -> list[list[str]]:
        if k < 2 or k > len(query_ids):
            raise ConfigError(f"--train-folds {k}: need at least 2 folds and no more folds than queries "
                              f"({len(query_ids)})")
        return query_folds(query_ids, k, self.settings.train.seed)

    def for_fold(self, fold: int, train_queries: list[str], labels: Path, split: str,
                 with_synthetic: bool = False) -> Scorer:
        """The scorer trained on `train_queries`' labels (the other folds), and with `with_synthetic` on the
        synthetic set too: written about the corpus, never from labels, so it is the same for every fold and
        written once (`SHARED_SYNTHETIC`)."""
        root = self.root / f"fold-{fold}"
        if current_generation(root) is None:
            extra = " and the synthetic questions" if with_synthetic else ""
            self.progress.log(f"training the scorer of fold {fold} on {len(train_queries)} queries' labels{extra}")
            s = self._train_settings()
            run = TrainingRun(self.index, self.engine.pipeline_factory(self.index), s, self.settings.search,
                              (lambda: self.engine.model(s.data_model)) if with_synthetic else None, self.progress,
                              root=root, research=self.settings.research,
                              synthetic_root=self.root / SHARED_SYNTHETIC)
            result = run.run(labels, split, synthetic=with_synthetic, only_queries=train_queries)
            (root / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
        return self._load(root, f"fold-{fold}")

    def synthetic(self) -> Scorer:
        """The scorer trained on questions the data-preparation model wrote about the corpus, no labels."""
        root = self.root / "synthetic"
        if current_generation(root) is None:
            s = self._train_settings()
            run = TrainingRun(self.index, self.engine.pipeline_factory(self.index), s, self.settings.search,
                              lambda: self.engine.model(s.data_model), self.progress, root=root,
                              research=self.settings.research)
            result = run.run(None, synthetic=True)
            (root / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
        return self._load(root, "synthetic")

    def _train_settings(self) -> TrainSettings:
        """The configured training, publishing no corpus vectors: a run's re-embedded systems encode the corpus
        into the run folder when asked for (`factory`), and every other system searches the embedder's."""
        return self.settings.train.model_copy(update={"reembed": "never"})

    def parts(self, system: str, todo: list[str], factory: PipelineFactory, all_queries: list[str],
              train_folds: int | None, train: TrainMode | None, labels: Path,
              split: str) -> Iterator[tuple[PipelineFactory, list[str]]]:
        """(pipeline factory, queries it ranks): one part for a system without the trained stage; with it, one
        part per fold (the fold's queries, with the scorer trained on the other folds) or the synthetic scorer. A
        `reembedded+` system's parts also search the corpus as that part's scorer embeds it."""
        reembedded = system.startswith(PREFIX)
        check_reembedded([system], train_folds, train)
        if not reembedded and ("trained" not in system.split("+") or (not train_folds and not train)):
            yield factory, todo  # without a run's scorer: the one published beside the index, as a user's search
            return
        if train == "synthetic":
            yield self.factory(factory, self.synthetic(), "synthetic", reembedded), todo
            return
        folds = self.folds(all_queries, train_folds or 0)
        wanted = set(todo)
        for k, held_out in enumerate(folds):
            mine = [q for q in held_out if q in wanted]
            if mine:
                rest = [q for j, fold in enumerate(folds) if j != k for q in fold]
                scorer = self.for_fold(k, rest, labels, split, train == "labels+synthetic")
                yield self.factory(factory, scorer, f"fold-{k}", reembedded), mine

    def factory(self, factory: PipelineFactory, scorer: Scorer, name: str, reembedded: bool) -> PipelineFactory:
        """Pipelines with the run's scorer as the trained stage and, for a re-embedded system, as the embedder."""
        if not reembedded:
            return with_scorer(factory, scorer)
        if name not in self._reembedded:  # several re-embedded systems share one scorer's vectors
            assert isinstance(scorer, OnnxTrainedScorer)
            folder = self.root / name
            vectors = TrainedVectors.load(folder, scorer.vectors)
            if vectors is None:
                self.progress.log(f"re-embedding the corpus with the trained encoder of {name}")
                vectors = TrainedVectors.encode_corpus(self.index, scorer.vectors, self.progress, save_to=folder)
            self._reembedded[name] = PipelineFactory(factory.index, factory.embedder, factory.models,
                                                     factory.query_cache, trained=scorer, corpus_vectors=vectors)
        return self._reembedded[name]

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


def training_lines(training: dict[str, Any] | None) -> list[str]:
    """How a run's trained systems got their scorers, so every figure says what it was not trained on, and what
    the training cost (synthetic data written, training seconds)."""
    if not training:
        return []
    mixed = training.get("mode") == "labels+synthetic"
    how = (f"{training['folds']}-fold: each fold's queries answered with a scorer trained on the other folds' "
           + ("labels and synthetic questions about the corpus" if mixed else "labels only")
           if training["folds"] else "a scorer trained on synthetic questions about the corpus only, "
           "no labels")
    lines = [f"Trained systems: {how}.", ""]
    for name, t in training["scorers"].items():
        meta = t.get("meta", {})
        fp32 = (meta.get("held_out") or {}).get("fp32") or {}
        held = (meta.get("held_out") or {}).get("int8") or fp32
        answerability = meta.get("answerability") or {}
        within, answers, near = fp32.get("question_auc"), answerability.get("auc"), answerability.get("near_miss_auc")
        secs, data = t.get("seconds", {}), t.get("data", {})
        synthetic = data.get("synthetic") or {}
        made = (f"; synthetic data {synthetic.get('items', 0)} items in {secs['synthetic']:.0f} s"
                if synthetic and secs.get("synthetic") else "")
        lines.append(f"- {name}: {sum(v.get('items', 0) for k, v in data.items() if k != 'negatives')} "
                     f"items, {t.get('pairs', {}).get('train', {}).get('total', '?')} training pairs, "
                     f"{meta.get('kind', 'cross-encoder')}, held-out pair AUC {held.get('auc', float('nan')):.3f}"
                     + (f" ({within:.3f} within a question)" if within is not None else "")
                     + (f", answerability AUC {answers:.3f}" if answers is not None else "")
                     + (f" ({near:.3f} against near misses alone)" if near is not None else "") + ", "
                     f"training {secs.get('train', float('nan')):.0f} s{made}"
                     + (f", {t['scorer_bytes'] / 1e6:.1f} MB on disk" if t.get("scorer_bytes") else "")
                     + _ranking_line(meta))
    return [*lines, ""]


def _ranking_line(meta: dict[str, Any]) -> str:
    """The evidence ranking trained with the scorer: how it did on held-out questions against the rule."""
    ranking = meta.get("evidence_ranker") or {}
    if not ranking:
        return ""
    held = ranking.get("held_out") or {}
    learned, rule = (held.get(k, {}).get("first_answers") for k in ("learned", "rule"))
    versus = (f", answer first for {learned:.3f} of {ranking.get('held_out_questions')} held-out questions "
              f"against {rule:.3f} by the rule" if learned is not None and rule is not None else "")
    return (f"; evidence ranking {'used' if ranking.get('used') else 'not used'}{versus} "
            f"({ranking.get('seconds', float('nan')):.0f} s)")
