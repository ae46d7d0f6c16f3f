"""The Socket.IO side of the protocol (protocol.md §3–§6).

Each handler is feed → decide → emit: it hands the payload to the room's
:class:`~rooms.document.Document` (which checks and applies it) or to
:mod:`rooms.moderation`, and emits what comes back. Errors become wire
errors in :mod:`collab.wire`.

The handlers are here; the connections they serve are in a
:class:`~collab.connections.ConnectionTable`, what they send goes through an
:class:`~collab.emitter.Emitter`, and what acts on a whole room (moderation,
closes, ``room:state``) is :class:`~collab.room_control.RoomControl`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from collab.activities import Activities
from collab.activity_control import ActivityControl
from collab.admission import Admission, Quota
from collab.auth import Authenticator
from collab.chat_handler import CHAT_SEND, ChatHandler
from collab.checkin_control import CheckinControl
from collab.connections import Connection, ConnectionTable
from collab.emitter import Emitter
from collab.errors import ExpiredToken, Revoked, UnknownEvent
from collab.extension_port import ExtensionPort, tell_document_events
from collab.extensions import ConnectEvent, DisconnectEvent, EventContext, Extensions
from collab.logs import describe_exception, user_ref
from collab.metrics import Metrics
from collab.offload import Offload
from collab.private_handler import PrivateHandler
from collab.reporting import Reporter
from collab.restore_control import RESTORE_QUERY
from collab.room_control import RoomControl, room_state
from collab.server_clock import with_server_time
from collab.sessions import ENVIRON_KEY, Session, SessionGuard
from collab.upstream import Event, emit_to, outbox_of, put_event, wait_connected
from collab.wire import ROOM_STATE, TEMPLATES_LIST, ack_error, ack_ok, error_payload, one_argument
from crdt.errors import CollabError
from crdt.text import quote
from crdt.types import RoomId, Update
from rooms.audit import AuditAction
from rooms.breakouts import BREAKOUT_EVENT, breakout_of
from rooms.document import Document
from rooms.errors import InternalError, RoomUnavailable
from rooms.identity import Identity
from rooms.moderation import MODERATION_EVENTS
from rooms.names import parse_namespace
from rooms.registry import RoomRegistry
from rooms.revocations import Revocations

__all__ = ["SyncServer"]

log = logging.getLogger("collab.sync")

SYNC_STEP_1 = "sync-step-1"
SYNC_UPDATE = "sync-update"
AWARENESS_UPDATE = "awareness-update"

#: How long the server waits for a client's sync-step-1 before sending its own.
INITIAL_SYNC_WAIT_S = 1.0


def _size(args: tuple[Any, ...]) -> int:
    """The bytes of an event's one binary argument (0 for anything else)."""
    return len(args[0]) if len(args) == 1 and isinstance(args[0], bytes) else 0


#: Facilitators' questions (RoomControl.on_query).
QUERY_EVENTS = (TEMPLATES_LIST, RESTORE_QUERY)


