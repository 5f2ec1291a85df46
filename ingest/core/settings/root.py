"""The one settings object: per-area sections composed, read from CITEWISE_* variables and citewise.toml.

Precedence, highest first: explicit arguments, environment (`CITEWISE_INGEST__CHUNK_TOKENS=180`),
the TOML file (`CITEWISE_CONFIG` or ./citewise.toml), defaults. Loaded once by an interface and passed
to what needs it; every section checks values on assignment.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from ingest.core.errors import ConfigError
from ingest.core.settings.index import IndexSettings
from ingest.core.settings.ingest import IngestSettings
from ingest.core.settings.models import ModelSettings
from ingest.core.settings.research import ResearchSettings
from ingest.core.settings.search import SearchSettings
from ingest.core.settings.server import ServerSettings
from ingest.core.settings.train import TrainSettings


class Settings(BaseSettings):
    """Everything citewise can be told, loaded once and passed to what needs it."""

    model_config = SettingsConfigDict(env_prefix="CITEWISE_", env_nested_delimiter="__", extra="forbid",
                                      validate_assignment=True)

    models: ModelSettings = Field(default_factory=ModelSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)


def config_file() -> Path | None:
    explicit = os.environ.get("CITEWISE_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"CITEWISE_CONFIG points at {path}, which is not a file")
        return path
    local = Path("citewise.toml")
    return local if local.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Load settings, turning validation errors into one readable ConfigError."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from exc
    except tomllib.TOMLDecodeError as exc:  # the message ends with "(at line L, column C)"
        raise ConfigError(f"{_shown(config_file())} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{_shown(config_file())} is not UTF-8 text (byte {exc.start}), so not TOML") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {exc.filename or _shown(config_file())}: {exc.strerror or exc}") from exc
    except SettingsError as exc:  # a CITEWISE_* variable that should hold JSON does not
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(f"invalid settings: {exc}{cause}") from exc


def _shown(path: Path | None) -> str:
    return str(path.resolve()) if path is not None else "the settings file"
