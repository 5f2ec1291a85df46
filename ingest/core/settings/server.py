"""`citewise serve`: where it listens, who may call it, and how much it accepts at once."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ingest.core.settings.base import Section


class ServerSettings(Section):
    """`citewise serve`: where it listens, who may call it, and how much it accepts at once."""

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
    read_only: bool = Field(
        default=False,
        description="A read replica: serves searches and reports from an index another process writes (the CLI, "
                    "a Ray ingest or one writable server) and follows what it publishes; uploads, removals and "
                    "job retries are refused (403), and no index is created.")
    workers: int = Field(
        default=1, ge=1, le=64,
        description="Server processes on one port, each with its own models (memory grows with each); more than "
                    "one needs read_only, as an index has one writer.")
