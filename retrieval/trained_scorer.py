"""The scorer `citewise train` made for one index, run as int8 ONNX beside the index (no torch on this path).

Layout inside an index folder:
    scorer/current.json        {"generation": "gen-000002"}: the model readers use, switched by os.replace
    scorer/gen-000002/         model-int8.onnx, tokenizer.json, meta.json (kind, calibration, max_length, metrics),
                               and for a bi-encoder maybe vectors.npz (the corpus it embeds: retrieval.trained_vectors)
A publish writes a new generation folder and then switches the pointer, so a reader sees either the old
model or the new one, never half of one; readers notice a switch by the pointer's stat at their next call.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ingest.core.errors import IndexBusyError, ModelUnavailableError
from ingest.core.exclusive_lock import ExclusiveLock
from ingest.core.index import Index
from ingest.core.progress import Progress
from retrieval.sentence_ranker import SentenceRanker
from retrieval.trained_vectors import TrainedVectors
from retrieval.training.calibration import Answerability, Platt

#: Held by one `citewise train` on an index (and by an ingest storing the trained vectors again).
TRAIN_LOCK = Path("training") / "train.lock"
SCORER_DIR = "scorer"
POINTER = "current.json"
MODEL_FILE = "model-int8.onnx"
#: What a generation holds instead when its int8 model drifted from the trained one (see ScorerPublisher).
FP32_MODEL_FILE = "model-fp32.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"


def scorer_root(index_path: Path) -> Path:
    return Path(index_path) / SCORER_DIR


def current_generation(index_path: Path) -> Path | None:
    """The generation folder the pointer names; None when the index has no trained scorer."""
    pointer = scorer_root(index_path) / POINTER
    try:
        name = json.loads(pointer.read_text())["generation"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailableError(f"the scorer pointer {pointer} is unreadable ({exc}); run `citewise train "
                                    f"--index {index_path}` to publish a new scorer") from exc
    folder = scorer_root(index_path) / str(name)
    if "/" in str(name) or model_file(folder) is None:
        raise ModelUnavailableError(f"the scorer pointer {pointer} names {name!r}, which holds no model; run "
                                    f"`citewise train --index {index_path}` to publish a new scorer")
    return folder


def model_file(folder: Path) -> Path | None:
    """The generation's ONNX model: int8, or fp32 where int8 could not keep the trained model's scores."""
    return next((folder / f for f in (MODEL_FILE, FP32_MODEL_FILE) if (folder / f).is_file()), None)


@dataclass
class _Generation:
    """One loaded model folder: session, tokenizer, calibration.

    A cross-encoder reads question and passage as one input and outputs the logit; a bi-encoder embeds
    each alone (mean-pooled, unit length) and its logit is their cosine times the scale it trained with.
    """

    folder: Path
    session: Any
    tokenizer: Any
    calibration: Platt
    meta: dict[str, Any]
    answerability: Answerability | None
    sentence_ranker: SentenceRanker | None
    corroboration: SentenceRanker | None = None
    corpus: TrainedVectors | None = None
    corpus_loaded: bool = False

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind", "cross-encoder"))  # scorers published before bi-encoders existed

    @classmethod
    def open(cls, folder: Path) -> _Generation:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            meta = json.loads((folder / META_FILE).read_text())
            calibration = Platt.from_json(meta["calibration"])
            answerability = Answerability.from_json(meta["answerability"]) if "answerability" in meta else None
            learned = meta.get("evidence_ranker") or {}
            # Published only as a record when it did not beat the hand-set ranking on held-out questions.
            sentence_ranker = SentenceRanker.from_json(learned) if learned.get("used") else None
            corroborating = learned.get("corroboration") or {}
            corroboration = SentenceRanker.from_json(corroborating) if corroborating.get("used") else None
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1  # one pair per run, pairs spread over the cores (see logits)
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            session = ort.InferenceSession(str(model_file(folder) or folder / MODEL_FILE), opts,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime and tokenizers raise their own unrelated types for bad files
            raise ModelUnavailableError(f"the trained scorer in {folder} is unreadable ({str(exc)[:160]}); run "
                                        "`citewise train` again to publish a new one") from exc
        tokenizer.enable_truncation(max_length=int(meta.get("max_length", 256)))
        tokenizer.no_padding()
        return cls(folder, session, tokenizer, calibration, meta, answerability, sentence_ranker, corroboration)

    def logit(self, question: str, passage: str) -> float:
        enc = self.tokenizer.encode(question, passage)
        ids = np.array([enc.ids], dtype=np.int64)
        out = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                      "token_type_ids": np.array([enc.type_ids], dtype=np.int64)})[0]
        return float(np.asarray(out).reshape(-1)[0])

    def vector(self, text: str) -> np.ndarray:
        enc = self.tokenizer.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                         "token_type_ids": np.zeros_like(ids)})[0]
        pooled = np.asarray(hidden, dtype=np.float32)[0].mean(axis=0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-9)


class OnnxTrainedScorer:
    """The `Scorer` of one index: loaded once on first use, thread-safe, following newly published models.

    Each pair runs alone: dynamic int8 quantization scales a run's activations by their range, so in a
    padded batch a pair's score would depend on its neighbours; alone it does not, and the pairs are
    spread over the cores instead (as the int8 embedder does).
    """

    name = "trained"

    def __init__(self, index_path: Path | None = None, folder: Path | None = None, threads: int = 0) -> None:
        if (index_path is None) == (folder is None):
            raise ValueError("give an index path (follows its pointer) or a generation folder, not both")
        self.index_path = Path(index_path) if index_path is not None else None
        self.folder = Path(folder) if folder is not None else None
        self.workers = threads or len(os.sched_getaffinity(0))
        self._lock = threading.Lock()
        self._generation: _Generation | None = None
        self._pointer_key: tuple[int, int, int] | None = None
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def find(cls, index_path: Path, threads: int = 0) -> OnnxTrainedScorer | None:
        """The index's scorer, or None when `citewise train` never published one for it."""
        if current_generation(index_path) is None:
            return None
        return cls(index_path=index_path, threads=threads)

    @property
    def meta(self) -> dict[str, Any]:
        """meta.json of the loaded generation: base model, data counts, calibration, held-out metrics."""
        return self._current().meta

    def warm_up(self) -> None:
        self._current()

    def probabilities(self, question: str, passages: list[str]) -> np.ndarray:
        generation = self._current()
        return generation.calibration.probabilities(self._logits(generation, question, passages))

    def answered(self, probabilities: list[float]) -> float:
        """From the answerability fitted on held-out questions; a scorer published before it existed (or whose
        held-out data could not fit it) says the best passage's own probability, as such scorers always did."""
        generation = self._current()
        if generation.answerability is None:
            return max(probabilities, default=0.0)
        return generation.answerability.probability(probabilities)

    def sentence_ranker(self) -> SentenceRanker | None:
        """The evidence ranking trained with this scorer, when it ranked held-out questions' sentences at least
        as well as the hand-set one (None otherwise, and for scorers published before it existed)."""
        return self._current().sentence_ranker

    def corroboration(self) -> SentenceRanker | None:
        """The corroboration model trained with this scorer, when what it added on held-out questions' passages
        was mostly evidence (None otherwise, and for scorers published before it existed)."""
        return self._current().corroboration

    def vectors(self, texts: list[str]) -> np.ndarray:
        """A bi-encoder scorer's unit vectors of `texts`: what searching a corpus re-embedded with it needs."""
        return self._vectors(self._current(), texts)

    def corpus_vectors(self) -> TrainedVectors | None:
        """The corpus vectors published with the current generation (loaded once per generation), or None."""
        generation = self._current()
        with self._lock:
            if not generation.corpus_loaded:
                generation.corpus = TrainedVectors.load(generation.folder,
                                                        lambda texts: self._vectors(generation, texts))
                generation.corpus_loaded = True
            return generation.corpus

    def store_corpus_vectors(self, index: Index, progress: Progress | None = None) -> dict[str, Any]:
        """Catch the published corpus vectors up with `index` and store them in their generation folder, so
        that readers start from there instead of each encoding the chunks added since; {} without vectors.

        Under the training lock: a running `citewise train` publishes a new generation (and its vectors)
        anyway, and must not have a folder it is replacing written to."""
        if self.index_path is None:
            return {}  # a bare generation folder (an evaluation's) is not kept up with an index
        try:
            with ExclusiveLock(self.index_path / TRAIN_LOCK, "busy"):
                generation = self._current()
                vectors = self.corpus_vectors()
                if vectors is None:
                    return {}
                removed, added = vectors.catch_up(index, progress)
                if removed or added:
                    vectors.save(generation.folder)
                return {"added": added, "removed": removed, "stored": bool(removed or added),
                        "generation": generation.folder.name}
        except IndexBusyError:
            return {"skipped": "a `citewise train` is running on this index; readers encode the new chunks "
                               "until it publishes"}

    def _vectors(self, generation: _Generation, texts: list[str]) -> np.ndarray:
        if generation.kind != "bi-encoder":
            raise ModelUnavailableError(f"the scorer in {generation.folder} is a {generation.kind}, which reads "
                                        "question and passage together and gives no vectors to search")
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(self._each(generation.vector, texts)).astype(np.float32)

    def logits(self, question: str, passages: list[str]) -> np.ndarray:
        """Raw model outputs before calibration (for checks against the fp32 model)."""
        return self._logits(self._current(), question, passages)

    def _logits(self, generation: _Generation, question: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        if generation.kind == "bi-encoder":
            asked = generation.vector(question)
            vectors = np.stack(self._each(generation.vector, passages))
            return (vectors @ asked * float(generation.meta["similarity_scale"])).astype(np.float32)
        return np.array(self._each(lambda p: generation.logit(question, p), passages), dtype=np.float32)

    def _each(self, fn: Callable[[str], Any], passages: list[str]) -> list[Any]:
        """`fn` of every passage, spread over the cores when there are several."""
        if len(passages) == 1 or self.workers == 1 or self._pool is None:
            return [fn(p) for p in passages]
        return list(self._pool.map(fn, passages))

    def _current(self) -> _Generation:
        """The loaded generation, reloaded when the pointer file changed since (a new publish)."""
        with self._lock:
            if self.folder is not None:
                if self._generation is None:
                    self._generation = _Generation.open(self.folder)
            else:
                assert self.index_path is not None
                key = self._pointer_stat()
                if self._generation is None or key != self._pointer_key:
                    folder = current_generation(self.index_path)
                    if folder is None:
                        raise ModelUnavailableError(
                            f"index {self.index_path} has no trained scorer: run `citewise train --index "
                            f"{self.index_path}` first")
                    if self._generation is None or folder != self._generation.folder:
                        self._generation = _Generation.open(folder)
                    self._pointer_key = key
            if self._pool is None and self.workers > 1:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="citewise-scorer")
            return self._generation

    def _pointer_stat(self) -> tuple[int, int, int] | None:
        assert self.index_path is not None
        try:
            st = (scorer_root(self.index_path) / POINTER).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)
