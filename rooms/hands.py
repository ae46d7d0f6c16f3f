"""Raised hands (protocol.md §6.6): who is waiting to speak, in the order
they raised their hand.

The queue lives in the room's server-written ``meta`` document, root map
``hands``: user id → the server time (milliseconds since the Unix epoch) the
hand went up; lowering deletes the key. So everyone sees the same queue,
and it survives a reconnect, a restart and a move between nodes like the
rest of meta. A participant (or a facilitator) raises and lowers their own
hand (``hand:raise``); a facilitator lowers one hand or all of them
(``mod:lower-hands``); removing a user lowers theirs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crdt.errors import InvalidPayload
from crdt.types import Update, UserId
from rooms.audit import AuditAction
from rooms.identity import Identity
from rooms.moderation import Change, Outcome, payload_fields
from rooms.names import META
from rooms.room import Room

__all__ = [
    "HAND_EVENT",
    "META_HANDS_ROOT",
    "HandChange",
    "RaisedHand",
    "lower_hand_of",
    "lower_hands",
    "raise_hand",
    "read_hands",
]

#: The event a user raises or lowers their own hand with.
HAND_EVENT = "hand:raise"
#: The meta root of raised hands: user id → when it went up (ms).
META_HANDS_ROOT = "hands"

# A token's ``sub`` (protocol.md §9): what a user id may be.
_USER_ID = re.compile(r"[A-Za-z0-9_.:@|+-]{1,128}")


@dataclass(frozen=True, slots=True)
class RaisedHand:
    """One entry of the queue."""

    user_id: UserId
    #: Server time it went up, milliseconds since the Unix epoch.
    ts: float

    def as_json(self) -> dict[str, Any]:
        return {"userId": self.user_id, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class HandChange:
    """What ``hand:raise`` did: the user's hand now (None: down) and the
    update to relay (None: it was already so, nothing written)."""

    hand: RaisedHand | None
    update: Update | None


def read_hands(hands: Mapping[str, Any]) -> list[RaisedHand]:
    """The queue in raising order (ties by user id) from meta's ``hands``
    root as an engine (or a pycrdt ``Map.to_py()``) reads it; entries that do
    not fit (not a finite number) are skipped."""
    queue = [
        RaisedHand(UserId(user), float(ts))
        for user, ts in hands.items()
        if isinstance(user, str)
        and isinstance(ts, int | float)
        and not isinstance(ts, bool)
        and math.isfinite(ts)
    ]
    queue.sort(key=lambda h: (h.ts, h.user_id))
    return queue


def _current(room: Room) -> dict[UserId, RaisedHand]:
    raw = room.docs[META].engine.read_map(META_HANDS_ROOT)
    return {hand.user_id: hand for hand in read_hands(raw)}


def raise_hand(room: Room, actor: Identity, payload: Any, *, now_ms: float) -> HandChange:
    """``hand:raise {raised}`` (``raised`` true by default): raise or lower
    ``actor``'s own hand. Raising a raised hand keeps its place; lowering a
    lowered one writes nothing. Raising is refused to observers
    (PermissionDenied) and after the end (SessionEnded); lowering one's own
    hand never is (a participant made an observer may still take it down).
    InvalidPayload for anything but ``{"raised": bool}``. Nothing changes
    when it raises."""
    fields = payload_fields(payload if payload is not None else {}, {"raised": bool})
    raised = fields.get("raised", True)
    current = _current(room).get(actor.user_id)
    doc = room.docs[META]
    if raised:
        room.policy.check_take_part(actor)
        if current is not None:
            return HandChange(current, None)
        hand = RaisedHand(actor.user_id, float(int(now_ms)))
        update = doc.write(
            lambda engine: engine.set_map_fields(META_HANDS_ROOT, {hand.user_id: hand.ts}),
            adding=len(hand.user_id) + 32,
        )
        return HandChange(hand, update)
    if current is None:
        return HandChange(None, None)
    update = doc.write(lambda engine: engine.delete_map_keys(META_HANDS_ROOT, [actor.user_id]))
    return HandChange(None, update)


def lower_hands(room: Room, actor: Identity, payload: Any) -> Outcome:
    """``mod:lower-hands {userId?}`` (the caller checked the actor is a
    facilitator): lower that user's hand, or every hand without ``userId``.
    A hand already down is no error (two facilitators may lower it at once):
    nothing is written then. The audit detail names the user, or counts."""
    fields = payload_fields(payload if payload is not None else {}, {"userId": str})
    user = fields.get("userId")
    if user is not None and not _USER_ID.fullmatch(user):
        raise InvalidPayload("userId must be a user id")
    raised = _current(room)
    doomed = [UserId(user)] if user is not None else list(raised)
    doomed = [u for u in doomed if u in raised]
    detail = f"{user} hands={len(doomed)}" if user is not None else f"all hands={len(doomed)}"
    if not doomed:
        return Outcome(AuditAction.HAND, (), detail)
    update = room.docs[META].write(lambda engine: engine.delete_map_keys(META_HANDS_ROOT, doomed))
    return Outcome(AuditAction.HAND, (Change(META, update),), detail)


def lower_hand_of(room: Room, user: UserId) -> Change | None:
    """Lower ``user``'s hand if it is up (they were removed): the change, or None."""
    if user not in _current(room):
        return None
    update = room.docs[META].write(lambda engine: engine.delete_map_keys(META_HANDS_ROOT, [user]))
    return Change(META, update)
