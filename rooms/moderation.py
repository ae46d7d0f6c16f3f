"""Facilitator controls (protocol.md §6.3): lock, mute, remove, redact, end.

Each action checks the actor's role, validates its payload, writes the
room's server-written documents (``meta`` for state, ``chat`` for
redaction) and returns what changed, for the caller to relay. Every client
sees the current state in the ``meta`` document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crdt.errors import InvalidPayload
from crdt.schemas import (
    BOARD_ROOT,
    CHAT_ROOT,
    META_MUTED_ROOT,
    META_REMOVED_ROOT,
    META_ROOT,
    Shape,
)
from crdt.text import bad_name_character, quote
from crdt.types import DocName, Update, UserId
from rooms.audit import AuditAction
from rooms.errors import NotFound
from rooms.identity import Identity, Role
from rooms.names import BOARD, CHAT, META, is_private, validate_doc_name
from rooms.policy import META_ROLES_ROOT, META_SHAPE_LOCKS_ROOT, OVERRIDABLE_ROLES, lock_key
from rooms.room import Room

__all__ = [
    "ACTIONS",
    "ACTIVITY_EVENTS",
    "CHECKIN_EVENT",
    "LOWER_HANDS_EVENT",
    "MODERATION_EVENTS",
    "NOTICE_EVENT",
    "RESTORE_EVENTS",
    "TEMPLATE_EVENT",
    "Change",
    "Outcome",
    "assign_role",
    "board_of",
    "change_role",
    "lock_shapes",
    "messages_of",
    "moderate",
    "parse_role",
    "payload_fields",
    "role_detail",
    "role_request",
    "set_title",
]

_USER_ID = re.compile(r"[A-Za-z0-9_.:@|+-]{1,128}")
_MESSAGE_ID = re.compile(r"[0-9a-f]{1,64}")
MAX_TITLE_CHARS = 200
MAX_SHAPE_ID_CHARS = 128
#: Shapes one ``mod:lock-shapes`` may name.
MAX_LOCK_SHAPES = 1000


@dataclass(frozen=True, slots=True)
class Change:
    """An update the server made to one of the room's documents."""

    doc: DocName
    update: Update


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a moderation action did."""

    action: AuditAction
    changes: tuple[Change, ...]
    #: For the audit log: the target (user id, message id) or the new value.
    detail: str
    #: A user whose connections to the room must close with ``removed``.
    expel: UserId | None = None
    #: A document from which content was redacted: its stored log must be
    #: compacted away and its in-memory recovery copy refreshed.
    purge: DocName | None = None
    #: Stored images the redacted content named: each goes unless another
    #: shape of the room's boards still names it (rooms.blobs.release_images).
    images: tuple[str, ...] = ()


def payload_fields(payload: Any, allowed: Mapping[str, type]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidPayload("moderation events take one JSON object")
    unknown = set(payload) - set(allowed)
    if unknown:
        raise InvalidPayload(f"unknown fields: {', '.join(sorted(unknown))}")
    for name, kind in allowed.items():
        if name in payload and not isinstance(payload[name], kind):
            raise InvalidPayload(f"field {name!r} must be {kind.__name__}")
    return payload


def _user(payload: dict[str, Any]) -> UserId:
    user = payload.get("userId")
    if not isinstance(user, str) or not _USER_ID.fullmatch(user):
        raise InvalidPayload("userId must be a user id")
    return UserId(user)


def _write_meta(room: Room, root: str, fields: Mapping[str, Any]) -> Change:
    doc = room.docs[META]
    update = doc.write(lambda engine: engine.set_map_fields(root, fields), adding=len(str(fields)))
    room.policy.load(doc.engine)
    return Change(META, update)


def lock(room: Room, actor: Identity, payload: Any) -> Outcome:
    locked = payload_fields(payload, {"locked": bool}).get("locked", True)
    change = _write_meta(room, META_ROOT, {"locked": locked})
    return Outcome(AuditAction.LOCK, (change,), f"locked={str(locked).lower()}")


def mute(room: Room, actor: Identity, payload: Any) -> Outcome:
    fields = payload_fields(payload, {"userId": str, "muted": bool})
    user = _user(fields)
    muted = fields.get("muted", True)
    change = _write_meta(room, META_MUTED_ROOT, {user: muted})
    return Outcome(AuditAction.MUTE, (change,), f"{user} muted={str(muted).lower()}")


def remove(room: Room, actor: Identity, payload: Any) -> Outcome:
    fields = payload_fields(payload, {"userId": str, "removed": bool})
    user = _user(fields)
    removed = fields.get("removed", True)
    if user == actor.user_id and removed:
        raise InvalidPayload("a facilitator cannot remove themselves")
    change = _write_meta(room, META_REMOVED_ROOT, {user: removed})
    return Outcome(
        AuditAction.REMOVE,
        (change,),
        f"{user} removed={str(removed).lower()}",
        expel=user if removed else None,
    )


def end(room: Room, actor: Identity, payload: Any) -> Outcome:
    payload_fields(payload if payload is not None else {}, {})
    change = _write_meta(room, META_ROOT, {"ended": True})
    return Outcome(AuditAction.END, (change,), "ended=true")


def redact(room: Room, actor: Identity, payload: Any) -> Outcome:
    """Remove a chat message's text from the document state (not only hide it):
    the old value is deleted and garbage-collected, so no client syncing later
    can recover it; the caller compacts the stored log so the disk forgets it too."""
    fields = payload_fields(payload, {"messageId": str, "doc": str})
    message_id = fields.get("messageId")
    if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
        raise InvalidPayload("messageId must be a message id")
    name = messages_of(payload)
    doc = room.docs[name]
    messages = doc.engine.read_array(CHAT_ROOT)
    index = next(
        (i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("id") == message_id),
        None,
    )
    if index is None:
        raise NotFound(f"no message {message_id} in this room")
    update = doc.write(
        lambda engine: engine.set_item_fields(CHAT_ROOT, index, {"text": "", "redacted": True})
    )
    chat_log = room.chat_log(name)
    if chat_log is not None:
        chat_log.redacted(message_id)
    detail = message_id if name == CHAT else f"{message_id} doc={name}"
    return Outcome(AuditAction.REDACT, (Change(name, update),), detail, purge=name)


def messages_of(payload: Any) -> DocName:
    """The message document a ``mod:redact`` names in ``doc``: ``chat`` (by
    default) or a private thread (rooms.private_line), else InvalidPayload."""
    name = payload.get("doc", CHAT) if isinstance(payload, dict) else CHAT
    if not isinstance(name, str):
        raise InvalidPayload("doc must be chat or a private thread")
    doc = validate_doc_name(name)
    if doc != CHAT and not is_private(doc):
        raise InvalidPayload("doc must be chat or a private thread")
    return doc


def _shape_ids(value: Any, limit: int) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= limit:
        raise InvalidPayload(f"shapeIds must be a list of 1-{limit} shape ids")
    for shape_id in value:
        if not isinstance(shape_id, str) or not 1 <= len(shape_id) <= MAX_SHAPE_ID_CHARS:
            raise InvalidPayload(f"each shape id must be 1-{MAX_SHAPE_ID_CHARS} characters")
    return list(dict.fromkeys(value))


def board_of(room: Room, fields: Mapping[str, Any]) -> DocName:
    """The board document a payload's ``doc`` names (``board`` by default)."""
    name = validate_doc_name(fields.get("doc", BOARD))
    doc = room.docs.get(name)
    if doc is None or doc.kind.server_written:
        raise InvalidPayload("doc must be a board of this room")
    return name


