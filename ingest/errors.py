"""The error hierarchy shared by every layer.

Each error carries a stable machine ``code`` and an HTTP status so the API can turn it into
``{type, code, message}`` in one place, and the CLI can print the message and exit non-zero.
"""

from __future__ import annotations


class CitewiseError(Exception):
    """Base class: a failure the user can act on, with a message that says what and where."""

    code: str = "internal_error"
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CitewiseError):
    """Settings are invalid or point at something that does not exist."""

    code = "config_error"
    http_status = 400


class ModelUnavailableError(CitewiseError):
    """A model file is missing, incomplete or fails its checksum."""

    code = "model_unavailable"
    http_status = 503


class IndexStateError(CitewiseError):
    """The index directory cannot be used as asked (missing, corrupt, written by another setup)."""

    code = "index_error"
    http_status = 409


class EmbedderMismatchError(IndexStateError):
    """The index was built with another embedder: mixing vector spaces would return garbage."""

    code = "embedder_mismatch"


class IndexBusyError(IndexStateError):
    """Another process holds the index's write lock."""

    code = "index_busy"
    http_status = 423


class NotFoundError(CitewiseError):
    """A document, chunk or index that was asked for does not exist."""

    code = "not_found"
    http_status = 404


class DocumentError(CitewiseError):
    """One input file could not be read, parsed or chunked; the message names the file and why."""

    code = "bad_document"
    http_status = 422

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class InvalidRequestError(CitewiseError):
    """A request is well-formed JSON but asks for something that cannot be done."""

    code = "invalid_request"
    http_status = 400


class GenerationError(CitewiseError):
    """A language model call failed or ran out of room (context window, time budget)."""

    code = "generation_failed"
    http_status = 500
