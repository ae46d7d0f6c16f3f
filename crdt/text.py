"""Text a client sends: what may be stored, and how to quote it in a log.

* Stored text (chat, display names) is checked before the engine sees it:
  a lone surrogate cannot be encoded as UTF-8 (pycrdt panics on it), and
  control characters have no place in a message or a name. Display names
  also refuse the bidirectional overrides and isolates, which can make a
  name read as someone else's.
* :func:`quote` is the one way a client-supplied string enters a log line
  or an audit record: JSON-quoted, so no input can start a new line, and
  cut to a length.
"""

from __future__ import annotations

import json
import re

__all__ = ["bad_name_character", "bad_text_character", "quote"]

# C0 controls but tab and newline, DEL, C1 controls; lone surrogates.
_BAD_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# For names, also tab and newline, the bidi embeddings/overrides/isolates and
# marks, zero-width and line/paragraph separators, and the BOM.
_BAD_NAME = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)


def bad_text_character(text: str) -> int | None:
    """The index of the first character chat text may not hold, or None."""
    match = _BAD_TEXT.search(text)
    return match.start() if match else None


def bad_name_character(text: str) -> int | None:
    """The index of the first character a display name may not hold, or None."""
    match = _BAD_NAME.search(text)
    return match.start() if match else None


def quote(value: object, *, limit: int = 80) -> str:
    """``value`` as a JSON string literal of at most ``limit`` characters of
    it: safe to put in one log line or audit field whatever it holds."""
    text = value if isinstance(value, str) else repr(value)
    cut = text[:limit]
    quoted = json.dumps(cut, ensure_ascii=True)
    return quoted if len(text) <= limit else quoted[:-1] + '..."'
