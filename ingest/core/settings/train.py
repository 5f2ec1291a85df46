"""`citewise train`: what data it writes about the corpus and how long it may train the index's scorer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ingest.core.settings.base import Section


class TrainSettings(Section):
    """`citewise train`: what data it writes about the corpus and how long it may train the index's scorer."""

    # Synthetic data (the data-preparation model writes questions about sampled chunks).
    synthetic_chunks: int = Field(default=200, ge=0, le=100_000,
                                  description="Chunks the data-preparation model writes questions about.")
    questions_per_chunk: int = Field(default=2, ge=1, le=8,
                                     description="Answerable questions asked about each sampled chunk.")
    near_misses_per_chunk: int = Field(default=1, ge=0, le=8,
                                       description="Questions that look answerable from a chunk but are not.")
    hard_negatives: int = Field(default=4, ge=0, le=50,
                                description="Chunks the search ranks high for a question that are not its "
                                            "source, used as negatives.")
    seed: int = Field(default=13, description="Sampling and training seed, so a run can be repeated.")
    # The scorer.
    budget_s: float = Field(default=900.0, gt=0, le=86_400,
                            description="Training stops after this many seconds (the data is written first).")
    epochs: int = Field(default=5, ge=1, le=50, description="Passes over the training data at most: every "
                    "question once (bi-encoder) or every pair once (cross-encoder).")
    batch_size: int = Field(default=16, ge=1, le=512)
    learning_rate: float = Field(default=5e-5, gt=0, le=1)
    min_held_out_auc: float = Field(
        default=0.7, ge=0, le=1,
        description="A scorer is published only when it orders held-out questions' answering passages above "
                    "their non-answering ones at least this well (ROC AUC within each question and level, "
                    "averaged; 0.5 is chance): a weak model must not replace a good one.")
    data_model: Literal["fast", "writer"] = Field(
        default="fast", description="Which model writes the synthetic questions: the data-preparation (fast) "
                                    "model, or the writer (slower, maybe better questions).")
    scorer: Literal["bi-encoder", "cross-encoder"] = Field(
        default="bi-encoder",
        description="What is trained from the shipped MiniLM: 'bi-encoder' fine-tunes the embedder itself on the "
                    "questions (in-batch and mined negatives), starting from a model that already ranks well; "
                    "'cross-encoder' reads question and passage together through a fresh head, which needs far "
                    "more data and time than a CPU budget gives (docs/training.md has both measured).")
    reembed: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="After training a bi-encoder, encode every chunk with it and publish the vectors with the "
                    "scorer, for the dense first stage (search.dense_vectors): 'auto' when they rank the "
                    "held-out questions' source passages at least as well as the embedder's (the first stage "
                    "as configured, on enough questions to tell), 'always', or 'never'. Encoding costs about "
                    "as long as embedding the corpus did at ingest.")
    max_length: int = Field(default=128, ge=32, le=512,
                            description="Word pieces of question and passage the scorer reads together: a "
                                        "training step's cost grows with it, and a sentence pair fits well "
                                        "within the default (a chunk is read from its start).")
    frozen_layers: int = Field(default=0, ge=0, le=6,
                               description="Lowest encoder layers left as the base model has them: no "
                                           "gradients through them, so each step is cheaper on a CPU, but a "
                                           "bi-encoder then learns less in the same budget.")
