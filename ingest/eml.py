"""E-mail attachments, sorted before `unstructured` sees them.

Left to itself, unstructured partitions every attachment by sniffing it: an image sends it looking for
an OCR model on the hub, and whatever it skips is only logged. Here only formats citewise ingests are
kept, to be parsed like files of their own; every other attachment becomes a warning naming it.
"""

from __future__ import annotations

import copy
import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage, Message
from pathlib import PurePath
from typing import Iterator, cast

from ingest.formats import FORMATS

_TYPES = {
    "text/plain": "text", "text/markdown": "md", "text/x-rst": "rst", "text/html": "html",
    "application/pdf": "pdf", "message/rfc822": "eml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
}


@dataclass(frozen=True)
class Attachment:
    """One attachment: its bytes and format when citewise can parse it, else why it is passed over."""

    name: str
    fmt: str | None
    data: bytes
    skip_reason: str | None = None


def attachments(data: bytes) -> Iterator[Attachment]:
    """The attachments of the message in `data`, in order (not those of messages attached to it)."""
    msg = cast(EmailMessage, email.message_from_bytes(data, policy=email.policy.default))
    for part in msg.iter_attachments():
        ctype = part.get_content_type()
        name = part.get_filename() or _unnamed(part, ctype)
        suffix = PurePath(name).suffix.lower()
        media = ctype.split("/")[0] in ("image", "audio", "video")  # whatever the name says: OCR, not text
        fmt = None if media else FORMATS.get(suffix) or _TYPES.get(ctype)
        if fmt is None:
            yield Attachment(name, None, b"", f"{ctype} is not a format citewise ingests")
            continue
        try:
            payload = _payload(part)
        except (LookupError, ValueError, TypeError) as exc:  # unknown charset, damaged encoding
            yield Attachment(name, None, b"", f"its content cannot be decoded ({exc})")
            continue
        yield Attachment(name, fmt, payload)


def _unnamed(part: EmailMessage, ctype: str) -> str:
    """A name for an attachment that has none: an attached e-mail goes by its subject."""
    if ctype == "message/rfc822":
        try:
            subject = part.get_content().get("Subject")
        except (LookupError, ValueError, TypeError, AttributeError):
            subject = None
        if subject:
            return f"e-mail {str(subject)[:80]!r}"
    return f"unnamed {ctype} part"


def _payload(part: EmailMessage) -> bytes:
    ctype = part.get_content_type()
    if ctype.startswith("multipart/"):
        # a multipart attachment re-parses as a message once it no longer says it is an attachment
        whole = copy.deepcopy(part)
        del whole["Content-Disposition"]
        return whole.as_bytes()
    content = part.get_content()
    if isinstance(content, Message):  # message/rfc822: the enclosed e-mail
        return content.as_bytes()
    if isinstance(content, str):  # text parts arrive decoded with their declared charset
        return content.encode("utf-8")
    return bytes(content)
