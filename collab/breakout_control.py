"""Breakout groups on the Socket.IO side (protocol.md §6.7): the
facilitator's ``mod:breakout`` (open, broadcast, close, show), who may join
a group room, the timer that closes the groups, and closing the group
rooms' connections when they close, on this node and (through replication
of the group rooms' meta) on every other.

Each group room's meta holds its own copy of what its members need (root
map ``breakout``: ``seq``, ``state``, ``endsAt``, and the last broadcast
``text``/``textSeq``/``textAt``), so a node with members of a group follows
that room only, and learns there that the groups closed
(:meth:`BreakoutControl.group_changed`). The decisions are
rooms.breakouts'. Logs carry ids and sizes, never a broadcast's words.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from crdt.errors import CollabError, InvalidPayload
from crdt.schemas import BOARD_ROOT, DocKind
from crdt.types import RoomId, UserId
from rooms.audit import AuditAction
from rooms.breakouts import (
    GROUP_PREFIX,
    MAX_GROUPS,
    Breakouts,
    breakout_of,
    check_admission,
    close_breakouts,
    current,
    group_room,
    mark_shown,
    open_breakouts,
    parse_action,
    shown_shapes,
    validate_broadcast,
)
from rooms.errors import BreakoutClosed, BreakoutState, NotFound, Removed, SessionEnded
from rooms.identity import Identity, Role
from rooms.moderation import Change, Outcome
from rooms.names import BOARD, META
from rooms.room import Room

if TYPE_CHECKING:
    from collab.room_control import RoomControl

__all__ = ["META_GROUP_ROOT", "BreakoutControl"]

log = logging.getLogger("collab.sync")

#: A group room's meta root map: its own view of the breakouts.
META_GROUP_ROOT = "breakout"


def _group_state(room: Room) -> dict[str, Any]:
    return room.docs[META].engine.read_map(META_GROUP_ROOT)


class BreakoutControl:
    """``mod:breakout``, admission to group rooms, and the groups' timer."""

    def __init__(self, control: RoomControl, clock_ms: Callable[[], int]) -> None:
        self.control = control
        self.registry = control.registry
        self.clock_ms = clock_ms
        #: Main room → (seq, timer handle) of the close this node set.
        self._timers: dict[RoomId, tuple[int, asyncio.TimerHandle]] = {}

    # -- mod:breakout ----------------------------------------------------------------

    async def moderate(
        self, room: Room, actor: Identity, payload: Any
    ) -> tuple[Outcome, dict[str, Any]]:
        room.policy.check_moderate(actor)
        action = parse_action(payload)
        if breakout_of(room.id) is not None:
            raise InvalidPayload("breakout groups are run from the main room")
        now = self.clock_ms()
        if action == "open":
            if room.policy.ended:
                raise SessionEnded("the session has ended")
            outcome, extra = open_breakouts(
                room, actor, payload, self.participants(room), now_ms=now
            )
            await self._to_groups(room, self._group_record(current(room)))
            self._schedule(room.id, current(room))
            return outcome, extra
        if action == "close":
            if len(payload) != 1:
                raise InvalidPayload("close takes no other field")
            closed = await self.close(room, actor.user_id)
            if closed is None:
                raise BreakoutState("no breakout groups are open")
            return closed, {}
        if action == "broadcast":
            text = validate_broadcast(payload)
            breakouts = current(room)
            if not breakouts.is_open(now):
                raise BreakoutState("no breakout groups are open")
            await self._to_groups(room, {"text": text, "textSeq": now, "textAt": now})
            detail = f"broadcast groups={len(breakouts.groups)} chars={len(text)}"
            return Outcome(AuditAction.BREAKOUT, (), detail), {"groups": len(breakouts.groups)}
        return await self._show(room, actor, payload, now)

    async def _show(
        self, room: Room, actor: Identity, payload: dict[str, Any], now: int
    ) -> tuple[Outcome, dict[str, Any]]:
        """``{action: "show", group: "breakout-N"}``: the closed group's kept
        board, placed on the main room's board beside its content
        (rooms.breakouts.shown_shapes); shown again, it replaces its copy."""
        if set(payload) - {"action", "group"}:
            raise InvalidPayload("show takes group only")
        name = payload.get("group")
        breakouts = current(room)
        if not isinstance(name, str) or breakouts.group(name) is None:
            raise NotFound("no such group in the last breakout groups")
        if breakouts.is_open(now):
            raise BreakoutState("close the breakout groups before showing their boards")
        room.policy.check_write(actor, DocKind.BOARD)
        source = await self.registry.document(group_room(room.id, name), BOARD)
        target = await self.registry.document(room.id, BOARD)
        shapes, earlier, images = shown_shapes(
            source.engine.read_map(BOARD_ROOT), target.engine.read_map(BOARD_ROOT), name
        )
        size = len(orjson.dumps(shapes, default=str))
        update = target.write(
            lambda engine: engine.put_shapes(BOARD_ROOT, shapes, delete=earlier), adding=size
        )
        shown = mark_shown(room, (*breakouts.shown, name))
        detail = f"show {name} shapes={len(shapes)} images_left_out={images}"
        outcome = Outcome(AuditAction.BREAKOUT, (Change(BOARD, update), shown), detail)
        return outcome, {"shapes": len(shapes), "imagesLeftOut": images}

    def participants(self, room: Room) -> list[UserId]:
        """Whom random groups are made of: the users in the main room now on
        any node (this node's connections, and everyone's awareness on the
        room's loaded documents) whose role there is participant."""
        people: dict[str, str] = {}
        for conn in self.control.connections.in_room(room.id):
            people[conn.identity.user_id] = room.policy.role_of(conn.token_identity).value
        for doc in room.docs.values():
            for entry in doc.awareness.snapshot():
                user = _stamped(entry.state)
                if user is not None:
                    people.setdefault(user[0], user[1])
        return [
            UserId(user)
            for user, role in people.items()
            if role == Role.PARTICIPANT.value
            and UserId(user) not in room.policy.removed
            and room.policy.roles.get(UserId(user), Role.PARTICIPANT) is Role.PARTICIPANT
        ]

    # -- the group rooms -------------------------------------------------------------

    @staticmethod
    def _group_record(breakouts: Breakouts) -> dict[str, Any]:
        return {"seq": breakouts.seq, "state": "open", "endsAt": breakouts.ends_at, "text": ""}

    async def _to_groups(self, main: Room, fields: dict[str, Any]) -> None:
        """Write ``fields`` into every group room's ``breakout`` (meta: it
        reaches their members on every node); close the local connections
        of the groups that are closed now."""
        for group in current(main).groups:
            room_id = group_room(main.id, group.name)
            async with self.registry.use(room_id) as g:
                doc = g.docs[META]
                update = doc.write(
                    lambda engine: engine.set_map_fields(META_GROUP_ROOT, fields),
                    adding=64 + len(str(fields)),
                )
                outcome = Outcome(AuditAction.BREAKOUT, (Change(META, update),), "")
                await self.control.apply_outcome(g, outcome)
                self.group_changed(g)

    async def close(self, main: Room, by: str) -> Outcome | None:
        """Close ``main``'s open set (None if none is open in meta)."""
        outcome = close_breakouts(main, by, now_ms=self.clock_ms())
        if outcome is None:
            return None
        self._cancel(main.id)
        await self._to_groups(main, {"state": "closed"})
        return outcome

    def group_changed(self, room: Room) -> None:
        """A group room's meta changed (here or on another node): when it
        says closed, this node's connections to it close with
        ``breakout_closed``; while open with an end, this node keeps a timer."""
        found = breakout_of(room.id)
        if found is None:
            self.expel(room.id, room.policy.removed)
            return
        state = _group_state(room)
        if state.get("state") == "closed":
            if self.control.connections.in_room(room.id):
                log.info("breakout closed room=%s", room.id)
                self.control.emitter.spawn(
                    self.control.close_room(
                        room.id, BreakoutClosed("the breakout groups were closed: back to the room")
                    )
                )
            return
        seq, ends_at = state.get("seq"), state.get("endsAt")
        if isinstance(seq, int | float) and isinstance(ends_at, int | float):
            self._schedule_at(found[0], int(seq), int(ends_at))

    # -- admission ---------------------------------------------------------------------

    async def admit(self, room_id: RoomId, identity: Identity) -> Identity:
        """Raise unless ``identity`` (authenticated for the main room) may
        join breakout room ``room_id``: Removed from the main room,
        BreakoutClosed, NotInGroup (rooms.breakouts.check_admission). Returns
        ``identity`` with its role in the main room (an override there, §6.3,
        holds in the groups, as of the join)."""
        found = breakout_of(room_id)
        assert found is not None
        main_id, group = found
        async with self.registry.use(main_id) as main:
            main.policy.check_join(identity)
            breakouts = current(main)
            now = self.clock_ms()
            if breakouts.expired(now):
                self.control.emitter.spawn(self._expire(main_id, breakouts.seq))
            check_admission(breakouts, identity, main.policy.role_of(identity), group, now_ms=now)
            self._schedule(main_id, breakouts)
            effective = main.policy.effective(identity)
        async with self.registry.use(room_id) as g:
            # The group's own word, in case the main room's was older here.
            if _group_state(g).get("state") == "closed":
                raise BreakoutClosed("no breakout groups are open in this room")
        return effective

    def expel(self, main: RoomId, users: set[UserId]) -> None:
        """Users removed from ``main``: close their connections to its groups
        on this node with ``removed``."""
        if not users:
            return
        table = self.control.connections
        doomed = [
            conn
            for n in range(1, MAX_GROUPS + 1)
            for conn in table.in_room(group_room(main, f"{GROUP_PREFIX}{n}"))
            if conn.identity.user_id in users
        ]
        for conn in doomed:
            self.control.emitter.spawn(
                self.control.close(conn, Removed("you were removed from this room"))
            )

    # -- the timer -----------------------------------------------------------------------

    def _schedule(self, main: RoomId, breakouts: Breakouts) -> None:
        if breakouts.state == "open" and breakouts.ends_at is not None:
            self._schedule_at(main, breakouts.seq, breakouts.ends_at)

    def _schedule_at(self, main: RoomId, seq: int, ends_at: int) -> None:
        known = self._timers.get(main)
        if known is not None and known[0] == seq:
            return
        if known is not None:
            known[1].cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, (ends_at - self.clock_ms()) / 1000)
        handle = loop.call_later(delay, lambda: self.control.emitter.spawn(self._expire(main, seq)))
        self._timers[main] = (seq, handle)

    def stop(self) -> None:
        """The server stops: no timer of this node's fires any more (another
        node, or the next join after a restart, closes a set whose time ran out)."""
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def _cancel(self, main: RoomId) -> None:
        known = self._timers.pop(main, None)
        if known is not None:
            known[1].cancel()

    async def _expire(self, main_id: RoomId, seq: int) -> None:
        """The time of set ``seq`` ran out: close it, if it is still open
        (any node may; a second close writes nothing)."""
        if self._timers.get(main_id, (seq,))[0] == seq:
            self._timers.pop(main_id, None)
        try:
            async with self.registry.use(main_id) as main:
                breakouts = current(main)
                if breakouts.seq != seq or not breakouts.expired(self.clock_ms()):
                    return
                outcome = await self.close(main, "timer")
                if outcome is None:
                    return
                await self.control.apply_outcome(main, outcome)
            self.registry.audit(AuditAction.BREAKOUT, room=main_id, detail=outcome.detail)
            log.info("breakouts closed by their timer room=%s seq=%d", main_id, seq)
        except (CollabError, OSError) as exc:
            log.warning("breakout timer close failed room=%s: %s", main_id, type(exc).__name__)


def _stamped(state: str | None) -> tuple[str, str] | None:
    """(user id, role) a node stamped into an awareness state."""
    if state is None:
        return None
    try:
        user = orjson.loads(state).get("user")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(user, dict):
        return None
    uid, role = user.get("id"), user.get("role")
    return (uid, role) if isinstance(uid, str) and isinstance(role, str) else None
