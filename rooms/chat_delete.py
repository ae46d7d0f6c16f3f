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
from rooms.moderation import Change, Outcome, messages_of, payload_fields
from rooms.names import CHAT, is_private
from rooms.private_line import check_private_join
from rooms.room import Room

__all__ = ["CHAT_DELETE", "delete_own_message"]

CHAT_DELETE = "chat:delete"

_MESSAGE_ID = re.compile(r"[0-9a-f]{1,64}")


def delete_own_message(
    room: Room, actor: Identity, payload: Any, *, now_ms: float, window_s: float
) -> Outcome:
    """``chat:delete {messageId, doc?}`` from ``actor`` (the document
    loaded: the room's chat, or a private thread ``actor`` may read).

    Raises InvalidPayload (a bad payload), NotFound (no such message),
    PermissionDenied (an observer, or another user's message: a facilitator
    removes others' with ``mod:redact``), DeleteWindowExpired (sent more
    than ``window_s`` ago, or ``window_s`` is 0). A message already deleted
    or redacted is no error: nothing is written (a retry after a lost ack).
    Allowed after ``mod:end`` and while muted: it removes, it adds nothing.
    """
    message_id = payload_fields(payload, {"messageId": str, "doc": str}).get("messageId")
    if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
        raise InvalidPayload("messageId must be a message id")
    if room.policy.role_of(actor) is Role.OBSERVER:
        raise PermissionDenied("observers are read-only")
    name = messages_of(payload)
    if is_private(name):
        check_private_join(room.policy, room.id, name, actor)
    doc = room.docs[name]
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
    chat_log = room.chat_log(name)
    if chat_log is not None:
        chat_log.redacted(message_id)
    detail = message_id if name == CHAT else f"{message_id} doc={name}"
    return Outcome(AuditAction.DELETE_MESSAGE, (Change(name, update),), detail, purge=name)
