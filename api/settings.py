"""The one settings object: per-area settings composed, read from CITEWISE_* variables and citewise.toml.

Precedence, highest first: explicit arguments, environment (`CITEWISE_INGEST__CHUNK_TOKENS=180`),
the TOML file (`CITEWISE_CONFIG` or ./citewise.toml), defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from generate.settings import ResearchSettings
from ingest.errors import ConfigError
from ingest.settings import IndexSettings, IngestSettings, ModelSettings
from retrieval.settings import SearchSettings


class ServerSettings(BaseModel):
    """`citewise serve`: where it listens, who may call it, and how much it accepts at once."""

    model_config = ConfigDict(validate_assignment=True)  # an override (a CLI option) is checked like a file

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65535)
    api_keys: list[SecretStr] = Field(
        default_factory=list, description="When set, every route but /healthz and /readyz needs "
        "`Authorization: Bearer KEY` (CITEWISE_SERVER__API_KEYS='[\"key1\", \"key2\"]').")
    queue_size: int = Field(default=8, ge=0, le=1000, description=(
        "Report requests that may wait while one is generated; more get 429 with Retry-After."))
    max_upload_mb: float = Field(default=50.0, gt=0, description="Largest upload request body (all files).")
    max_body_kb: int = Field(default=256, ge=1, description="Largest JSON body of any other request.")
    max_upload_files: int = Field(default=100, ge=1, description="Files in one upload request at most.")
    preload: bool = Field(default=True, description="Load models and open the index at start-up (see /readyz).")


class Settings(BaseSettings):
    """Everything citewise can be told, loaded once and passed to what needs it."""

    model_config = SettingsConfigDict(env_prefix="CITEWISE_", env_nested_delimiter="__", extra="forbid")

    models: ModelSettings = Field(default_factory=ModelSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

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
