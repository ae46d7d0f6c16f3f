"""Document schemas: what collab's own clients write and read (protocol.md §5).

Three kinds of document live in a room:

``board``
    Root map ``shapes``: shape id → map of shape fields (:class:`Shape`).
    Client-written: any valid Yjs content is accepted (arbitrary Yjs apps
    work), and this schema is what collab's clients and exports read.
``chat``
    Root array ``messages`` of maps (:class:`ChatMessage`). Server-written.
``meta``
    Root map ``meta`` (title, locked, ended), root maps ``muted`` and
    ``removed`` (user id → true). Server-written.

Readers are lenient: a value that does not fit the schema is skipped, never
raised, because a board may hold any app's content.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from crdt.errors import InvalidChatMessage
from crdt.text import bad_text_character

__all__ = [
    "BOARD_ROOT",
    "CHAT_ROOT",
    "DEFAULT_FONT_SIZE",
    "META_MUTED_ROOT",
    "META_REMOVED_ROOT",
    "META_ROOT",
    "ChatMessage",
    "DocKind",
    "RoomMeta",
    "Shape",
    "ShapeType",
    "image_digests",
    "is_digest",
    "read_board",
    "read_chat",
    "read_meta",
    "validate_chat_text",
    "validate_client_message_id",
]

BOARD_ROOT = "shapes"
CHAT_ROOT = "messages"
META_ROOT = "meta"
META_MUTED_ROOT = "muted"
META_REMOVED_ROOT = "removed"

#: Text size of a sticky note or text shape without ``fontSize`` (protocol.md §5.1).
DEFAULT_FONT_SIZE = 16.0
#: A larger ``fontSize`` is read as the default (the web app writes 12 to 32).
_MAX_FONT_SIZE = 256.0

_CLIENT_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: An image's ``src``: the SHA-256 of the stored image, 64 lowercase hex digits.
_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_digest(value: Any) -> bool:
    """Whether ``value`` names a stored image (protocol.md §5.1 ``src``)."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


class DocKind(StrEnum):
    """Who writes a document: clients over ``sync-update``, or only the server."""

    BOARD = "board"
    CHAT = "chat"
    META = "meta"
    #: A participant's private line to the facilitators (``private:<key>``):
    #: the chat document's schema, server-written (rooms.private_line).
    PRIVATE = "private"

    @property
    def server_written(self) -> bool:
        return self is not DocKind.BOARD


class ShapeType(StrEnum):
    PEN = "pen"
    LINE = "line"
    ARROW = "arrow"
    RECT = "rect"
    ELLIPSE = "ellipse"
    STICKY = "sticky"
    TEXT = "text"
    IMAGE = "image"


@dataclass(frozen=True, slots=True)
class Shape:
    """One board shape. Coordinates are board units; ``points`` are absolute.

    ``text`` is read from a string or, as the web app writes it, a ``Y.Text``
    nested in the shape's map (an engine reads it as its string).
    """

    id: str
    type: ShapeType
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    points: tuple[tuple[float, float], ...] = ()
    color: str = "#1e1e1e"
    fill: str | None = None
    width: float = 2.0
    text: str = ""
    author: str | None = None
    z: float = 0.0
    #: Text size of sticky notes and text shapes (``fontSize``).
    font_size: float = DEFAULT_FONT_SIZE
    #: An image's stored image: its digest (:func:`is_digest`); None for other types.
    src: str | None = None

    @classmethod
    def from_json(cls, shape_id: str, value: Any) -> Shape | None:
        """The shape for a stored value, or None if it does not fit the schema."""
        if not isinstance(value, dict):
            return None
        try:
            kind = ShapeType(str(value.get("type")))
        except ValueError:
            return None
        numbers = {}
        for name, default in _NUMBER_DEFAULTS.items():
            raw = value.get(name, default)
            if not _finite(raw):
                return None
            numbers[name] = float(raw)
        points = _points(value.get("points", ()))
        if points is None:
            return None
        font_size = value.get("fontSize", DEFAULT_FONT_SIZE)
        if not _finite(font_size) or not 0 < font_size <= _MAX_FONT_SIZE:
            font_size = DEFAULT_FONT_SIZE
        color = value.get("color", "#1e1e1e")
        fill = value.get("fill")
        text = value.get("text", "")
        author = value.get("author")
        if not isinstance(color, str) or not isinstance(text, str):
            return None
        src = value.get("src")
        if kind is ShapeType.IMAGE and not is_digest(src):
            return None  # an image that names no stored image (a URL, a path) is skipped
        return cls(
            id=shape_id,
            type=kind,
            points=points,
            color=color,
            fill=fill if isinstance(fill, str) else None,
            text=text,
            author=author if isinstance(author, str) else None,
            font_size=float(font_size),
            src=src if kind is ShapeType.IMAGE else None,
            **numbers,
        )


_NUMBER_DEFAULTS = {"x": 0.0, "y": 0.0, "w": 0.0, "h": 0.0, "width": 2.0, "z": 0.0}