class SyncServer:
    """Registers the protocol's handlers on an ``AsyncServer`` (namespaces ``*``).

    The handlers decide; ``connections`` holds what they serve, ``emitter``
    sends, ``control`` acts on whole rooms. Whoever builds them (collab.app)
    starts ``reporter`` and ``revocations`` and stops them.
    """

    def __init__(
        self,
        sio: socketio.AsyncServer,
        registry: RoomRegistry,
        authenticator: Authenticator,
        metrics: Metrics,
        sessions: SessionGuard,
        extensions: Extensions,
        *,
        connections: ConnectionTable,
        emitter: Emitter,
        control: RoomControl,
        reporter: Reporter,
        revocations: Revocations,
        node_id: str = "",
    ) -> None:
        self.sio = sio
        self.registry = registry
        self.authenticator = authenticator
        self.metrics = metrics
        self.sessions = sessions
        #: The platform's hooks (collab.extensions).
        self.extensions = extensions
        self.table = connections
        #: The table's own dict: each event looks its sid up here, nothing between.
        self.connections = connections.by_sid
        self.emitter = emitter
        self.broadcaster = emitter.broadcaster
        self.control = control
        self.reporter = reporter
        #: Revocations (protocol.md §10.1), checked at each connect.
        self.revocations = revocations
        self.admission = Admission(registry.limits, sessions, metrics)
        #: Large payloads are checked off the event loop.
        self.offload = Offload()
        #: What extensions may use of this server.
        self.port = ExtensionPort(emitter, registry, node_id)
        #: Whether any extension listens to changes (checked once per update).
        self._on_change = extensions.wants("on_change")
        # The emitter's methods the handlers call per event, bound once: the
        # update path pays no attribute hop for the split.
        self._relay = emitter.relay
        self._to_members = emitter.to_members
        self._count_in = emitter.count_in
        self._changed = emitter.changed
        self._send_error = emitter.send_error
        self._refused = emitter.refused
        self._rate_limited = emitter.rate_limited
        #: ``chat:send`` (collab.chat_handler): stored before it is acknowledged.
        self.chat = ChatHandler(self.connections, registry, emitter, control, metrics, extensions)
        #: Raise hand, reactions, deleting one's own message (protocol.md §6.6).
        self.activities = Activities(connections, registry, emitter, control, reporter)
        #: The private line to the facilitators (protocol.md §6.8).
        self.private = PrivateHandler(connections, registry, emitter, self.chat)
        #: Check-in answers and results (collab.checkin_control, protocol.md §6.9).
        self.checkins = CheckinControl(connections, registry, emitter, control.checkin_vault)
        #: The timer, follow me, bring here and ``time:now`` (collab.activity_control).
        self.facilitation = ActivityControl(connections, emitter, control)
        handlers: dict[str, Callable[..., Awaitable[Any]]] = {
            "connect": self.on_connect,
            "disconnect": self.on_disconnect,
            SYNC_STEP_1: self.on_sync_step_1,
            SYNC_UPDATE: self.on_sync_update,
            AWARENESS_UPDATE: self.on_awareness_update,
            CHAT_SEND: self.chat.on_chat_send,
            **self.activities.handlers(),
            **{event: self.control.moderation_handler(event) for event in MODERATION_EVENTS},
            BREAKOUT_EVENT: self.control.moderation_handler(BREAKOUT_EVENT),
            **{event: self.control.query_handler(event) for event in QUERY_EVENTS},
            **self.facilitation.handlers(),
            **self.private.handlers(),
            **self.checkins.handlers(),
            "*": self.on_unknown,
        }
        for event, handler in handlers.items():
            sio.on(event, self._contained(event, handler), namespace="*")
        # Updates' attachments skip python-socketio (collab.sessions).
        sessions.fast_handlers = {
            SYNC_UPDATE: self._contained(SYNC_UPDATE, self.on_sync_update),
            AWARENESS_UPDATE: self._contained(AWARENESS_UPDATE, self.on_awareness_update),
            SYNC_STEP_1: self._contained(SYNC_STEP_1, self.on_sync_step_1),
        }
        registry.on_remote_update = self._remote_update
        registry.on_remote_awareness = self._remote_awareness
        registry.on_policy_change = self.control.policy_changed
        registry.on_remote_delete = self.control.remote_delete
        registry.on_remote_event = self.private.remote_events(self.activities.on_remote_event)
        registry.on_saving_change = self.control.saving_changed
        tell_document_events(registry, extensions)

    def _contained(
        self, event: str, handler: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        """``handler``, with every failure it did not expect contained: the
        client gets ``internal_error`` (its ack, or a refused connect), the
        log one line with the error's class (never its message, which may
        quote content), and the connection and its room go on. pycrdt's
        PanicException is a BaseException: ``except Exception`` misses it."""

        async def contained(*args: Any) -> Any:
            try:
                return await handler(*args)
            except socketio.exceptions.ConnectionRefusedError:
                raise
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - see above
                fault = InternalError("internal error")
                self.emitter.count_error(fault)
                # The exception's class and frames (never its message: it may
                # quote content), so a broken dependency upgrade is loud.
                log.error("handler failed event=%s error=%s", quote(event), describe_exception(exc))
                if event == "connect":
                    payload = error_payload(fault)
                    raise socketio.exceptions.ConnectionRefusedError(
                        payload["message"], payload
                    ) from None
                return ack_error(fault)

        return contained

    # -- changes made on other nodes -----------------------------------------------

    def _remote_update(self, doc: Document, update: bytes) -> None:
        if doc.members:
            self._to_members(doc, SYNC_UPDATE, update, time.perf_counter())

    def _remote_awareness(self, doc: Document, data: bytes) -> None:
        if doc.members:
            self._to_members(doc, AWARENESS_UPDATE, data, time.perf_counter())

    # -- connect / disconnect ------------------------------------------------

    async def on_connect(self, namespace: str, sid: str, environ: Any, auth: Any = None) -> None:
        session: Session | None = environ.get(ENVIRON_KEY)
        room_id: RoomId | None = None
        identity: Identity | None = None
        doc_name = ""
        reserved = False
        try:
            self.sessions.may_try(session)
            room_id, doc_name = parse_namespace(namespace)
            await self._revocations_loaded()
            # A breakout room admits the main room's tokens, to their group (§6.8).
            breakout = breakout_of(room_id)
            token_room = breakout[0] if breakout is not None else room_id
            try:
                identity = await self.extensions.authenticate(
                    auth, token_room
                ) or self.authenticator.authenticate(auth, token_room)
                # expires_at is exp plus the leeway, as the token check had it.
                if identity.expires_at is not None and identity.expires_at <= time.time():
                    raise ExpiredToken("the token has expired")
                self.check_revoked(identity, room_id)
                self.check_revoked(identity, token_room)
            except CollabError:
                self.sessions.failed(session)
                raise
            if breakout is not None:
                identity = await self.control.breakouts.admit(room_id, identity)
            self.admission.reserve(session, room_id, identity.user_id)
            reserved = True
            doc = await self.registry.join(room_id, doc_name, sid, identity)
        except CollabError as exc:
            if reserved and room_id is not None and identity is not None:
                self.admission.release(room_id, identity.user_id)
            self._connect_refused(exc, session, room_id, identity, doc_name)
            payload = error_payload(exc)
            raise socketio.exceptions.ConnectionRefusedError(payload["message"], payload) from None
        quota = Quota.fresh(self.registry.limits.rates, time.monotonic())
        token_identity, identity = identity, doc.policy.effective(identity)
        conn = Connection(
            sid,
            namespace,
            room_id,
            doc_name,
            identity,
            doc,
            quota,
            token_identity,
            session=session,
        )
        self.table.add(conn)
        if session is not None:
            self.sessions.joined(session, sid, namespace)
        if identity.expires_at is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, identity.expires_at - time.time())
            conn.expiry = loop.call_at(loop.time() + delay, self.control.on_expired, sid)
        self.metrics.connections.inc()
        self.reporter.audit(AuditAction.CONNECT, room=room_id, identity=identity, detail=doc_name)
        self.private.joined(conn)
        if log.isEnabledFor(logging.INFO):  # (user_ref is a keyed hash: not for nothing)
            log.info(
                "connected sid=%s room=%s doc=%s user=%s role=%s",
                sid,
                room_id,
                doc_name,
                user_ref(identity.user_id),
                identity.role.value,
            )
        # The server's step follows the answer to the client's (or the wait).
        loop = asyncio.get_running_loop()
        conn.server_step = loop.call_at(
            loop.time() + INITIAL_SYNC_WAIT_S, self._server_step_unasked, sid, namespace
        )
        if self.extensions.wants("on_connect"):
            self.extensions.notify("on_connect", ConnectEvent(room_id, doc_name, sid, identity))
        # A revocation that arrived while the room was loading closes it now.
        if self.revocations.match(sub=identity.user_id, jti=identity.token_id, room=room_id):
            self.emitter.spawn(self.control.close(conn, Revoked("the token was revoked")))

    async def _revocations_loaded(self) -> None:
        """The node's revocations, loaded once before any connect is accepted."""
        try:
            await self.revocations.ensure_loaded()
        except OSError as exc:
            log.warning("revocations unreadable: %s", exc)
            raise RoomUnavailable("the server cannot check revocations; try again") from None

    def check_revoked(self, identity: Identity, room_id: RoomId | None) -> None:
        """Revoked if an admin revoked ``identity``'s token or user (for
        ``room_id``; None: in any room)."""
        if self.revocations.match(sub=identity.user_id, jti=identity.token_id, room=room_id):
            raise Revoked("the token was revoked")

    def _connect_refused(
        self,
        exc: CollabError,
        session: Session | None,
        room_id: RoomId | None,
        identity: Identity | None,
        doc_name: str,
    ) -> None:
        """Count, audit and log a refused connect: the first of each kind per
        minute in full, the rest as one summary (a flood of bad tokens must
        not become a flood of rows and lines)."""
        self.emitter.count_error(exc)
        code = exc.code.value
        self.reporter.audit(
            AuditAction.CONNECT, room=room_id, identity=identity, outcome=code, detail=doc_name
        )
        address = session.address if session is not None else "-"
        self.reporter.line(
            ("connect refused", code, address),
            "connect refused code=%s room=%s address=%s",
            code,
            room_id or "-",
            quote(address),
        )

    # -- the server's half of the handshake (protocol.md §4) ------------------------
    #
    # Its own ``sync-step-1`` with an ack, then the full awareness state and
    # the room's state. It follows the answer to the client's own
    # ``sync-step-1`` (the y-socket.io provider reports ``synced`` when it
    # answers the server's step, and should hold the document by then), in
    # the same write, with no task; a client that waits for the server's step
    # first gets it after INITIAL_SYNC_WAIT_S.

    def _client_step_answered(self, conn: Connection) -> None:
        """The client's own step is being answered: the server's goes next,
        once the answer (the ack the handler's caller sends in this turn) is
        queued before it, and with it in one write."""
        if not conn.take_server_step():
            return
        outbox = outbox_of(self.sio, conn.sid, conn.namespace)
        if outbox is not None:
            outbox.hold_writes()
        asyncio.get_running_loop().call_soon(self._server_step, conn.sid, conn.namespace)

    def _server_step_unasked(self, sid: str, namespace: str) -> None:
        """The wait for the client's step is over: the server's goes now."""
        conn = self.connections.get(sid)
        if conn is not None and conn.take_server_step():
            self._server_step(sid, namespace)

    def _server_step(self, sid: str, namespace: str) -> None:
        """The server's step, put in the connection's outbox now (a
        collab.front session), else sent through engine.io by a task."""
        conn = self.connections.get(sid)
        if conn is None:
            return
        outbox = outbox_of(self.sio, sid, namespace)
        if outbox is None:
            self.emitter.spawn(self._send_server_step(conn))
            return
        for event in self._server_step_events(conn):
            put_event(self.sio, outbox, sid, namespace, event)

    async def _send_server_step(self, conn: Connection) -> None:
        if not await wait_connected(self.sio, conn.sid, conn.namespace):
            return
        for event, data, callback in self._server_step_events(conn):
            if self.connections.get(conn.sid) is not conn:
                return
            await emit_to(
                self.sio, event, data, to=conn.sid, namespace=conn.namespace, callback=callback
            )

    def _server_step_events(self, conn: Connection) -> list[Event]:
        sid = conn.sid

        async def on_client_diff(*args: Any) -> None:
            await self._receive_client_diff(sid, args)

        events: list[Event] = [
            (SYNC_STEP_1, conn.doc.state_vector(), on_client_diff),
            (AWARENESS_UPDATE, conn.doc.awareness_snapshot(), None),
        ]
        room = self.registry.rooms.get(conn.room_id)
        if room is not None:
            events.append((ROOM_STATE, with_server_time(room_state(room)), None))
        return events

    async def _receive_client_diff(self, sid: str, args: tuple[Any, ...]) -> None:
        """The client's answer to the server's ``sync-step-1``: as large as
        the document may be, checked off the event loop, and applied in
        parts of at most ``max_update_structs`` structs, each relayed, with
        the loop serving other connections between them (protocol.md §8.1)."""
        conn = self.connections.get(sid)
        if conn is None:
            return
        # A whole board always fits: the answer costs at most a full burst
        # (it comes once per connection, whose buckets start full).
        cost = min(_size(args), int(self.registry.limits.rates.update_bytes.burst))
        if not conn.quota.allow_update(time.monotonic(), cost):
            await self._rate_limited(conn, SYNC_STEP_1, "updates")
            return
        doc = conn.doc
        full = doc.full
        try:
            answer = doc.take_answer(one_argument(args), conn.identity)
            if answer is None:
                return
            parts = await self.offload.check(doc.check_answer, answer)
            for update in doc.receive_answer(parts, conn.identity):
                if update is not None:
                    self._count_in(update)
                    self._relay(conn, SYNC_UPDATE, update, time.perf_counter())
                    if self._on_change:
                        self._changed(conn.room_id, conn.doc_name, update, conn.identity)
                await asyncio.sleep(0)
                if self.connections.get(sid) is not conn:
                    return  # gone meanwhile: the rest is not applied
        except CollabError as exc:
            await self._send_error(conn, SYNC_STEP_1, exc)
        finally:
            if doc.bulk_deleted is not None:
                self.control.restore.bulk_deleted(conn.room_id, doc)
            if doc.full is not full:
                self.control.fullness_changed(conn.room_id)

    async def on_disconnect(self, namespace: str, sid: str, reason: Any = None) -> None:
        conn = self.table.remove(sid)
        self.broadcaster.forget(sid)
        if conn is None:
            return
        if conn.expiry is not None:
            conn.expiry.cancel()
        conn.take_server_step()  # gone: no step is due
        self.admission.release(conn.room_id, conn.identity.user_id)
        if conn.session is not None:
            self.sessions.left(conn.session, sid)
        self.metrics.connections.dec()
        removal = self.registry.leave(conn.doc, sid)
        self.reporter.audit(
            AuditAction.DISCONNECT,
            room=conn.room_id,
            identity=conn.identity,
            detail=conn.doc_name,
        )
        log.info("disconnected sid=%s room=%s doc=%s", sid, conn.room_id, conn.doc_name)
        if self.extensions.wants("on_disconnect"):
            self.extensions.notify(
                "on_disconnect", DisconnectEvent(conn.room_id, conn.doc_name, sid, conn.identity)
            )
        if removal is not None:
            self.registry.publish_awareness(conn.doc, removal)
        if removal is not None and conn.doc.members:
            # conn has left doc.members already: everyone still there gets it.
            self._to_members(conn.doc, AWARENESS_UPDATE, removal, time.perf_counter())

    # -- document events -------------------------------------------------------

    async def on_sync_step_1(self, namespace: str, sid: str, *args: Any) -> Update:
        """Answer a client's state vector with what it lacks (the ack)."""
        conn = self.connections.get(sid)
        if conn is None:
            return b"\x00\x00"
        self._client_step_answered(conn)
        if not conn.quota.events.take(time.monotonic()):
            await self._rate_limited(conn, SYNC_STEP_1, "events")
            return b"\x00\x00"
        try:
            return conn.doc.sync_step_1(one_argument(args))
        except CollabError as exc:
            await self._send_error(conn, SYNC_STEP_1, exc)
            # The provider applies whatever the ack carries: give it nothing.
            return b"\x00\x00"

    async def on_sync_update(self, namespace: str, sid: str, *args: Any) -> None:
        started = time.perf_counter()
        conn = self.connections.get(sid)
        if conn is None:
            return
        if not conn.quota.allow_update(time.monotonic(), _size(args)):
            await self._rate_limited(conn, SYNC_UPDATE, "updates")
            return
        doc = conn.doc
        full = doc.full
        try:
            update = doc.take_update(one_argument(args), conn.identity)
            if self.offload.in_place(update):  # the usual update: no coroutine for it
                summary = doc.check_update(update)
            else:
                summary = await self.offload.check(doc.check_update, update)
                if self.connections.get(sid) is not conn:
                    return  # gone while it was checked
            relay = doc.receive_checked(update, summary, conn.identity, checkpoint=False)
        except CollabError as exc:
            await self._send_error(conn, SYNC_UPDATE, exc)
            return
        finally:
            if doc.full is not full:
                self.control.fullness_changed(conn.room_id)
        if relay is not None:
            self._count_in(relay)
            self._relay(conn, SYNC_UPDATE, relay, started)
            if self._on_change:  # after the fan-out, never before it
                self._changed(conn.room_id, conn.doc_name, relay, conn.identity)
            if doc.bulk_deleted is not None:  # after the fan-out too: a restore point
                self.control.restore.bulk_deleted(conn.room_id, doc)
        if doc.checkpoint_due:
            # Encoding the document is an event-loop turn of its own, not
            # one more stall on top of the update's (protocol.md §8.1).
            await asyncio.sleep(0)
            doc.checkpoint_if_due()

    async def on_awareness_update(self, namespace: str, sid: str, *args: Any) -> None:
        started = time.perf_counter()
        conn = self.connections.get(sid)
        if conn is None:
            return
        if not conn.quota.allow_awareness(time.monotonic(), _size(args)):
            await self._rate_limited(conn, AWARENESS_UPDATE, "awareness")
            return
        try:
            relay = conn.doc.receive_awareness(
                one_argument(args), owner=sid, identity=conn.identity
            )
        except CollabError as exc:
            await self._send_error(conn, AWARENESS_UPDATE, exc)
            return
        if relay is not None:
            self._relay(conn, AWARENESS_UPDATE, relay, started)
            self.registry.publish_awareness(conn.doc, relay)

    # -- extension events -------------------------------------------------------

    async def on_unknown(self, event: str, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        conn = self.connections.get(sid)
        if conn is not None and not conn.quota.events.take(time.monotonic()):
            return ack_error(await self._rate_limited(conn, event[:64], "events"))
        if conn is not None and event in self.extensions.handlers:
            return await self._custom_event(conn, event, args)
        exc = UnknownEvent(f"unknown event {quote(event, limit=64)}")
        if conn is not None:
            await self._send_error(conn, event[:64], exc)
        return ack_error(exc)

    async def _custom_event(
        self, conn: Connection, event: str, args: tuple[Any, ...]
    ) -> dict[str, Any]:
        """An extension's event (protocol.md §6.5): ack ``{ok, result}``."""
        context = EventContext(conn.room_id, conn.doc_name, conn.sid, conn.identity, self.port)
        try:
            result = await self.extensions.handle(event, context, one_argument(args))
            return ack_ok(result=result)
        except CollabError as exc:
            self._refused(conn, event[:64], exc)
            return ack_error(exc)
