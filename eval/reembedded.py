"""`reembedded+NAME`: any retrieval system searched over the corpus as the run's own trained bi-encoder embeds it.

The product searches the vectors `citewise train` publishes with the index's scorer (search.dense_vectors); an
evaluation must never use the index's own scorer, which may have been trained on the very queries asked. So a
run encodes the corpus with each scorer it trains (per fold, or the synthetic one) into its own folder, reused
on --resume, and its `reembedded+` systems search those vectors (BM25, fusion and everything else unchanged),
while every other system searches the embedder's.
"""

from __future__ import annotations

from typing import Callable

from ingest.core.errors import ConfigError
from ingest.core.settings import SearchSettings
from retrieval.systems import RERANKERS

#: The eval-only first part of a system name: the rest is any retrieval system, built over the re-embedded corpus.
PREFIX = "reembedded+"


def check_reembedded(systems: list[str], train_folds: int | None, train: str | None) -> None:
    """Refuse, before any index is built, a re-embedded system without a scorer this run trains."""
    for name in systems:
        if name.startswith(PREFIX) and not train_folds and not train:
            raise ConfigError(f"{name}: a re-embedded system searches with a scorer this run trains: add "
                              "--train-folds K or --train synthetic")


#: What the `trained` stage reads in a run that trains its own scorers (`describe` says the index's own).
RUN_SCORER = "the scorer this run trained (each query's fold's, or the synthetic one), never the index's own"


def described(name: str, describe: Callable[[str], str], run_trained: bool = False) -> str:
    """A system's description (`describe` names the retrieval parts), saying when the corpus was re-embedded and,
    in a run that trains (`run_trained`), whose scorer the trained stage reads."""
    text = describe(name.removeprefix(PREFIX))
    if run_trained:
        text = text.replace(RERANKERS["trained"], RUN_SCORER)
    if name.startswith(PREFIX):
        return "corpus and queries embedded with the run's trained encoder (bi-encoder scorer); " + text
    return text


def searched_as(name: str, search: SearchSettings) -> tuple[str, SearchSettings]:
    """(retrieval system name, search settings): the dense part searches the trained vectors for a re-embedded
    system and the embedder's for every other, whatever the configured search.dense_vectors says."""
    reembedded = name.startswith(PREFIX)
    return name.removeprefix(PREFIX), search.model_copy(
        update={"dense_vectors": "trained" if reembedded else "embedder"})
