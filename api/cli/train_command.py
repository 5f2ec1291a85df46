"""`citewise train`: write training data about an index's documents and train its own scorer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from api.cli.common import IndexOpt, cli_settings, engine, err, out
from ingest.console.text import line


def train(
    index: Optional[Path] = IndexOpt,
    qrels: Optional[Path] = typer.Option(
        None, "--qrels", help="Your labels: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv) or a "
                              "squad-wiki folder (docs/, questions.jsonl), alone or beside synthetic data."),
    split: str = typer.Option("train", "--split", help="Which qrels/SPLIT.tsv of a BEIR folder."),
    synthetic: Optional[int] = typer.Option(
        None, "--synthetic", help="Chunks the data-preparation model writes questions about; 0 for none "
                                  "(setting train.synthetic_chunks)."),
    budget: Optional[float] = typer.Option(None, "--budget", help="Seconds of training at most (setting "
                                                                  "train.budget_s)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Passes over the pairs at most (train.epochs)."),
    fresh: bool = typer.Option(False, "--fresh", help="Write the synthetic questions again instead of "
                                                      "continuing the stored set."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable summary."),
) -> None:
    """Train this index's scorer on questions about its own documents (and your labels, if given): it reranks (`search --system fused+trained`), and a trained bi-encoder's vectors of the corpus are searched by the dense first stage when they rank held-out questions better (train.reembed). A run continues an interrupted one; the previous scorer stays in use until a new one is checked and published."""
    from ingest.core.progress import NullProgress
    from retrieval.training.training_run import TrainingRun

    settings = cli_settings(index, {"train.synthetic_chunks": ("--synthetic", synthetic),
                                    "train.budget_s": ("--budget", budget), "train.epochs": ("--epochs", epochs)})
    if qrels is not None and not qrels.exists():
        from ingest.core.errors import ConfigError

        raise ConfigError(f"--qrels {qrels}: no such folder")
    app = engine(settings)
    try:
        with app.open_index() as idx:
            factory = app.pipeline_factory(idx)

            def run(progress: Any) -> Any:
                return TrainingRun(idx, factory, settings.train, settings.search,
                                   lambda: app.model(settings.train.data_model), progress,
                                   research=settings.research).run(
                    qrels, split, synthetic=settings.train.synthetic_chunks > 0, fresh=fresh)

            if quiet or as_json:
                result = run(NullProgress())
            else:
                from ingest.console.progress_bars import RichProgress

                with RichProgress(err) as progress:
                    result = run(progress)
    finally:
        app.close()
    data = result.to_dict()
    if as_json:
        out.print_json(json.dumps(data))
    else:
        _print_summary(data)


def _print_summary(data: dict[str, Any]) -> None:
    for name, d in data["data"].items():
        if name == "negatives":
            continue
        dropped = ", ".join(f"{n} {why}" for why, n in d.get("dropped", {}).items())
        err.print(line(f"{name}: {d['items']} items ({d['answerable']} answerable, {d['unanswerable']} not)"
                       + (f"; dropped {dropped}" if dropped else "")))
    train, held = data["pairs"]["train"], data["pairs"]["held_out"]
    err.print(line(f"pairs: {train['total']} to train on ({train['positive']} answering), {held['total']} held out "
                   "to calibrate and check"))
    check = data["held_out"]
    if check:
        within = check.get("question_auc")
        err.print(line((f"held out: AUC within a question {within:.3f}, pooled " if within is not None else
                        "held out: AUC ") + f"{check['auc']:.3f}, accuracy {check['accuracy']:.3f} on "
                       f"{check['pairs']} pairs"))
        if check.get("answerability_auc") is not None:
            apart = [f"{kind} {check[key]:.3f}" for kind, key in (
                ("near misses", "answerability_near_miss_auc"),
                ("answer taken away", "answerability_missing_answer_auc")) if check.get(key) is not None]
            err.print(line(f"answerability (does any passage answer?): AUC {check['answerability_auc']:.3f}"
                           + (f"; against {', '.join(apart)} alone" if apart else "")))
    vectors = data.get("vectors") or {}
    if vectors.get("why"):
        verdict = "searched by the dense first stage" if vectors.get("used") else "not used"
        err.print(line(f"trained encoder vectors of the corpus: {verdict} ({vectors['why']})"))
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in data["seconds"].items())
    size = f"{data['scorer_bytes'] / 1e6:.1f} MB; " if data.get("scorer_bytes") else ""
    err.print(line(f"scorer published: {data['scorer']} ({size}{secs})"))
