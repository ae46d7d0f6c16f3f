"""The sending side of the Socket.IO server: relays and broadcasts (encoded
once, collab.broadcast), events to one connection or to a room's,
refusals (counted, logged, audited, answered with ``collab:error``),
``on_change`` for extensions, the traffic counters /metrics reads, and the
fire-and-forget tasks that send (handshakes, closes, state broadcasts).

The handlers (collab.sync, collab.room_control) and the admin API decide;
this sends. Relaying an update is the hot path: it stays one call to
:meth:`Emitter.relay` and one to ``Broadcaster.send``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import socketio

from collab.broadcast import Broadcaster
from collab.connections import Connection, ConnectionTable
from collab.errors import RateLimited
from collab.extensions import ChangeEvent, Extensions
from collab.metrics import Metrics
from collab.reporting import Reporter
from collab.sessions import SessionGuard
from collab.upstream import emit_to
from collab.wire import ERROR_EVENT, error_payload
from crdt.errors import CollabError, CrdtCode
from crdt.text import quote
from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditAction
from rooms.document import Document
from rooms.errors import RoomCode, TooManyStructs
from rooms.identity import Identity
from rooms.names import namespace_for
from rooms.registry import RoomRegistry

__all__ = ["Emitter"]

#: Refusals that are decisions about who may do what: these go to the audit log
#: (malformed input does not, so a flood of garbage cannot flood the log).
_AUDITED_REFUSALS = frozenset(
    {
        RoomCode.PERMISSION_DENIED,
        RoomCode.READ_ONLY_DOCUMENT,
        RoomCode.BOARD_LOCKED,
        RoomCode.MUTED,
        RoomCode.SESSION_ENDED,
        CrdtCode.AWARENESS_CLIENT_NOT_OWNED,
    }
)


#: Refusals that are a limit of protocol.md §8, by the name /metrics counts them under.
_LIMIT_OF = {
    RoomCode.DOCUMENT_TOO_LARGE: "document_size",
    RoomCode.PENDING_LIMIT: "pending",
    CrdtCode.MESSAGE_TOO_LARGE: "message_size",
}


class Emitter:
    """Everything the server sends to its connections, and the counting of it."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        broadcaster: Broadcaster,
        metrics: Metrics,
        registry: RoomRegistry,
        connections: ConnectionTable,
        reporter: Reporter,
        sessions: SessionGuard,
        extensions: Extensions,
    ) -> None:
        self.sio = sio
        self.broadcaster = broadcaster
        self.metrics = metrics
        self.registry = registry
        self.connections = connections
        self.reporter = reporter
        self.sessions = sessions
        self.extensions = extensions
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- fan-out -------------------------------------------------------------

    def relay(self, conn: Connection, event: str, payload: bytes, started: float) -> None:
        """Send ``payload`` to every other member of ``conn``'s document (encoded once)."""
        members = conn.doc.members
        if len(members) > 1:
            sent = self.broadcaster.send(conn.namespace, event, payload, members, skip=conn.sid)
            self.count_out(event, payload, sent, started)

    def broadcast(
        self,
        room_id: RoomId,
        doc_name: DocName,
        event: str,
        payload: bytes,
        started: float | None = None,
    ) -> None:
        """Send ``payload`` to every member of a room's document, if it is loaded."""
        room = self.registry.rooms.get(room_id)
        doc = room.docs.get(doc_name) if room is not None else None
        if doc is None or not doc.members:
            return
        self.to_members(doc, event, payload, started or time.perf_counter())

    def to_members(self, doc: Document, event: str, payload: bytes, started: float) -> None:
        """Send ``payload`` to every member of ``doc`` (encoded once)."""
        namespace = namespace_for(doc.room_id, doc.name)
        sent = self.broadcaster.send(namespace, event, payload, doc.members)
        self.count_out(event, payload, sent, started)

    def changed(
        self, room_id: RoomId, doc_name: DocName, update: Update, author: Identity | None
    ) -> None:
        """An update was applied and relayed: ``on_change`` (after the fan-out)."""
        if self.extensions.wants("on_change"):
            self.extensions.notify("on_change", ChangeEvent(room_id, doc_name, update, author))

    # -- one connection, one room -------------------------------------------------

    async def emit(self, conn: Connection, event: str, data: Any) -> None:
        """``event`` to ``conn`` alone, through python-socketio's packets."""
        await emit_to(self.sio, event, data, to=conn.sid, namespace=conn.namespace)

    async def emit_to_room(
        self, room_id: RoomId, event: str, data: Any, *, doc: DocName | None = None
    ) -> int:
        """``event`` to each connection of ``room_id`` (of its document ``doc``,
        if given), one after the other; return how many it went to. A
        connection gone before its turn is skipped."""
        sent = 0
        for sid in self.connections.sids_in(room_id):
            conn = self.connections.get(sid)
            if conn is not None and (doc is None or conn.doc_name == doc):
                await self.emit(conn, event, data)
                sent += 1
        return sent

    async def disconnect(self, conn: Connection) -> None:
        """End ``conn``'s namespace (the disconnect handler runs for it)."""
        await self.sio.disconnect(conn.sid, namespace=conn.namespace)

    # -- refusals -----------------------------------------------------------------

    async def send_error(self, conn: Connection, event: str, exc: CollabError) -> None:
        """Refuse ``event`` (:meth:`refused`) and tell ``conn`` with ``collab:error``."""
        self.refused(conn, event, exc)
        await emit_to(
            self.sio,
            ERROR_EVENT,
            error_payload(exc, event=event),
            to=conn.sid,
            namespace=conn.namespace,
        )

    def refused(self, conn: Connection, event: str, exc: CollabError) -> None:
        """Count, log and (for decisions about who may do what) audit a refused
        event, coalesced per kind and minute; one strike against the session."""
        self.count_refusal(exc)
        code = exc.code.value
        self.reporter.line(
            ("refused", code, conn.sid),
            "refused event=%s sid=%s room=%s doc=%s code=%s",
            quote(event),
            conn.sid,
            conn.room_id,
            conn.doc_name,
            code,
        )
        if exc.code in _AUDITED_REFUSALS:
            self.reporter.audit(
                AuditAction.REFUSED,
                room=conn.room_id,
                identity=conn.identity,
                outcome=code,
                detail=f"{quote(event, limit=64)} {conn.doc_name}",
            )
        # The store's outage is not the client's doing: its retries (protocol.md
        # §11) must not add up to a disconnect.
        if conn.session is not None and exc.code is not RoomCode.STORE_UNAVAILABLE:
            self.sessions.strike(conn.session)

    async def rate_limited(self, conn: Connection, event: str, limit: str) -> RateLimited:
        """Refuse an event past a rate limit: counted, one strike against the
        session, and ``collab:error`` once per run of refusals (a flood is
        not answered message for message)."""
        exc = RateLimited(f"{limit} past the limit; slow down")
        self.metrics.refused(limit)
        self.count_error(exc)
        if not conn.quota.limited:
            conn.quota.limited = True
            self.reporter.line(
                ("rate limited", limit, conn.sid),
                "rate limited sid=%s room=%s limit=%s event=%s",
                conn.sid,
                conn.room_id,
                limit,
                quote(event),
            )
            await self.sio.emit(
                ERROR_EVENT, error_payload(exc, event=event), to=conn.sid, namespace=conn.namespace
            )
        if conn.session is not None:
            self.sessions.strike(conn.session)
        return exc

    # -- counting -----------------------------------------------------------------

    def count_in(self, update: bytes) -> None:
        traffic = self.metrics.traffic
        traffic.updates_in += 1
        traffic.bytes_in += len(update)

    def count_out(self, event: str, payload: bytes, recipients: int, started: float) -> None:
        traffic = self.metrics.traffic
        traffic.deliveries_out[event] = traffic.deliveries_out.get(event, 0) + recipients
        traffic.bytes_out += len(payload) * recipients
        self.metrics.fanout_seconds.observe(time.perf_counter() - started)

    def count_refusal(self, exc: CollabError) -> None:
        """Count a refused event by its code, and by its limit if it is one."""
        self.count_error(exc)
        if isinstance(exc, TooManyStructs):
            self.metrics.refused("update_structs")
            return
        limit = _LIMIT_OF.get(exc.code)
        if limit is not None:
            self.metrics.refused(limit)

    def count_error(self, exc: CollabError) -> None:
        """Count an error sent to a client (``collab_errors_total{code}``)."""
        self.metrics.errors.labels(exc.code.value).inc()

    # -- background sends ---------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task nobody awaits, held until it is done (the
        event loop keeps only a weak reference)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