def lock_shapes(room: Room, actor: Identity, payload: Any) -> Outcome:
    """``mod:lock-shapes {shapeIds, locked, doc}``: participants can no
    longer move, edit or delete those shapes (the server refuses their
    updates that touch them: ``shape_locked``), or can again. Locking takes
    the shapes that are on the board (NotFound if none is); unlocking any
    id, also of a shape deleted since."""
    fields = payload_fields(payload, {"shapeIds": list, "locked": bool, "doc": str})
    shape_ids = _shape_ids(fields.get("shapeIds"), MAX_LOCK_SHAPES)
    locked = fields.get("locked", True)
    name = board_of(room, fields)
    if locked:
        present = room.docs[name].engine.read_map(BOARD_ROOT)
        shape_ids = [s for s in shape_ids if s in present]
        if not shape_ids:
            raise NotFound("none of these shapes is on this board")
    keys = [lock_key(name, s) for s in shape_ids]
    doc = room.docs[META]
    if locked:
        change = dict.fromkeys(keys, True)
        update = doc.write(
            lambda engine: engine.set_map_fields(META_SHAPE_LOCKS_ROOT, change),
            adding=sum(len(k) + 8 for k in keys),
        )
    else:
        update = doc.write(lambda engine: engine.delete_map_keys(META_SHAPE_LOCKS_ROOT, keys))
    room.policy.load(doc.engine)
    detail = f"{name} shapes={len(keys)} locked={str(locked).lower()}"
    return Outcome(AuditAction.LOCK, (Change(META, update),), detail)


