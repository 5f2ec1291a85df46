"""The base of every settings section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section: values are checked when set, not only when loaded, so an override from a
    command-line option or a request meets the same bounds as the file; unknown keys are errors, so a
    misspelt setting is reported instead of silently ignored."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")
