"""The error hierarchy shared by every layer.

Each error carries a stable machine ``code``; the interfaces decide what it means to them (an HTTP
status and headers in `api/errors.py`, an exit code in the CLI). Nothing here knows about HTTP.
"""

from __future__ import annotations


class CitewiseError(Exception):
    """Base class: a failure the user can act on, with a message that says what and where."""

    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CitewiseError):
    """Settings are invalid or point at something that does not exist."""

    code = "config_error"


class ModelUnavailableError(CitewiseError):
    """A model file is missing, incomplete or fails its checksum."""

    code = "model_unavailable"


class ModelServerError(ModelUnavailableError):
    """A model server (the OpenAI-compatible backend) is unreachable, failing or refusing: the request may
    succeed later, so callers are told when to retry."""

    code = "model_server_unavailable"

    def __init__(self, message: str, retry_after_s: int = 10) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IndexStateError(CitewiseError):
    """The index directory cannot be used as asked (missing, corrupt, written by another setup)."""

    code = "index_error"


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


class ReadOnlyError(CitewiseError):
    """A write was sent to a read-only replica; writes go to the index's one writer."""

    code = "read_only"


class NotFoundError(CitewiseError):
    """A document, chunk or index that was asked for does not exist."""

    code = "not_found"


class DocumentError(CitewiseError):
    """One input file could not be read, parsed or chunked; the message names the file and why."""

    code = "bad_document"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class InvalidRequestError(CitewiseError):
    """A request is well-formed JSON but asks for something that cannot be done."""

    code = "invalid_request"


class GenerationError(CitewiseError):
    """A language model call failed or ran out of room (context window, time budget)."""

    code = "generation_failed"


class TrainingError(CitewiseError):
    """A training run ended without a model worth publishing; the previous one stays in use."""

    code = "training_failed"


class RequestCancelled(CitewiseError):
    """The client went away: the work it asked for is stopped and its place in the queue freed."""

    code = "cancelled"


class QueueFullError(CitewiseError):
    """Every place in the generation queue is taken; the client should retry after a while."""

    code = "queue_full"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AuthenticationError(CitewiseError):
    """An API key is required and was missing or wrong."""

    code = "unauthorized"


class PayloadTooLargeError(CitewiseError):
    """A request body is over the configured limit; nothing of it was kept."""

    code = "payload_too_large"


class UnsupportedMediaError(CitewiseError):
    """An upload's content is not a format citewise ingests, or does not match its name."""

    code = "unsupported_media_type"

