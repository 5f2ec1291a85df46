"""Trains the index's scorer on its pairs, resumably and within a time budget, then hands the calibrated
model to the publisher.

No cross-encoder weights can be installed here, so the scorer starts from the shipped MiniLM encoder:
fine-tuned as a bi-encoder (the default) or given a fresh one-logit head as a cross-encoder
(`train.scorer`); either learns the corpus's own questions. A plain torch loop rather than
sentence-transformers' trainer (which needs `datasets`): it gives the time budget, checkpoints and
an exact resume point for free.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ingest.core.errors import InvalidRequestError, TrainingError
from ingest.core.model_resolver import ModelResolver
from ingest.core.progress import NullProgress, Progress
from ingest.core.settings import TrainSettings
from retrieval.training.calibration import Answerability, Platt, metrics
from retrieval.training.pairs import PairSet
from retrieval.training.scorer_publisher import Extra, ScorerPublisher
from retrieval.training.trainable_scorer import ScorerKind, TrainableScorer

BASE_MODEL = "all-MiniLM-L6-v2"
RUN_DIR = Path("training") / "run"
#: Steps of warm-up at most (a tenth of the run when it is shorter).
WARMUP_STEPS = 30
#: Every this many steps, where the budget ends is estimated again from the pace so far.
PACE_STEPS = 10


class ScorerTrainer:
    """`run(pairs)` trains (continuing an interrupted run on the same pairs), calibrates and publishes.

    Checkpoints live in INDEX/training/run/: a run stopped by its budget, killed or failed to publish
    continues from there; one that finished and published leaves nothing behind.
    """

    def __init__(self, index_path: Path, settings: TrainSettings, base_model: Path | None = None,
                 progress: Progress | None = None, threads: int = 0, checkpoint_every_s: float = 120.0) -> None:
        self.index_path = Path(index_path)
        self.settings = settings
        self.base_model = Path(base_model) if base_model else ModelResolver().embedder_path(BASE_MODEL)
        self.progress = progress or NullProgress()
        self.threads = threads or len(os.sched_getaffinity(0))
        self.checkpoint_every_s = checkpoint_every_s
        self.run_dir = self.index_path / RUN_DIR
        self.last_held_out: dict[str, Any] = {}

    def run(self, pairs: PairSet, extra_meta: dict[str, Any] | None = None, vectors: Extra | None = None) -> Path:
        """Train, calibrate on the held-out pairs, publish (with what `vectors` writes); the generation folder."""
        model, stats = self.train(pairs)
        check = [(p.question, p.passage) for p in pairs.held_out]
        labels = np.array([p.label for p in pairs.held_out])
        logits = model.logits(pairs.held_out)
        calibration = Platt.fit(logits, labels)
        fp32 = calibration.probabilities(logits)
        held = metrics(fp32, labels, [f"{p.level}\t{p.question}" for p in pairs.held_out])
        if calibration.a == 0:
            self.progress.log("the scorer did not learn to tell held-out answers from non-answers; it is published "
                              "with the base rate as every probability: give it more data or a larger budget")
        self.progress.log(f"held-out pairs: {held['pairs']}, AUC within a question {_fmt(held['question_auc'])}, "
                          f"pooled {_fmt(held['auc'])}, accuracy {_fmt(held['accuracy'])} (fp32, calibrated)")
        answerability = self._answerability(pairs, logits, calibration)
        if answerability is not None:
            held["answerability_auc"] = answerability.auc
            held["answerability_near_miss_auc"] = answerability.near_miss_auc
            held["answerability_missing_answer_auc"] = answerability.missing_answer_auc
            self.progress.log(f"answerability on {answerability.questions} held-out questions (best sentence "
                              f"with vs without the answer): AUC {_fmt(answerability.auc)}; against near misses "
                              f"alone {_fmt(answerability.near_miss_auc)}, against the answer taken away alone "
                              f"{_fmt(answerability.missing_answer_auc)}")
        self.last_held_out = held
        floor = self.settings.min_held_out_auc
        gate = held["question_auc"] if held["question_auc"] is not None else held["auc"]
        if gate is None or gate < floor:
            raise TrainingError(f"the trained scorer orders held-out questions' answers above their non-answers "
                                f"with AUC {_fmt(gate)} < {floor:g} (train.min_held_out_auc), so it is not published "
                                "and the previous scorer (if any) stays in use; give it more data (--synthetic, "
                                "--qrels) or more time (--budget): questions already written are kept")
        model_dir = self.run_dir / "model"
        meta = {"base_model": str(self.base_model), "data_hash": pairs.data_hash, "data": pairs.counts(),
                "training": stats, **model.meta(), "calibration": calibration.to_json(),
                "held_out": {"fp32": held}, **(extra_meta or {}),
                **({"answerability": answerability.to_json()} if answerability is not None else {})}
        folder = ScorerPublisher(self.index_path, self.progress).publish(model_dir, check, labels, fp32, meta, vectors)
        if stats["finished"]:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return folder

    @staticmethod
    def _answerability(pairs: PairSet, logits: np.ndarray, calibration: Platt) -> Answerability | None:
        """Fitted on the held-out sentence pairs (the level at which reports decide), from calibrated logits as
        readers see them; none when calibration found nothing to learn (every probability the same)."""
        if calibration.a == 0:
            return None
        at = [i for i, p in enumerate(pairs.held_out) if p.level == "sentence"]
        z = calibration.a * np.asarray(logits, dtype=np.float64)[at] + calibration.b
        return Answerability.fit(z, np.array([pairs.held_out[i].label for i in at]),
                                 [pairs.held_out[i].question for i in at])

    def train(self, pairs: PairSet) -> tuple[TrainableScorer, dict[str, Any]]:
        """The trained model (also saved to INDEX/training/run/model) and what the run did."""
        labels = {part: {p.label > 0.5 for p in rows} for part, rows in (("train", pairs.train),
                                                                         ("held_out", pairs.held_out))}
        if labels["train"] != {True, False} or labels["held_out"] != {True, False}:
            raise InvalidRequestError(
                f"too little training data for index {self.index_path}: {len(pairs.train)} training and "
                f"{len(pairs.held_out)} held-out pairs, and both need answering and non-answering passages; "
                "at least two answerable questions are needed (about a tenth are held out to calibrate the scorer)")
        import torch

        s = self.settings
        key = self._run_key(pairs)
        done = self._finished_run(key)
        if done is not None:
            return done
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            model = self._fresh_model()
            per_epoch = max(1, len(model.batches(pairs.train, 0)))
            total = per_epoch * s.epochs
            # The word-piece table is half the model's weights, and a corpus's questions cannot teach it much
            # in a CPU budget: frozen, each step's optimizer work halves.
            model.model.get_input_embeddings().weight.requires_grad_(False)
            for layer in _encoder_layers(model.model)[: s.frozen_layers]:
                layer.requires_grad_(False)
            trainable = [p for p in model.model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(trainable, lr=s.learning_rate, weight_decay=0.01, foreach=True)
            # The rate decays to zero where training will stop: at the last step, or where the budget ends
            # (estimated from the first steps' speed), so a budget-stopped model is annealed, not mid-warmup.
            warmup = max(1, min(total // 10, WARMUP_STEPS))
            plan = [total]
            schedule = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda k: min((k + 1) / warmup, max(0.0, (plan[0] - k) / max(1, plan[0] - warmup))))
            step, seconds_before = self._resume(key, model, optimizer, schedule)
            self.progress.stage("train", total)
            self.progress.advance("train", step)
            resumed_from = step
            started = last_save = time.monotonic()
            stopped_by_budget = False
            batches: dict[int, list[list[Any]]] = {}
            model.model.train()
            while step < total:
                # the budget's stop, checked before every step but the first: each run makes some progress
                if step > resumed_from and (time.monotonic() - started >= s.budget_s or step >= plan[0]):
                    stopped_by_budget = True
                    break
                epoch, at = divmod(step, per_epoch)
                if epoch not in batches:
                    batches = {epoch: model.batches(pairs.train, epoch)}
                loss = model.loss(pairs.train, batches[epoch][at])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                step += 1
                self.progress.advance("train")
                if (step - resumed_from) % PACE_STEPS == 0:  # batches differ in length: re-estimated as it goes
                    elapsed = time.monotonic() - started
                    pace = elapsed / (step - resumed_from)
                    plan[0] = min(total, step + max(1, int(max(0.0, s.budget_s - elapsed) / pace)))
                if time.monotonic() - last_save >= self.checkpoint_every_s and step < total:
                    self._checkpoint(key, model, optimizer, schedule, step,
                                     seconds_before + time.monotonic() - started)
                    last_save = time.monotonic()
            seconds = seconds_before + time.monotonic() - started
            model.model.eval()
            self._save_model(model)
            stats = {"steps": step, "total_steps": total, "planned_steps": plan[0], "resumed_from_step": resumed_from,
                     "epochs_done": round(step / per_epoch, 3), "seconds": round(seconds, 1),
                     "stopped_by_budget": stopped_by_budget, "finished": step >= total, "batch_size": s.batch_size,
                     "learning_rate": s.learning_rate, "threads": self.threads, "seed": s.seed}
            if stopped_by_budget:
                self._checkpoint(key, model, optimizer, schedule, step, seconds)
            else:  # the saved model is all a finished run needs; the optimizer state would triple its size
                _write_json(self.run_dir / "finished.json", {"key": key, "stats": stats})
                (self.run_dir / "checkpoint.pt").unlink(missing_ok=True)
        finally:
            torch.set_num_threads(before)
        if stopped_by_budget:
            self.progress.log(f"training stopped by its budget ({s.budget_s:g} s) after {step} of {total} steps; "
                              "run it again to continue from there")
        return model, stats

    def _finished_run(self, key: str) -> tuple[TrainableScorer, dict[str, Any]] | None:
        """A run on these pairs that finished but was not published (its publish failed): reuse its model."""
        try:
            done = json.loads((self.run_dir / "finished.json").read_text())
        except (OSError, ValueError):
            return None
        if done.get("key") != key or not (self.run_dir / "model" / "config.json").is_file():
            return None
        self.progress.log("reusing the finished training run's model (it was not published yet)")
        model = trainable_scorer(self.settings.scorer, self.run_dir / "model", self.settings, fresh=False)
        model.model.eval()
        return model, {**done["stats"], "resumed_from_step": done["stats"]["steps"]}

    def _fresh_model(self) -> TrainableScorer:
        import torch

        random.seed(self.settings.seed)
        np.random.seed(self.settings.seed)
        torch.manual_seed(self.settings.seed)  # a fresh head's initial weights, and dropout
        return trainable_scorer(self.settings.scorer, self.base_model, self.settings, fresh=True)

    def _run_key(self, pairs: PairSet) -> str:
        """Everything a checkpoint's steps depend on: another key starts the run afresh."""
        s = self.settings
        parts = [pairs.data_hash, str(self.base_model), s.learning_rate, s.batch_size, s.epochs, s.max_length, s.seed,
                 s.frozen_layers, s.scorer]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()

    def _resume(self, key: str, model: Any, optimizer: Any, schedule: Any) -> tuple[int, float]:
        """(step, training seconds so far) from the run's checkpoint when it was made for `key`, else (0, 0)."""
        import torch

        path = self.run_dir / "checkpoint.pt"
        if not path.is_file():
            return 0, 0.0
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a checkpoint cut short by a kill: start again rather than trust it
            self.progress.log(f"ignoring the unreadable checkpoint {path} ({str(exc)[:80]}); training from the start")
            return 0, 0.0
        if state.get("key") != key:
            self.progress.log("the training data or settings changed since the last run: training from the start")
            return 0, 0.0
        model.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        self.progress.log(f"continuing the interrupted training run from step {state['step']}")
        return int(state["step"]), float(state["seconds"])

    def _checkpoint(self, key: str, model: Any, optimizer: Any, schedule: Any, step: int, seconds: float) -> None:
        """Written beside and renamed into place, so a kill mid-write leaves the previous checkpoint."""
        import torch

        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / "checkpoint.pt.tmp"
        torch.save({"key": key, "step": step, "seconds": seconds, "model": model.model.state_dict(),
                    "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                    "rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, self.run_dir / "checkpoint.pt")

    def _save_model(self, model: TrainableScorer) -> None:
        target = self.run_dir / "model"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        (self.run_dir / "finished.json").unlink(missing_ok=True)
        model.save(target)


def trainable_scorer(kind: ScorerKind, source: Path, settings: TrainSettings, fresh: bool) -> TrainableScorer:
    """The model of `kind` from `source`: the shipped base weights (`fresh`) or a saved training run."""
    if kind == "bi-encoder":
        from retrieval.training.bi_encoder_scorer import BiEncoderScorer

        return BiEncoderScorer(source, settings)
    from retrieval.training.cross_encoder_scorer import CrossEncoderScorer

    return CrossEncoderScorer(source, settings, fresh)


def _encoder_layers(model: Any) -> list[Any]:
    """The transformer blocks, lowest first, of a BERT-family encoder or sequence classifier."""
    base = getattr(model, model.base_model_prefix, model)
    return list(base.encoder.layer)


def _write_json(path: Path, row: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(row, indent=1))
    os.replace(tmp, path)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
