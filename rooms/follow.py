"""Follow me and bring everyone here (protocol.md §6.6): where a facilitator
leads the room's views, kept in meta so every node's members and every
late joiner learn it as they learn the rest of meta.

- ``mod:follow {"on"}`` writes meta's root map ``follow`` (``on``, ``by``,
  ``at``): while it is on, clients show the view that facilitator
  publishes in awareness (``view``, crdt.awareness_fields); each
  participant may stop following for themselves (a local choice).
- ``mod:bring-here {"x", "y", "w", "h"}`` writes meta's root map
  ``bringHere`` (the area, ``seq`` one more than before, ``by``, ``at``):
  each client moves its view there once when ``seq`` changes. It is a
  meta write rather than an event so that replication carries it to the
  members on every node, and a client that joins soon after lands there.

The clock is the caller's (``now_ms``).
"""

from __future__ import annotations

from typing import Any

from crdt.awareness_fields import BOARD_EXTENT, board_area
from crdt.errors import InvalidPayload
from rooms.audit import AuditAction
from rooms.identity import Identity
from rooms.moderation import Change, Outcome, payload_fields
from rooms.names import META
from rooms.room import Room

__all__ = [
    "BRING_HERE_EVENT",
    "FOLLOW_EVENT",
    "META_BRING_HERE_ROOT",
    "META_FOLLOW_ROOT",
    "bring_here",
    "set_follow",
]

FOLLOW_EVENT = "mod:follow"
BRING_HERE_EVENT = "mod:bring-here"
#: Meta's root map of follow me: ``on``, ``by`` (a facilitator's user id), ``at``.
META_FOLLOW_ROOT = "follow"
#: Meta's root map of the last bring-here: ``seq``, ``x``, ``y``, ``w``, ``h``, ``by``, ``at``.
META_BRING_HERE_ROOT = "bringHere"


def _write(room: Room, root: str, fields: dict[str, Any]) -> Change:
    doc = room.docs[META]
    update = doc.write(
        lambda engine: engine.set_map_fields(root, fields), adding=64 + len(str(fields))
    )
    return Change(META, update)


def set_follow(
    room: Room, actor: Identity, payload: Any, *, now_ms: int
) -> tuple[Outcome, dict[str, Any]]:
    """``mod:follow {"on": true|false}``: everyone follows ``actor``'s view
    from now on (and joiners too), or nobody does. Turning it on while
    another facilitator leads makes ``actor`` the one followed."""
    fields = payload_fields(payload, {"on": bool})
    if "on" not in fields:
        raise InvalidPayload("field 'on' is required (true or false)")
    on = fields["on"]
    record = {"on": on, "by": actor.user_id, "at": now_ms}
    change = _write(room, META_FOLLOW_ROOT, record)
    return Outcome(AuditAction.FOLLOW, (change,), f"follow on={str(on).lower()}"), {
        "follow": record
    }


def bring_here(
    room: Room, actor: Identity, payload: Any, *, now_ms: int
) -> tuple[Outcome, dict[str, Any]]:
    """``mod:bring-here {"x", "y", "w", "h"}``: every member's view moves once
    to that area of the board (top-left corner and size, board units)."""
    fields = payload_fields(payload, {"x": object, "y": object, "w": object, "h": object})
    area = board_area(fields)
    if area is None:
        raise InvalidPayload(
            "x, y, w and h must be finite numbers: x and y within "
            f"±{BOARD_EXTENT:.0f}, w and h above 0 and at most {BOARD_EXTENT:.0f}"
        )
    meta = room.docs[META].engine.read_map(META_BRING_HERE_ROOT)
    previous = meta.get("seq")
    seq = (
        int(previous) + 1
        if isinstance(previous, int | float) and not isinstance(previous, bool)
        else 1
    )
    record: dict[str, Any] = {"seq": seq, **area, "by": actor.user_id, "at": now_ms}
    change = _write(room, META_BRING_HERE_ROOT, record)
    detail = f"bring-here seq={seq} w={area['w']:g} h={area['h']:g}"
    return Outcome(AuditAction.FOLLOW, (change,), detail), {"bringHere": record}
