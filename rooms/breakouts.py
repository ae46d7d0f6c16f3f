"""Breakout groups (protocol.md §6.7): a facilitator splits a room's
participants into groups, each in a room of its own derived from the main
room's id (``<room>/breakout-1``, …), brings everyone back when they close,
and may show a group's kept board in the main room.

The set of groups lives in the main room's server-written ``meta``, root
map ``breakouts``: ``seq`` (one more at each opening), ``state``
(``open``/``closed``), ``groups`` (``[{"name", "members": [user ids]}]``),
``endsAt`` (server time in ms, or None without a time limit), ``openedAt``,
``closedAt``, ``by`` and ``shown`` (the groups whose boards were copied
into the main room). An open set whose ``endsAt`` has passed is closed
(:meth:`Breakouts.is_open` with the clock), whether or not a node has
written it yet: the admission and every client judge by the same time.

Who may join ``<room>/breakout-N`` (:func:`check_admission`): a token for
``<room>`` (never one for the breakout room alone), while a set is open;
a facilitator of the main room to any group (to visit), anyone else only to
the group that lists them. The group's broadcast line lives in the group
room's meta, root map ``breakoutMessage`` (``seq``, ``text``, ``by``, ``at``).

This module decides; collab.breakout_control relays, closes connections and
runs the timer. The clock is the caller's (``now_ms``).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crdt.errors import InvalidPayload
from crdt.text import bad_name_character
from crdt.types import RoomId, UserId
from rooms.audit import AuditAction
from rooms.errors import BreakoutClosed, BreakoutState, NotInGroup
from rooms.identity import Identity, Role
from rooms.moderation import Change, Outcome
from rooms.names import META, validate_room_id
from rooms.room import Room

__all__ = [
    "BREAKOUT_EVENT",
    "GROUP_PREFIX",
    "MAX_BREAKOUT_S",
    "MAX_BROADCAST_CHARS",
    "MAX_GROUPS",
    "MAX_GROUP_SIZE",
    "META_BREAKOUTS_ROOT",
    "META_BREAKOUT_MESSAGE_ROOT",
    "MIN_BREAKOUT_S",
    "Breakouts",
    "Group",
    "breakout_of",
    "check_admission",
    "close_breakouts",
    "group_room",
    "open_breakouts",
    "parse_action",
    "read_breakouts",
    "token_rooms",
    "validate_broadcast",
    "write_message",
]

BREAKOUT_EVENT = "mod:breakout"
META_BREAKOUTS_ROOT = "breakouts"
META_BREAKOUT_MESSAGE_ROOT = "breakoutMessage"
#: A breakout room's last segment: ``breakout-<n>``, n from 1 to MAX_GROUPS.
GROUP_PREFIX = "breakout-"
#: Limits (protocol.md §8.1).
MAX_GROUPS = 20
MAX_GROUP_SIZE = 50
MIN_BREAKOUT_S = 1
MAX_BREAKOUT_S = 4 * 3600
MAX_BROADCAST_CHARS = 300

_GROUP_SEGMENT = re.compile(r"breakout-([1-9][0-9]?)")
_USER_ID = re.compile(r"[A-Za-z0-9_.:@|+-]{1,128}")
_ACTIONS = ("open", "close", "broadcast", "show")


def breakout_of(room_id: str) -> tuple[RoomId, str] | None:
    """``(main room, group name)`` if ``room_id`` is a breakout room
    (``<main>/breakout-<n>``, n ≤ MAX_GROUPS), else None. Every room whose
    last segment looks like ``breakout-<n>`` is one: such a room is never
    joined but through its main room's breakouts."""
    main, sep, last = room_id.rpartition("/")
    match = _GROUP_SEGMENT.fullmatch(last)
    if not sep or match is None or int(match.group(1)) > MAX_GROUPS:
        return None
    return validate_room_id(main), last


def token_rooms(room_id: RoomId) -> tuple[RoomId, ...]:
    """The rooms whose revocations cover a connection to ``room_id``: the
    room, and a breakout room's main room."""
    found = breakout_of(room_id)
    return (room_id,) if found is None else (room_id, found[0])


