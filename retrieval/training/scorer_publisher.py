"""Turns a trained fp32 scorer into the ONNX model readers use (int8, or fp32 where int8 drifts), checks it, and
publishes it atomically.

Everything is written into a temporary folder inside INDEX/scorer/, synced, renamed into a new
generation folder, and only then does the pointer (current.json) switch, by os.replace. A crash or
an error at any point leaves the previous pointer, hence the previous model, in place; readers (read
replicas) see one whole model or the other. The previous generation is kept until the next publish,
so a reader still loading it when the pointer switches finds it intact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ingest.backends.onnx_int8_model import export_onnx, fuse_bert, quantize_int8
from ingest.core.errors import CitewiseError, IndexWriteError, ModelUnavailableError
from ingest.core.progress import NullProgress, Progress
from retrieval.trained_scorer import (FP32_MODEL_FILE, META_FILE, MODEL_FILE, POINTER, TOKENIZER_FILE,
                                      OnnxTrainedScorer, current_generation, scorer_root)
from retrieval.training.calibration import metrics

#: The int8 model's calibrated probabilities may differ from the fp32 model's by more than this on few held-out
#: pairs (`MAX_SHARE_MOVED`), and by a quarter of it on average: a broken export moves every score, quantization
#: noise moves a few pairs a little.
MAX_PROBABILITY_DIFF = 0.25
#: The share of held-out pairs that may move by more than `MAX_PROBABILITY_DIFF`: a confident classifier's steep
#: calibration turns the noise of the few pairs near its cut into large moves while the ranking keeps its AUC
#: (checked apart). Under a hundred pairs that allows none, so small checks bound every pair.
MAX_SHARE_MOVED = 0.01
#: The int8 model may rank held-out pairs at most this much worse (ROC AUC) than the model it came from.
MAX_AUC_LOSS = 0.01
#: Below this many held-out pairs an AUC moves by more than that from noise alone, so it is not checked.
AUC_CHECK_PAIRS = 200
_GENERATION = re.compile(r"gen-(\d+)$")
#: Given the checked int8 scorer and its generation folder (before the pointer switches), writes what is to be
#: published with it there (the trained encoder's corpus vectors) and returns its record for meta.json.
Extra = Callable[[OnnxTrainedScorer, Path], dict[str, Any]]


class ScorerPublisher:
    """Publishes one trained model as the next generation of an index's scorer."""

    def __init__(self, index_path: Path, progress: Progress | None = None,
                 max_difference: float = MAX_PROBABILITY_DIFF) -> None:
        self.index_path = Path(index_path)
        self.root = scorer_root(self.index_path)
        self.progress = progress or NullProgress()
        self.max_difference = max_difference

    def publish(self, model_dir: Path, pairs: list[tuple[str, str]], labels: np.ndarray,
                fp32_probabilities: np.ndarray, meta: dict[str, Any], vectors: Extra | None = None) -> Path:
        """Export, quantize, check against `fp32_probabilities` on `pairs`, publish; the new generation folder.

        `meta` must hold the calibration ("calibration"), "max_length" and what a reader needs to score the
        same way ("kind", "similarity_scale" for a bi-encoder); the int8 check's result, `vectors`' record
        (under "vectors"), the generation name and the time are added before it is written as meta.json.
        """
        previous = current_generation(self.index_path)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".publish-", dir=self.root))
            os.chmod(tmp, stat.S_IMODE(self.index_path.stat().st_mode))  # mkdtemp's 0700 would shut out replicas
        except OSError as exc:
            raise self._failure(exc) from exc
        try:
            self.progress.stage("publish", 4)
            self._build(Path(model_dir), tmp, meta.get("kind", "cross-encoder"))
            self.progress.advance("publish")
            served = self._served(tmp, pairs, labels, fp32_probabilities, meta)
            self.progress.advance("publish")
            extra = {"vectors": vectors(OnnxTrainedScorer(folder=tmp), tmp)} if vectors is not None else {}
            name = self._next_name()
            # "int8": the served model's check, whichever its precision (readers know the key from before fp32)
            full = {**meta, "held_out": {**meta.get("held_out", {}), "int8": served}, **extra, "generation": name,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            (tmp / META_FILE).write_text(json.dumps(full, indent=1, ensure_ascii=False))
            _fsync_tree(tmp)
            os.rename(tmp, self.root / name)
            _fsync_dir(self.root)
            self.progress.advance("publish")
            self._switch(name)
            self.progress.advance("publish")
        except CitewiseError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise self._failure(exc) from exc
        except Exception as exc:  # torch, onnx and onnxruntime raise their own types when a write fails
            shutil.rmtree(tmp, ignore_errors=True)
            raise IndexWriteError(f"could not build the trained scorer in {self.root} ({str(exc)[:200]}); "
                                  f"{self._kept(previous)}") from exc
        self._collect(keep={name, previous.name if previous else ""})
        self.progress.log(f"published the scorer {self.root / name}")
        return self.root / name

    def _build(self, model_dir: Path, out: Path, kind: str) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        fp32, fused = out / "fp32.onnx", out / "fused.onnx"
        export_onnx(model_dir, fp32, head="hidden" if kind == "bi-encoder" else "logits")
        fuse_bert(fp32, fused, config, remedy="the trained scorer cannot be published as int8 ONNX")
        fp32.unlink()
        quantize_int8(fused, out / MODEL_FILE)
        os.replace(fused, out / FP32_MODEL_FILE)  # kept until the int8 model is checked (see _served)
        shutil.copyfile(model_dir / "tokenizer.json", out / TOKENIZER_FILE)

    def _served(self, folder: Path, pairs: list[tuple[str, str]], labels: np.ndarray, want: np.ndarray,
                meta: dict[str, Any]) -> dict[str, Any]:
        """Check the int8 model and publish it; when it drifted, check and publish the fp32 ONNX model instead.

        A steep calibration (a confident classifier) turns quantization noise into large probability moves on a
        few pairs, so int8 can fail the check while the same model at full precision passes it: about four times
        the size on disk and slower to score, but the model that was trained and measured."""
        checked, drifted = self._check(folder, pairs, labels, want, meta)
        if drifted is None:
            (folder / FP32_MODEL_FILE).unlink()
            return {**checked, "precision": "int8"}
        why = f"the int8 scorer {drifted}"
        (folder / MODEL_FILE).unlink()
        self.progress.log(f"{why}; publishing the fp32 ONNX model instead")
        checked, drifted = self._check(folder, pairs, labels, want, meta)
        if drifted is not None:
            raise ModelUnavailableError(f"the fp32 ONNX scorer {drifted}; nothing was published and "
                                        f"{self._kept(current_generation(self.index_path))}")
        return {**checked, "precision": "fp32", "int8_refused": why}

    def _check(self, folder: Path, pairs: list[tuple[str, str]], labels: np.ndarray, want: np.ndarray,
               meta: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The served model's (int8, or fp32 ONNX) held-out figures, and how it drifted from the trained model's
        probabilities when that is beyond the bounds (None when within them)."""
        (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False))
        scorer = OnnxTrainedScorer(folder=folder)
        got = np.array([scorer.probabilities(q, [p])[0] for q, p in pairs], dtype=np.float64)
        diff = np.abs(got - np.asarray(want, dtype=np.float64))
        served, trained = metrics(got, labels), metrics(np.asarray(want, dtype=np.float64), labels)
        lost = (trained["auc"] or 0.0) - (served["auc"] or 0.0) if len(got) >= AUC_CHECK_PAIRS else 0.0
        worst, mean, moved = movement(diff, self.max_difference)
        checked = {**served, "max_difference_from_fp32": round(worst, 5), "mean_difference_from_fp32": round(mean, 5),
                   "pairs_moved": moved}
        return checked, drift(diff, lost, self.max_difference)

    def _next_name(self) -> str:
        numbers = [int(m.group(1)) for p in self.root.iterdir() if (m := _GENERATION.match(p.name))]
        return f"gen-{max(numbers, default=0) + 1:06d}"

    def _switch(self, name: str) -> None:
        tmp = self.root / f".{POINTER}.tmp"
        with open(tmp, "w") as fh:
            json.dump({"generation": name}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / POINTER)
        _fsync_dir(self.root)

    def _collect(self, keep: set[str]) -> None:
        """Generations older than the previous one, and folders left by interrupted publishes."""
        for entry in self.root.iterdir():
            if entry.is_dir() and entry.name not in keep and (_GENERATION.match(entry.name)
                                                               or entry.name.startswith(".publish-")):
                shutil.rmtree(entry, ignore_errors=True)

    def _failure(self, exc: OSError) -> IndexWriteError:
        where = exc.filename or self.root
        return IndexWriteError(f"could not write the trained scorer to {where} ({exc.strerror or exc}); "
                               f"{self._kept(current_generation(self.index_path))}")

    def _kept(self, previous: Path | None) -> str:
        if previous is None:
            return "the index has no trained scorer yet"
        return f"the previous scorer ({previous.name}) stays in use"


def movement(diff: np.ndarray, bound: float) -> tuple[float, float, int]:
    """The largest and mean probability move over held-out pairs, and how many pairs moved by more than `bound`."""
    if not len(diff):
        return 0.0, 0.0, 0
    return float(diff.max()), float(diff.mean()), int((diff > bound).sum())


def drift(diff: np.ndarray, auc_lost: float, bound: float = MAX_PROBABILITY_DIFF) -> str | None:
    """Why a served model's probabilities are too far from the trained model's (`diff` per held-out pair,
    `auc_lost` its held-out AUC below the trained one's), or None when within the bounds. A broken export moves
    every score; quantization noise moves a few pairs a little and keeps the order."""
    worst, mean, moved = movement(diff, bound)
    if moved <= MAX_SHARE_MOVED * len(diff) and mean <= bound / 4 and auc_lost <= MAX_AUC_LOSS:
        return None
    return (f"drifted from the trained model on {len(diff)} held-out pairs ({moved} moved by more than {bound} in "
            f"probability, at most {MAX_SHARE_MOVED:.0%} may; largest {worst:.3f}; mean {mean:.3f}, at most "
            f"{bound / 4:g}; held-out AUC {auc_lost:+.3f} lower, at most {MAX_AUC_LOSS})")


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