def _finite(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _points(raw: Any) -> tuple[tuple[float, float], ...] | None:
    """Points as ``[[x, y], ...]`` or a flat ``[x, y, x, y, ...]`` list."""
    if not isinstance(raw, list | tuple):
        return None
    if raw and all(isinstance(p, list | tuple) for p in raw):
        pairs = raw
    else:
        if len(raw) % 2:
            return None
        pairs = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    out = []
    for pair in pairs:
        if len(pair) < 2 or not _finite(pair[0]) or not _finite(pair[1]):
            return None
        out.append((float(pair[0]), float(pair[1])))
    return tuple(out)


def read_board(shapes: dict[str, Any]) -> list[Shape]:
    """Shapes of a board's ``shapes`` root that fit the schema, in z order."""
    out = [s for sid, v in shapes.items() if (s := Shape.from_json(sid, v)) is not None]
    out.sort(key=lambda s: (s.z, s.id))
    return out


def image_digests(shapes: dict[str, Any]) -> set[str]:
    """The digests a board's ``shapes`` root references: the ``src`` of every
    image shape that fits the schema (what a stored image is kept for)."""
    return {s.src for s in read_board(shapes) if s.src is not None}


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One chat message as the server stored it."""

    id: str
    author_id: str
    author_name: str
    role: str
    text: str
    ts: float  # server time, milliseconds since the Unix epoch
    redacted: bool = False
    client_message_id: str | None = None
    #: Its author deleted it (``chat:delete``): its text is gone, as a redaction's.
    deleted: bool = False

    def to_fields(self) -> dict[str, Any]:
        """The map fields stored in the chat document (protocol.md §5.2)."""
        fields: dict[str, Any] = {
            "id": self.id,
            "authorId": self.author_id,
            "authorName": self.author_name,
            "role": self.role,
            "text": self.text,
            "ts": self.ts,
            "redacted": self.redacted,
        }
        if self.client_message_id is not None:
            fields["clientMessageId"] = self.client_message_id
        if self.deleted:
            fields["deleted"] = True
        return fields

    @classmethod
    def from_json(cls, value: Any) -> ChatMessage | None:
        if not isinstance(value, dict):
            return None
        try:
            cmid = value.get("clientMessageId")
            return cls(
                id=str(value["id"]),
                author_id=str(value["authorId"]),
                author_name=str(value.get("authorName", "")),
                role=str(value.get("role", "")),
                text=str(value.get("text", "")),
                ts=float(value.get("ts", 0)),
                redacted=bool(value.get("redacted", False)),
                client_message_id=None if cmid is None else str(cmid),
                deleted=value.get("deleted") is True,
            )
        except (KeyError, TypeError, ValueError):
            return None


def read_chat(messages: list[Any]) -> list[ChatMessage]:
    """Messages of a chat document's ``messages`` root, in document order."""
    return [m for v in messages if (m := ChatMessage.from_json(v)) is not None]


def validate_chat_text(text: Any, *, max_chars: int) -> str:
    """The text to store, or InvalidChatMessage (wrong type, empty, too long,
    a control character other than tab and newline, a lone surrogate)."""
    if not isinstance(text, str):
        raise InvalidChatMessage("text must be a string")
    stripped = text.strip()
    if not stripped:
        raise InvalidChatMessage("text is empty")
    if len(text) > max_chars:
        raise InvalidChatMessage(f"text has {len(text)} characters, limit {max_chars}")
    bad = bad_text_character(text)
    if bad is not None:
        raise InvalidChatMessage(
            f"text holds a control character or a lone surrogate (at index {bad})"
        )
    return text


def validate_client_message_id(value: Any) -> str:
    """The client message id (1–64 of ``[A-Za-z0-9_-]``), or InvalidChatMessage."""
    if not isinstance(value, str) or not _CLIENT_MESSAGE_ID.fullmatch(value):
        raise InvalidChatMessage("clientMessageId must be 1-64 characters of [A-Za-z0-9_-]")
    return value


@dataclass(frozen=True, slots=True)
class RoomMeta:
    """A room's settings as the ``meta`` document holds them."""

    title: str = ""
    locked: bool = False
    ended: bool = False
    muted: frozenset[str] = field(default_factory=frozenset)
    removed: frozenset[str] = field(default_factory=frozenset)

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "locked": self.locked,
            "ended": self.ended,
            "muted": sorted(self.muted),
            "removed": sorted(self.removed),
        }


def read_meta(
    meta: dict[str, Any], muted: dict[str, Any], removed: dict[str, Any] | None = None
) -> RoomMeta:
    title = meta.get("title", "")
    return RoomMeta(
        title=title if isinstance(title, str) else "",
        locked=meta.get("locked") is True,
        ended=meta.get("ended") is True,
        muted=frozenset(uid for uid, on in muted.items() if on is True),
        removed=frozenset(uid for uid, on in (removed or {}).items() if on is True),
    )
