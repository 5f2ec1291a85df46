"""Keep every library off the network and quiet: the product runs with no model hub and no telemetry."""

from __future__ import annotations

import logging
import os

#: Set before `unstructured`, `transformers` or `huggingface_hub` are first imported.
OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "SCARF_NO_ANALYTICS": "true",
    "DO_NOT_TRACK": "true",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def apply_offline_env() -> None:
    """Force offline, no-analytics settings; the user cannot opt a library back into phoning home."""
    os.environ.update(OFFLINE_ENV)


def quiet_libraries(verbose: bool = False) -> None:
    """Only warnings reach the terminal, whatever the libraries set: citewise's own progress is shown
    by its commands, and a library's debug line or weight-loading bar between them is noise.

    Libraries set their loggers' levels themselves (bm25s sets DEBUG), and some configure the root
    logger when imported; the handler installed here filters by level, so their records stop at it.
    `verbose` lets their messages and progress bars through.
    """
    apply_offline_env()
    if verbose:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "0"
        os.environ["CITEWISE_VERBOSE"] = "1"  # parser processes read it: they start from the environment
    handler = logging.StreamHandler()
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
