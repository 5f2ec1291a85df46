"""The error hierarchy shared by every layer.

Each error carries a stable machine ``code`` and an HTTP status so the API can turn it into
``{type, code, message}`` in one place, and the CLI can print the message and exit non-zero.
"""

from __future__ import annotations


class CitewiseError(Exception):
    """Base class: a failure the user can act on, with a message that says what and where."""

    code: str = "internal_error"
    http_status: int = 500
    headers: dict[str, str] = {}  # extra HTTP response headers (Retry-After, WWW-Authenticate)

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


class IndexWriteError(IndexStateError):
    """The index could not be written (disk full, file size limit, permissions).

    `partial` is true when part of what was asked took effect before the failure (earlier batches of an
    ingest, a removal whose search files could not be published); the message says which part.
    """

    code = "index_write_failed"

    def __init__(self, message: str, partial: bool = False) -> None:
        super().__init__(message)
        self.partial = partial


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


class RequestCancelled(CitewiseError):
    """The client went away: the work it asked for is stopped and its place in the queue freed."""

    code = "cancelled"
    http_status = 499


class QueueFullError(CitewiseError):
    """Every place in the generation queue is taken; the client should retry after a while."""

    code = "queue_full"
    http_status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class AuthenticationError(CitewiseError):
    """An API key is required and was missing or wrong."""

    code = "unauthorized"
    http_status = 401
    headers = {"WWW-Authenticate": "Bearer"}


class PayloadTooLargeError(CitewiseError):
    """A request body is over the configured limit; nothing of it was kept."""

    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaError(CitewiseError):
    """An upload's content is not a format citewise ingests, or does not match its name."""

    code = "unsupported_media_type"
    http_status = 415

