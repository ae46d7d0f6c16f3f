"""Session activities on the Socket.IO side (protocol.md §6.6): a
facilitator's ``mod:timer``, ``mod:follow`` and ``mod:bring-here``, and
``time:now``, the server's clock for anyone in the room.

The activities are checked and applied by :mod:`rooms.facilitation`; this
module rate-limits them, audits them (refusals too, as moderation is),
relays what they wrote to meta through
:meth:`~collab.room_control.RoomControl.apply_outcome` (meta's members,
other nodes through replication, ``room:state`` to the room) and answers.
Logs name ids and sizes only: never a timer's label.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from collab.connections import ConnectionTable
from collab.emitter import Emitter
from collab.logs import user_ref
from collab.reporting import Reporter
from collab.room_control import RoomControl, room_state
from collab.server_clock import server_time_ms
from collab.sessions import SessionGuard
from collab.wire import ack_error, ack_ok, one_argument
from crdt.errors import CollabError, InvalidPayload
from rooms.facilitation import ACTIVITY_AUDIT, ACTIVITY_EVENTS, run_activity
from rooms.registry import RoomRegistry

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
        registry: RoomRegistry,
        control: RoomControl,
        reporter: Reporter,
        sessions: SessionGuard,
        *,
        clock_ms: Callable[[], int] = server_time_ms,
    ) -> None:
        self.connections = connections
        self.emitter = emitter
        self.registry = registry
        self.control = control
        self.reporter = reporter
        self.sessions = sessions
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
        """A facilitator's activity: ack ``{ok, state, <what it wrote>}`` or a typed error."""
        conn = self.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, event, "events"))
        action = ACTIVITY_AUDIT[event]
        try:
            payload = one_argument(args) if args else {}
            async with self.registry.use(conn.room_id) as room:
                outcome, extra = run_activity(
                    event, room, conn.identity, payload, now_ms=self.clock_ms()
                )
                await self.control.apply_outcome(room, outcome, actor=conn.identity)
        except CollabError as exc:
            self.emitter.count_refusal(exc)
            self.reporter.audit(
                action,
                room=conn.room_id,
                identity=conn.identity,
                outcome=exc.code.value,
                detail=event,
            )
            log.info("%s refused sid=%s code=%s", event, sid, exc.code.value)
            if conn.session is not None:
                self.sessions.strike(conn.session)
            return ack_error(exc)
        self.registry.audit(
            action, room=conn.room_id, identity=conn.identity, detail=outcome.detail
        )
        log.info("%s room=%s by=%s", event, conn.room_id, user_ref(conn.identity.user_id))
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
