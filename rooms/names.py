"""Room and document names, and the namespaces that carry them (protocol.md §2).

A namespace is ``/yjs|<room>`` (the room's board) or ``/yjs|<room>/<doc>``:

* ``<room>``: 1–128 characters, one or more ``/``-separated segments of
  ``[A-Za-z0-9_.~-]`` (so ``clinic-7/group-a`` is a room). A segment may not
  be ``.``, ``..``, ``chat`` or ``meta``.
* ``<doc>``: ``chat``, ``meta``, or ``board:<name>`` for an extra board or
  page, ``<name>`` being 1–64 characters of ``[A-Za-z0-9_.~-]``, or
  ``private:<key>`` for a participant's private line to the facilitators,
  ``<key>`` being 32 lowercase hex digits (rooms.private_line: a hash of the
  room and the participant's user id, never the id itself).

The last segment names a document exactly when it is ``chat``, ``meta`` or
starts with ``board:`` or ``private:``; every other name is a room's board, which has the one
namespace ``/yjs|<room>`` (``/yjs|<room>/board`` would be the board of room
``<room>/board``).
"""

from __future__ import annotations

import re

from crdt.schemas import DocKind
from crdt.types import DocName, RoomId
from rooms.errors import InvalidName

__all__ = [
    "BOARD",
    "CHAT",
    "MAX_ROOM_CHARS",
    "META",
    "NAMESPACE_PREFIX",
    "PRIVATE_PREFIX",
    "TEMPLATES_ROOM",
    "doc_kind",
    "is_private",
    "namespace_for",
    "parse_namespace",
    "validate_room_id",
]

NAMESPACE_PREFIX = "/yjs|"
MAX_ROOM_CHARS = 128
MAX_BOARD_NAME_CHARS = 64

BOARD = DocName("board")
CHAT = DocName("chat")
META = DocName("meta")

_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]+")
_BOARD_NAME = re.compile(rf"board:[A-Za-z0-9_.~-]{{1,{MAX_BOARD_NAME_CHARS}}}")
#: A private thread's document: ``private:`` and its key (rooms.private_line).
PRIVATE_PREFIX = "private:"
PRIVATE_KEY_CHARS = 32
_PRIVATE_NAME = re.compile(rf"private:[0-9a-f]{{{PRIVATE_KEY_CHARS}}}")
#: Where a platform's board templates are kept as blobs (collab.templates):
#: no room may be called so.
TEMPLATES_ROOM = RoomId("~templates")
_RESERVED_SEGMENTS = frozenset({".", "..", "chat", "meta", TEMPLATES_ROOM})


def validate_room_id(room: str) -> RoomId:
    """``room`` as a RoomId, or InvalidName saying which rule it breaks."""
    if not isinstance(room, str) or not 1 <= len(room) <= MAX_ROOM_CHARS:
        raise InvalidName(f"room id must be 1-{MAX_ROOM_CHARS} characters")
    for segment in room.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidName("room id segments must be non-empty [A-Za-z0-9_.~-]")
        if segment in _RESERVED_SEGMENTS:
            raise InvalidName(f"room id segment {segment!r} is reserved")
    return RoomId(room)


def _is_doc_segment(segment: str) -> bool:
    return segment in (CHAT, META) or segment.startswith(("board:", PRIVATE_PREFIX))


def validate_doc_name(doc: str) -> DocName:
    if doc in (BOARD, CHAT, META) or _BOARD_NAME.fullmatch(doc) or _PRIVATE_NAME.fullmatch(doc):
        return DocName(doc)
    raise InvalidName("document must be chat, meta, board:<name> or private:<key>")


def is_private(doc: str) -> bool:
    """Whether ``doc`` (a validated name) is a private thread's document."""
    return doc.startswith(PRIVATE_PREFIX)


def parse_namespace(namespace: str) -> tuple[RoomId, DocName]:
    """Split a Socket.IO namespace into (room, document), or raise InvalidName."""
    if not namespace.startswith(NAMESPACE_PREFIX):
        raise InvalidName(f"namespace must start with {NAMESPACE_PREFIX!r}")
    path = namespace[len(NAMESPACE_PREFIX) :]
    room, sep, last = path.rpartition("/")
    if sep and _is_doc_segment(last):
        return validate_room_id(room), validate_doc_name(last)
    return validate_room_id(path), BOARD


def namespace_for(room: RoomId, doc: DocName) -> str:
    """The namespace of a document (the inverse of :func:`parse_namespace`)."""
    if doc == BOARD:
        return f"{NAMESPACE_PREFIX}{room}"
    return f"{NAMESPACE_PREFIX}{room}/{doc}"


def doc_kind(doc: DocName) -> DocKind:
    """Who writes ``doc``: chat, meta and private threads are server-written,
    boards client-written."""
    if doc == CHAT:
        return DocKind.CHAT
    if doc.startswith(PRIVATE_PREFIX):
        return DocKind.PRIVATE
    if doc == META:
        return DocKind.META
    return DocKind.BOARD
