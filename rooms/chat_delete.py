"""An author deletes their own chat message (``chat:delete``, protocol.md
§6.6) within ``--chat-delete-window-s`` of sending it.

The text is removed from the document state as a redaction removes it
(rooms.moderation.redact): the old value is deleted and garbage-collected,
and the caller compacts the stored log (``Outcome.purge``), so neither a
client syncing later nor the disk holds it. The message stays in its place
with ``text: ""`` and ``deleted: true``.
"""

from __future__ import annotations

import re
from typing import Any

from crdt.errors import InvalidPayload
from crdt.schemas import CHAT_ROOT, ChatMessage
from rooms.audit import AuditAction
from rooms.errors import DeleteWindowExpired, NotFound, PermissionDenied
from rooms.identity import Identity, Role
from rooms.moderation import Change, Outcome, payload_fields
from rooms.names import CHAT
from rooms.room import Room

__all__ = ["CHAT_DELETE", "delete_own_message"]

CHAT_DELETE = "chat:delete"

_MESSAGE_ID = re.compile(r"[0-9a-f]{1,64}")


def delete_own_message(
    room: Room, actor: Identity, payload: Any, *, now_ms: float, window_s: float
) -> Outcome:
    """``chat:delete {messageId}`` from ``actor`` (the room's chat loaded).

    Raises InvalidPayload (a bad payload), NotFound (no such message),
    PermissionDenied (an observer, or another user's message: a facilitator
    removes others' with ``mod:redact``), DeleteWindowExpired (sent more
    than ``window_s`` ago, or ``window_s`` is 0). A message already deleted
    or redacted is no error: nothing is written (a retry after a lost ack).
    Allowed after ``mod:end`` and while muted: it removes, it adds nothing.
    """
    message_id = payload_fields(payload, {"messageId": str}).get("messageId")
    if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
        raise InvalidPayload("messageId must be a message id")
    if room.policy.role_of(actor) is Role.OBSERVER:
        raise PermissionDenied("observers are read-only")
    doc = room.docs[CHAT]
    found = next(
        (
            (i, m)
            for i, raw in enumerate(doc.engine.read_array(CHAT_ROOT))
            if (m := ChatMessage.from_json(raw)) is not None and m.id == message_id
        ),
        None,
    )
    if found is None:
        raise NotFound(f"no message {message_id} in this room")
    index, message = found
    if message.author_id != actor.user_id:
        raise PermissionDenied("only its author may delete a message")
    if message.deleted or message.redacted:
        return Outcome(AuditAction.DELETE_MESSAGE, (), f"{message_id} already")
    if window_s <= 0:
        raise DeleteWindowExpired("deleting one's own messages is off on this server")
    if now_ms - message.ts > window_s * 1000.0:
        raise DeleteWindowExpired(
            f"a message can be deleted within {window_s:g} s of sending it; ask a facilitator"
        )
    update = doc.write(
        lambda engine: engine.set_item_fields(CHAT_ROOT, index, {"text": "", "deleted": True})
    )
    if room.chat is not None:
        room.chat.redacted(message_id)
    return Outcome(AuditAction.DELETE_MESSAGE, (Change(CHAT, update),), message_id, purge=CHAT)
