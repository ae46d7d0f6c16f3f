"""Session activities on the Socket.IO side (protocol.md §6.6): a
facilitator's ``mod:timer``, ``mod:follow`` and ``mod:bring-here``, and
``time:now``, the server's clock for anyone in the room.

The activities are checked and applied by :mod:`rooms.facilitation`; they
take moderation's road (:meth:`~collab.room_control.RoomControl.facilitate`:
the event rate, audit and refusals as for ``mod:*``, what they wrote to meta
relayed and stored before the ack by ``apply_outcome``), and are answered
with the room's state. Logs name ids and sizes only: never a timer's label.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from collab.connections import ConnectionTable
from collab.emitter import Emitter
from collab.room_control import Decided, RoomControl, room_state
from collab.server_clock import server_time_ms
from collab.wire import ack_error, ack_ok
from crdt.errors import InvalidPayload
from rooms.facilitation import ACTIVITY_AUDIT, ACTIVITY_EVENTS, run_activity
from rooms.identity import Identity
from rooms.room import Room

__all__ = ["ACTIVITY_EVENTS", "TIME_NOW", "ActivityControl"]

log = logging.getLogger("collab.sync")

#: Anyone in a room asks for the server's time: ``{"ok": true, "now": <ms>}``.
TIME_NOW = "time:now"

Handler = Callable[..., Awaitable[dict[str, Any]]]


class ActivityControl:
    """The handlers of the session activities' events, for
    :class:`~collab.sync.SyncServer` to register (:meth:`handlers`)."""

    def __init__(
        self,
        connections: ConnectionTable,
        emitter: Emitter,
        control: RoomControl,
        *,
        clock_ms: Callable[[], int] = server_time_ms,
    ) -> None:
        self.connections = connections
        self.emitter = emitter
        self.control = control
        #: The server's clock (ms since the Unix epoch): timers are set by it.
        self.clock_ms = clock_ms

    def handlers(self) -> dict[str, Handler]:
        """Event name → handler, for every event this module answers."""

        def activity(event: str) -> Handler:
            async def handler(namespace: str, sid: str, *args: Any) -> dict[str, Any]:
                return await self.on_activity(event, sid, args)

            return handler

        return {
            **{event: activity(event) for event in ACTIVITY_EVENTS},
            TIME_NOW: self.on_time_now,
        }

    async def on_activity(self, event: str, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """A facilitator's activity: ack ``{ok, state, <what it wrote>}`` or a
        typed error (the road of moderation: RoomControl.facilitate)."""

        async def decide(room: Room, actor: Identity, payload: Any) -> Decided:
            return run_activity(event, room, actor, payload, now_ms=self.clock_ms())

        done = await self.control.facilitate(
            event, sid, args, ACTIVITY_AUDIT[event], decide, refused_detail=event
        )
        if isinstance(done, dict):
            return done
        _, room, _, extra = done
        return ack_ok(state=room_state(room), **extra)

    async def on_time_now(self, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        """``time:now`` (no argument, or ``{}``): the server's time, for a
        client to estimate its clock's offset over the round trip."""
        conn = self.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, TIME_NOW, "events"))
        if args and not (len(args) == 1 and args[0] == {}):
            exc = InvalidPayload("time:now takes no argument, or {}")
            self.emitter.refused(conn, TIME_NOW, exc)
            return ack_error(exc)
        return ack_ok(now=self.clock_ms())
