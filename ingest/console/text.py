"""Text from documents and users, made safe to print on a terminal.

Rich reads `[...]` in a plain string as markup and `:name:` as an emoji code, so a title with `[/]` crashed
`docs list` and a chunk with `l[i]` lost characters. Everything that did not come from citewise itself is
printed through these helpers as a rich `Text`, which rich never parses; citewise's own labels keep their style.
"""

from __future__ import annotations

import re

from rich.text import Text

#: C0 controls but newline and tab, DEL, and the C1 controls (0x9b alone starts an escape sequence on some terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with control characters shown as `\\xNN`: an escape sequence in a file name or a chunk cannot
    recolour, move or clear the terminal, and the reader still sees that it is there."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def line(*parts: str | tuple[str, str]) -> Text:
    """One printable line from plain parts; a `(text, style)` part is styled (citewise's own labels)."""
    out = Text()
    for part in parts:
        if isinstance(part, tuple):
            out.append(visible(part[0]), style=part[1])
        else:
            out.append(visible(part))
    return out


def dim(text: str) -> Text:
    """A progress or status line in the dim style, its text taken literally."""
    return line((text, "dim"))