def group_room(main: RoomId, name: str) -> RoomId:
    return RoomId(f"{main}/{name}")


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    members: tuple[UserId, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "members": list(self.members)}


@dataclass(frozen=True, slots=True)
class Breakouts:
    """Meta's ``breakouts`` as read (:func:`read_breakouts`)."""

    seq: int = 0
    state: str = "closed"
    groups: tuple[Group, ...] = ()
    ends_at: int | None = None
    shown: tuple[str, ...] = field(default=())

    def is_open(self, now_ms: float) -> bool:
        if self.state != "open":
            return False
        return self.ends_at is None or now_ms < self.ends_at

    def expired(self, now_ms: float) -> bool:
        """Open in meta, but its time has run out (a close is due)."""
        return self.state == "open" and self.ends_at is not None and now_ms >= self.ends_at

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def group_of(self, user: UserId) -> Group | None:
        return next((g for g in self.groups if user in g.members), None)


def _int(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return None


def read_breakouts(meta: Mapping[str, Any]) -> Breakouts:
    """Meta's ``breakouts`` root as an engine reads it; what does not fit is skipped."""
    groups = []
    raw_groups = meta.get("groups")
    for raw in raw_groups if isinstance(raw_groups, list) else ():
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            continue
        members = raw.get("members")
        users = (
            tuple(UserId(u) for u in members if isinstance(u, str))
            if isinstance(members, list)
            else ()
        )
        groups.append(Group(raw["name"], users))
    shown = meta.get("shown")
    return Breakouts(
        seq=_int(meta.get("seq")) or 0,
        state="open" if meta.get("state") == "open" else "closed",
        groups=tuple(groups),
        ends_at=_int(meta.get("endsAt")),
        shown=tuple(s for s in shown if isinstance(s, str)) if isinstance(shown, list) else (),
    )


def current(room: Room) -> Breakouts:
    return read_breakouts(room.docs[META].engine.read_map(META_BREAKOUTS_ROOT))


def check_admission(
    breakouts: Breakouts, identity: Identity, role: Role, group: str, *, now_ms: float
) -> None:
    """Raise unless ``identity`` (``role`` in the main room) may join
    ``group``: BreakoutClosed when no set is open, NotInGroup for a group
    that is not theirs (or that does not exist)."""
    if not breakouts.is_open(now_ms):
        raise BreakoutClosed("no breakout groups are open in this room")
    found = breakouts.group(group)
    if found is None:
        raise NotInGroup("there is no such breakout group now")
    if role is not Role.FACILITATOR and identity.user_id not in found.members:
        raise NotInGroup("this breakout group is not yours")


def parse_action(payload: Any) -> str:
    if not isinstance(payload, dict):
        raise InvalidPayload("mod:breakout takes one JSON object")
    action = payload.get("action")
    if action not in _ACTIONS:
        raise InvalidPayload(f"action must be one of {', '.join(_ACTIONS)}")
    return str(action)


def _only(payload: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(payload) - {"action", *allowed}
    if unknown:
        raise InvalidPayload(f"unknown fields: {', '.join(sorted(unknown))}")


def _count(payload: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidPayload(f"{name} must be a whole number from {low} to {high}")
    return value


def _groups_by_hand(raw: Any) -> list[list[UserId]]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_GROUPS:
        raise InvalidPayload(f"groups must be a list of 1 to {MAX_GROUPS} groups")
    seen: set[str] = set()
    groups = []
    for members in raw:
        if not isinstance(members, list) or len(members) > MAX_GROUP_SIZE:
            raise InvalidPayload(f"each group is a list of at most {MAX_GROUP_SIZE} user ids")
        for user in members:
            if not isinstance(user, str) or not _USER_ID.fullmatch(user):
                raise InvalidPayload("each member must be a user id")
            if user in seen:
                raise InvalidPayload("a user may be in one group only")
            seen.add(user)
        groups.append([UserId(u) for u in members])
    return groups


def _random_groups(
    participants: Sequence[UserId], count: int | None, size: int | None, rng: random.Random
) -> list[list[UserId]]:
    people = sorted(set(participants))
    rng.shuffle(people)
    if not people:
        raise InvalidPayload("no participants are in the room to split")
    if size is not None:
        count = max(1, math.ceil(len(people) / size))
        if count > MAX_GROUPS:
            raise InvalidPayload(f"that makes more than {MAX_GROUPS} groups")
    assert count is not None
    groups: list[list[UserId]] = [[] for _ in range(count)]
    for i, user in enumerate(people):
        groups[i % count].append(user)
    if any(len(g) > MAX_GROUP_SIZE for g in groups):
        raise InvalidPayload(f"a group would have more than {MAX_GROUP_SIZE} people")
    return groups


def _write(room: Room, root: str, fields: dict[str, Any]) -> Change:
    doc = room.docs[META]
    update = doc.write(
        lambda engine: engine.set_map_fields(root, fields), adding=64 + len(str(fields))
    )
    return Change(META, update)


def open_breakouts(
    room: Room,
    actor: Identity,
    payload: dict[str, Any],
    participants: Sequence[UserId],
    *,
    now_ms: int,
    rng: random.Random | None = None,
) -> tuple[Outcome, dict[str, Any]]:
    """``{action: "open", groups: [[user, …], …]}`` or ``{action: "open",
    random: true, count|size: N}``, optional ``durationS``: a new set of
    groups. BreakoutState if one is open; ``participants`` are whom random
    groups are made of."""
    _only(payload, ("groups", "random", "count", "size", "durationS"))
    if current(room).is_open(now_ms):
        raise BreakoutState("breakout groups are already open: close them first")
    duration = _count(payload, "durationS", MIN_BREAKOUT_S, MAX_BREAKOUT_S)
    if payload.get("random") is True:
        if "groups" in payload:
            raise InvalidPayload("random groups take count or size, not groups")
        count = _count(payload, "count", 1, MAX_GROUPS)
        size = _count(payload, "size", 1, MAX_GROUP_SIZE)
        if (count is None) == (size is None):
            raise InvalidPayload("random groups take exactly one of count and size")
        members = _random_groups(participants, count, size, rng or random.Random())
    elif "random" in payload and payload["random"] is not False:
        raise InvalidPayload("random must be true or false")
    else:
        if "count" in payload or "size" in payload:
            raise InvalidPayload("count and size are for random groups")
        members = _groups_by_hand(payload.get("groups"))
    groups = [Group(f"{GROUP_PREFIX}{i + 1}", tuple(m)) for i, m in enumerate(members)]
    seq = current(room).seq + 1
    record: dict[str, Any] = {
        "seq": seq,
        "state": "open",
        "groups": [g.as_json() for g in groups],
        "endsAt": now_ms + duration * 1000 if duration is not None else None,
        "openedAt": now_ms,
        "closedAt": None,
        "by": actor.user_id,
        "shown": [],
    }
    change = _write(room, META_BREAKOUTS_ROOT, record)
    sizes = ",".join(str(len(g.members)) for g in groups)
    detail = f"open seq={seq} groups={len(groups)} sizes={sizes} duration_s={duration or 0}"
    return Outcome(AuditAction.BREAKOUT, (change,), detail), {"breakouts": record}


def close_breakouts(room: Room, by: str, *, now_ms: int) -> Outcome | None:
    """Close the open set (None if there is none open in meta: nothing written)."""
    if current(room).state != "open":
        return None
    seq = current(room).seq
    change = _write(
        room, META_BREAKOUTS_ROOT, {"state": "closed", "closedAt": now_ms, "closedBy": by}
    )
    return Outcome(AuditAction.BREAKOUT, (change,), f"close seq={seq}")


def validate_broadcast(payload: dict[str, Any]) -> str:
    _only(payload, ("text",))
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidPayload("text must be a non-empty string")
    if len(text) > MAX_BROADCAST_CHARS:
        raise InvalidPayload(f"the text has {len(text)} characters, limit {MAX_BROADCAST_CHARS}")
    if bad_name_character(text) is not None:
        raise InvalidPayload("the text holds a control, bidi or invalid character")
    return text.strip()


def write_message(group_room: Room, text: str, by: UserId, seq: int, *, now_ms: int) -> Change:
    """The broadcast line in a group room's meta."""
    record = {"seq": seq, "text": text, "by": by, "at": now_ms}
    return _write(group_room, META_BREAKOUT_MESSAGE_ROOT, record)


def mark_shown(room: Room, shown: Sequence[str]) -> Change:
    return _write(room, META_BREAKOUTS_ROOT, {"shown": sorted(set(shown))})


#: Board units between the main board's content and a group's board shown beside it.
SHOW_GAP = 100.0


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _points(shape: Mapping[str, Any]) -> list[tuple[float, float]]:
    raw = shape.get("points")
    if not isinstance(raw, list):
        return []
    if raw and all(isinstance(p, list) and len(p) == 2 for p in raw):
        flat = [c for p in raw for c in p]
    else:
        flat = list(raw)
    nums = [_num(c) for c in flat]
    if any(n is None for n in nums) or len(nums) % 2:
        return []
    return [(nums[i], nums[i + 1]) for i in range(0, len(nums), 2)]  # type: ignore[misc]


def _extent(shape: Mapping[str, Any]) -> tuple[float, float] | None:
    """(left, right) of a shape in board units, if it has a position."""
    xs = [p[0] for p in _points(shape)]
    x, w = _num(shape.get("x")), _num(shape.get("w"))
    if x is not None:
        xs += [x, x + (w or 0.0)]
    return (min(xs), max(xs)) if xs else None


def _moved(shape: Mapping[str, Any], dx: float) -> dict[str, Any]:
    moved = dict(shape)
    x = _num(shape.get("x"))
    if x is not None:
        moved["x"] = x + dx
    points = shape.get("points")
    if isinstance(points, list) and points and all(isinstance(p, list) for p in points):
        moved["points"] = [[p[0] + dx, p[1]] for p in _points(shape)]
    elif isinstance(points, list) and _points(shape):
        moved["points"] = [c for p in _points(shape) for c in (p[0] + dx, p[1])]
    return moved


def shown_shapes(
    group_shapes: Mapping[str, Any], main_shapes: Mapping[str, Any], group: str
) -> tuple[dict[str, dict[str, Any]], list[str], int]:
    """A group's board as shapes for the main board, to the right of what the
    main board holds (a copy shown before is replaced, not counted): each
    shape's key ``<group>.<key>``, its stacking order above every other.
    Returns (shapes, keys of the earlier copy to delete, image shapes left
    out: a picture is stored with its own room, §10.6)."""
    prefix = f"{group}."
    earlier = [k for k in main_shapes if k.startswith(prefix)]
    others = [s for k, s in main_shapes.items() if not k.startswith(prefix) and isinstance(s, dict)]
    right = max((e[1] for e in map(_extent, others) if e is not None), default=None)
    source = {k: s for k, s in group_shapes.items() if isinstance(s, dict)}
    images = [k for k, s in source.items() if s.get("type") == "image"]
    source = {k: s for k, s in source.items() if k not in images}
    left = min((e[0] for e in map(_extent, source.values()) if e is not None), default=0.0)
    dx = 0.0 if right is None else right + SHOW_GAP - left
    zs = [_num(s.get("z")) for s in others]
    top = max((z for z in zs if z is not None and abs(z) < 1e15), default=0.0)
    order = sorted(source, key=lambda k: (_num(source[k].get("z")) or 0.0, k))
    shapes = {}
    for i, key in enumerate(order):
        shape = _moved(source[key], dx)
        shape["z"] = math.floor(top) + 1 + i
        shapes[f"{prefix}{key}"[:128]] = shape
    return shapes, earlier, len(images)