def redact_shape(room: Room, actor: Identity, payload: Any) -> Outcome:
    """Remove a board shape and all it held from the document state: deleted
    and garbage-collected, so no client syncing later can recover it; the
    caller compacts the stored log so the disk forgets it too. ``doc`` names
    an extra board (``board:<name>``); the room's board by default."""
    fields = payload_fields(payload, {"shapeId": str, "doc": str})
    shape_id = fields.get("shapeId")
    if not isinstance(shape_id, str) or not 1 <= len(shape_id) <= MAX_SHAPE_ID_CHARS:
        raise InvalidPayload(f"shapeId must be 1-{MAX_SHAPE_ID_CHARS} characters")
    name = board_of(room, fields)
    doc = room.docs[name]
    shapes = doc.engine.read_map(BOARD_ROOT)
    if shape_id not in shapes:
        raise NotFound(f"no shape {quote(shape_id)} on this board")
    shape = Shape.from_json(shape_id, shapes[shape_id])
    images = (shape.src,) if shape is not None and shape.src is not None else ()
    update = doc.write(lambda engine: engine.delete_map_keys(BOARD_ROOT, [shape_id]))
    return Outcome(
        AuditAction.REDACT,
        (Change(name, update),),
        f"{name} shape {quote(shape_id)}",
        purge=name,
        images=images,
    )


def assign_role(room: Room, user: UserId, role: Role | None) -> Change:
    """Set ``user``'s role override in the room (None: back to their token's
    role). Only participant and observer (rooms.policy.OVERRIDABLE_ROLES):
    a facilitator comes from a signed token alone. InvalidPayload otherwise."""
    if role is not None and role not in OVERRIDABLE_ROLES:
        raise InvalidPayload("role must be participant, observer or null")
    return _write_meta(room, META_ROLES_ROOT, {user: role.value if role is not None else ""})


def parse_role(value: Any) -> Role | None:
    """A ``role`` field: ``"participant"``, ``"observer"`` or null; InvalidPayload otherwise."""
    if value is None:
        return None
    if value not in {r.value for r in OVERRIDABLE_ROLES}:
        raise InvalidPayload("role must be participant, observer or null")
    return Role(value)


def role_request(payload: Any) -> tuple[UserId, Role | None]:
    """``{userId, role}`` (``mod:role`` and the admin API) → the user and the
    role (None: back to the token's); InvalidPayload otherwise."""
    fields = payload_fields(payload, {"userId": str, "role": object})
    user = _user(fields)
    if "role" not in fields:
        raise InvalidPayload("field 'role' is required (participant, observer or null)")
    return user, parse_role(fields["role"])


def role_detail(user: UserId, role: Role | None) -> str:
    """The audit detail of a role change."""
    return f"{user} role={role.value if role is not None else 'token'}"


def change_role(room: Room, actor: Identity, payload: Any) -> Outcome:
    """``mod:role {userId, role}``: make a participant an observer, or back
    (``role: null`` returns to the token's role). No effect on facilitators'
    tokens; facilitator cannot be granted."""
    user, role = role_request(payload)
    change = assign_role(room, user, role)
    return Outcome(AuditAction.ROLE, (change,), role_detail(user, role))


ACTIONS: dict[str, Callable[[Room, Identity, Any], Outcome]] = {
    "mod:lock": lock,
    "mod:mute": mute,
    "mod:remove": remove,
    "mod:redact": redact,
    "mod:redact-shape": redact_shape,
    "mod:lock-shapes": lock_shapes,
    "mod:end": end,
    "mod:role": change_role,
}

#: ``mod:template`` (rooms.templates.place_template): the caller looks the
#: template up (it may be in the store) before the room changes.
TEMPLATE_EVENT = "mod:template"
#: Restore points (collab.restore_control): they read and write the store.
RESTORE_EVENTS = ("mod:restore-point", "mod:restore")
#: Session activities' moderation (rooms.hands, rooms.notices; protocol.md
#: §6.6): collab.room_control runs them.
LOWER_HANDS_EVENT = "mod:lower-hands"
NOTICE_EVENT = "mod:notice"
#: Check-ins (rooms.checkins; protocol.md §6.9).
CHECKIN_EVENT = "mod:checkin"
ACTIVITY_EVENTS = (LOWER_HANDS_EVENT, NOTICE_EVENT, CHECKIN_EVENT)
#: Every moderation event: ACTIONS', the template's, the restore points' and
#: the activities'.
MODERATION_EVENTS = (*ACTIONS, TEMPLATE_EVENT, *RESTORE_EVENTS, *ACTIVITY_EVENTS)


def moderate(event: str, room: Room, actor: Identity, payload: Any) -> Outcome:
    """Run the moderation ``event``; raise PermissionDenied for non-facilitators,
    InvalidPayload or NotFound for bad requests (nothing changes then)."""
    room.policy.check_moderate(actor)
    return ACTIONS[event](room, actor, payload)


def set_title(room: Room, title: str) -> Change:
    """Set the room's title (admin API)."""
    if not isinstance(title, str) or len(title) > MAX_TITLE_CHARS:
        raise InvalidPayload(f"title must be a string of at most {MAX_TITLE_CHARS} characters")
    if bad_name_character(title) is not None:
        raise InvalidPayload("title holds a control, bidi or invalid character")
    return _write_meta(room, META_ROOT, {"title": title})
