"""The session notice (protocol.md §6.6): one line shown to everyone who
joins ("This chat is kept for 30 days and may be exported by your
facilitator"), set by a facilitator (``mod:notice``) or the platform (the
admin API), kept in meta's root map ``meta`` as ``notice`` (``""``: none)."""

from __future__ import annotations

from typing import Any

from crdt.errors import InvalidPayload
from crdt.schemas import META_ROOT
from crdt.text import bad_name_character
from rooms.audit import AuditAction
from rooms.identity import Identity
from rooms.moderation import Change, Outcome, payload_fields
from rooms.names import META
from rooms.room import Room

__all__ = [
    "MAX_NOTICE_CHARS",
    "NOTICE_FIELD",
    "notice_detail",
    "read_notice",
    "set_notice",
    "set_notice_by",
    "validate_notice",
]

#: The field of meta's ``meta`` map that holds the notice.
NOTICE_FIELD = "notice"
#: Longest notice, in characters (protocol.md §8.1).
MAX_NOTICE_CHARS = 500


def validate_notice(text: Any) -> str:
    """The notice to store: ``text`` without the white space at its ends
    (``""`` clears it); InvalidPayload if it is not a string, is longer than
    MAX_NOTICE_CHARS, or holds what a title may not (a control, bidi or
    zero-width character, a line break: crdt.text.bad_name_character)."""
    if not isinstance(text, str):
        raise InvalidPayload("text must be a string")
    if len(text) > MAX_NOTICE_CHARS:
        raise InvalidPayload(f"the notice has {len(text)} characters, limit {MAX_NOTICE_CHARS}")
    bad = bad_name_character(text)
    if bad is not None:
        raise InvalidPayload(f"the notice holds a control, bidi or invalid character (at {bad})")
    return text.strip()


def read_notice(meta: dict[str, Any]) -> str:
    """The notice in meta's ``meta`` map as an engine reads it (``""``: none)."""
    value = meta.get(NOTICE_FIELD, "")
    return value if isinstance(value, str) else ""


def notice_detail(text: str) -> str:
    """The audit detail of a notice change: its size, never its words."""
    return f"notice chars={len(text)}" if text else "notice cleared"


def set_notice(room: Room, text: Any) -> Change:
    """Set the room's notice (checked by :func:`validate_notice`)."""
    notice = validate_notice(text)
    doc = room.docs[META]
    update = doc.write(
        lambda engine: engine.set_map_fields(META_ROOT, {NOTICE_FIELD: notice}),
        adding=len(notice.encode()) + 32,
    )
    return Change(META, update)


def set_notice_by(room: Room, actor: Identity, payload: Any) -> Outcome:
    """``mod:notice {text}`` (the caller checked the actor is a facilitator)."""
    fields = payload_fields(payload, {"text": str})
    if "text" not in fields:
        raise InvalidPayload("field 'text' is required ('' clears the notice)")
    change = set_notice(room, fields["text"])
    notice = read_notice(room.docs[META].engine.read_map(META_ROOT))
    return Outcome(AuditAction.NOTICE, (change,), notice_detail(notice))
