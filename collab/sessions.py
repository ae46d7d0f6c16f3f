"""Engine.IO sessions under guard: what one connection, or one address, may
open and send before anything reaches a document (protocol.md §8).

A :class:`Session` is one Engine.IO session (one WebSocket, or one
long-polling client); it may carry several Socket.IO namespaces (documents).
:class:`SessionGuard` sits between engine.io and python-socketio:

* it opens a Session per Engine.IO connect, refusing an address already at
  ``max_sessions_per_address``, and closes any session that has no document
  connected for ``connect_timeout_s`` (one that never sends a Socket.IO
  CONNECT, or leaves every document and stays);
* it looks at every message before python-socketio does: a binary frame no
  packet announced, a packet outside what collab's events use
  (:mod:`collab.packets`), and acknowledgements past their rate are refused;
* it counts refusals: every refused event (here, or in the handlers of
  collab.sync) takes one from the session's ``refusals`` bucket, and a
  session that runs it out is closed with ``rate_limited``;
* it keeps per-address counts of refused connects, so an address that keeps
  failing to authenticate is refused without its token being read;
* it hands a ``sync-update``, ``awareness-update`` or ``sync-step-1`` sent
  in the y-socket.io provider's form to its handler itself (header matched,
  attachment passed on, a ``sync-step-1`` acknowledged), and a client's
  BINARY_ACK in that form to its callback, skipping python-socketio's
  decoding and dispatch; any other packet goes through python-socketio;
* it adds every session to the server's heartbeat (collab.heartbeat) and
  ends a session's namespaces when it ends (upstream.SessionNamespaces);
* it runs ``chat:send`` and ``mod:*`` events in the session's *lane* (a
  queue and one task per session, so they stay in order among themselves)
  instead of in the session's read loop: they wait for the store, and with
  ``async_handlers=False`` a handler awaited in the read loop holds up every
  later event of the session (its drawing, its awareness, engine.io's pongs).
  At most :data:`LANE_MAX_EVENTS` wait: past that the read loop waits for
  room (a flood is slowed down as it always was; nothing is refused that
  would not have been). An event larger than ``lane_event_bytes`` (more than
  the longest chat message takes) runs inline, so what waits in a lane stays
  small. A closed session's lane finishes what it holds (a store write in
  flight is never cut short).

Fenced here (style.md §16): python-socketio registers its Engine.IO
handlers in ``eio.handlers`` under ``connect``, ``message`` and
``disconnect``, keeps a half-received binary packet in ``_binary_packet``
by Engine.IO session id, and hands the Engine.IO environ to its ``connect``
handler; engine.io refuses a connect whose handler returns something other
than None or True. tests/unit/test_borrowed.py fails if an upgrade moves
any of these.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import socketio

from collab.errors import InvalidPacket, RateLimited, TooManyConnections
from collab.heartbeat import Heartbeat
from collab.metrics import Metrics
from collab.polling import end_polling_session, is_polling
from collab.upstream import (
    SessionNamespaces,
    binary_packet_pending,
    drop_binary_packet,
    send_ack,
    socket_sid,
    take_ack,
)
from collab.wire import ERROR_EVENT, error_payload
from crdt.errors import CollabError
from rooms.ratelimit import Rate, TokenBucket

__all__ = [
    "ENVIRON_KEY",
    "LANE_MAX_EVENTS",
    "Session",
    "SessionGuard",
    "SessionLimits",
    "client_address",
]

log = logging.getLogger("collab.sessions")

#: Where the Session is kept in its Engine.IO environ (python-socketio passes
#: that environ to every namespace's connect handler).
ENVIRON_KEY = "collab.session"

_ACK_TYPES = ("3", "6")  # Socket.IO ACK, BINARY_ACK
_UNEXPECTED = "a packet a client may not send here"
_NAMESPACE = re.compile(r"^\d(?:\d+-)?(/[^,]*)")
#: A text EVENT packet for ``chat:send``, ``chat:delete``, the private line's
#: (``private:send``, ``private:threads``: they wait on the store),
#: ``checkin:answer`` or a ``mod:*`` action: these go to the session's lane.
#: (An event name written with JSON escapes runs inline: only slower for its
#: own sender.)
_LANE_EVENT = re.compile(
    r'^2(?:/[^,]*,)?\d*\["(?:chat:send|chat:delete|private:send|private:threads|checkin:answer|mod:[a-z-]+)"'
)
#: A ``sync-update``, ``awareness-update`` or ``sync-step-1`` as the
#: y-socket.io provider sends it: a BINARY_EVENT with one attachment (and,
#: for ``sync-step-1``, an ack id). Its attachment skips python-socketio
#: (SessionGuard._fast_update); any other form takes python-socketio's path.
_FAST_PREFIX = "51-/"
_FAST_HEADER = re.compile(
    r'51-(/[^,]*),(\d{1,9})?\["(sync-update|awareness-update|sync-step-1)",'
    r'\{"_placeholder":true,"num":0\}\]\Z'
)
#: A client's BINARY_ACK in the provider's form (its answer to the server's
#: ``sync-step-1``): its attachment goes straight to the callback.
_FAST_ACK_PREFIX = "61-/"
_FAST_ACK = re.compile(r'61-(/[^,]*),(\d{1,9})\[\{"_placeholder":true,"num":0\}\]\Z')
#: What ``Session.update_to`` names for an acknowledgement's attachment.
_ACK = "\x00ack"
#: The headers (as Engine.IO messages) and the attachments SessionGuard.at_once
#: lets be handled in the read: the provider's updates, sync steps and acks.
_FAST_UPDATE_MESSAGE = "4" + _FAST_PREFIX
_FAST_ACK_MESSAGE = "4" + _FAST_ACK_PREFIX
_AT_ONCE = frozenset(("sync-update", "awareness-update", "sync-step-1", _ACK))
#: Lane events a session may have waiting; past this its read loop waits.
LANE_MAX_EVENTS = 64


@dataclass(frozen=True, slots=True)
class SessionLimits:
    max_sessions_per_address: int = 256
    max_documents_per_session: int = 16
    max_failed_connects_per_min: int = 60
    connect_timeout_s: float = 10.0
    acks: Rate = Rate(10.0, 20)
    refusals: Rate = Rate(1.0, 60)
    #: The largest chat or moderation packet that goes to the lane (larger ones,
    #: refused anyway for their size, run inline).
    lane_event_bytes: int = 64 << 10


@dataclass(eq=False, slots=True)
class Session:
    """One Engine.IO session."""

    eio_sid: str
    address: str
    refusals: TokenBucket
    acks: TokenBucket
    #: Socket.IO sid → namespace, of the documents connected over this session.
    documents: dict[str, str] = field(default_factory=dict)
    deadline: asyncio.TimerHandle | None = None
    closing: bool = False
    #: Chat and moderation events waiting for their turn (None ends the lane).
    lane: asyncio.Queue[str | None] | None = None
    #: (namespace, Socket.IO sid, event, ack id) of a ``sync-update``,
    #: ``awareness-update`` or ``sync-step-1`` whose header came and whose
    #: attachment is the next message (SessionGuard._fast_update).
    update_to: tuple[str, str, str, int | None] | None = None


def client_address(peer: str, forwarded: str, trusted: tuple[Any, ...]) -> str:
    """The client's address: the ``peer``'s, or, when the peer is a trusted
    proxy, the last address of ``forwarded`` (an ``X-Forwarded-For`` header)
    that is not one. A hop that is not an IP address ends the walk (what is
    before it a client wrote itself)."""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded.split(",")]):
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            return peer
        if not _is_trusted(address, trusted):
            return address
    return peer


def _is_trusted(address: str, trusted: tuple[Any, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class SessionGuard:
    """The Engine.IO sessions of one server, and the limits on them."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        limits: SessionLimits,
        metrics: Metrics,
        *,
        trusted_proxies: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sio = sio
        self.limits = limits
        self.metrics = metrics
        self.clock = clock
        self.trusted = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)
        self.sessions: dict[str, Session] = {}
        self.per_address: dict[str, int] = {}
        self._failures: dict[str, TokenBucket] = {}
        per_min = limits.max_failed_connects_per_min
        self._failure_rate = Rate(per_min / 60.0, per_min)
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The ``sync-update``, ``awareness-update`` and ``sync-step-1``
        #: handlers (collab.sync, contained), for the events that skip
        #: python-socketio (_fast_update).
        self.fast_handlers: dict[str, Callable[..., Awaitable[Any]]] = {}
        #: How many updates took that way, and how many clients' acknowledgements.
        self.fast_updates = 0
        self.fast_acks = 0
        #: Engine.IO's pings for every session (collab.heartbeat), once the
        #: app has made it; without one, engine.io pings as it does itself.
        self.heartbeat: Heartbeat | None = None
        #: Lane tasks, also of sessions already closed (they finish what they hold).
        self._lanes: set[asyncio.Task[None]] = set()
        handlers = sio.eio.handlers
        self._on_connect: Callable[..., Awaitable[Any]] = handlers["connect"]
        self._on_message: Callable[..., Awaitable[Any]] = handlers["message"]
        #: The namespaces of each session: its end disconnects those only.
        self.namespaces = SessionNamespaces(sio)
        handlers["connect"] = self.eio_connect
        handlers["message"] = self.eio_message
        handlers["disconnect"] = self.eio_disconnect

    # -- engine.io events --------------------------------------------------------

    async def eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        request = environ.get("aiohttp.request")  # engine.io's aiohttp driver puts it there
        if request is not None:
            peer = str(request.remote or "-")
            forwarded = request.headers.get("X-Forwarded-For", "")
        else:  # collab.front's environ: the peer's own address
            peer = str(environ.get("REMOTE_ADDR") or "-")
            forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        address = client_address(peer, forwarded, self.trusted) if peer != "-" else "-"
        if self.per_address.get(address, 0) >= self.limits.max_sessions_per_address:
            self.metrics.refused("sessions_per_address")
            return error_payload(
                TooManyConnections(f"more than {self.limits.max_sessions_per_address} sessions")
            )
        now = self.clock()
        session = Session(
            eio_sid,
            address,
            refusals=self.limits.refusals.bucket(now),
            acks=self.limits.acks.bucket(now),
        )
        self.sessions[eio_sid] = session
        self.per_address[address] = self.per_address.get(address, 0) + 1
        environ[ENVIRON_KEY] = session
        self._start_deadline(session)
        answer = await self._on_connect(eio_sid, environ)
        if self.heartbeat is not None and (answer is None or answer is True):
            self.heartbeat.add(eio_sid)
        return answer

    async def eio_disconnect(self, eio_sid: str, *args: Any) -> None:
        if self.heartbeat is not None:
            self.heartbeat.forget(eio_sid)
        session = self.sessions.pop(eio_sid, None)
        if session is not None:
            session.closing = True
            _end_lane(session)
            if session.deadline is not None:
                session.deadline.cancel()
            left = self.per_address.get(session.address, 1) - 1
            if left > 0:
                self.per_address[session.address] = left
            else:
                self.per_address.pop(session.address, None)
        await self.namespaces.end_session(eio_sid, *args)

    async def eio_message(self, eio_sid: str, data: Any) -> None:
        session = self.sessions.get(eio_sid)
        if session is None or session.closing:
            return
        if session.update_to is not None:  # the attachment of an update's header
            await self._fast_update(session, data)
            return
        if isinstance(data, str):
            if data[:1] in _ACK_TYPES and not session.acks.take(self.clock()):
                await self.refuse(session, RateLimited("acknowledgements past their rate"))
                return
            if (
                data.startswith(_FAST_PREFIX)
                and self.fast_handlers
                and self._take_update_header(session, data)
            ):
                return
            if data.startswith(_FAST_ACK_PREFIX) and self._take_ack_header(session, data):
                return
        elif not binary_packet_pending(self.sio, eio_sid):
            await self.refuse(session, InvalidPacket("a binary frame no packet announced"))
            return
        if (
            isinstance(data, str)
            and len(data) <= self.limits.lane_event_bytes
            and _LANE_EVENT.match(data)
        ):
            await self._to_lane(session, data)
            return
        await self._handle(session, data)

    def at_once(self, eio_sid: str, data: Any) -> Coroutine[Any, Any, None] | bool:
        """What of ``data`` (an Engine.IO message as the WebSocket carries
        it) may be handled within the read that brought it, before a task
        is made for it (collab.ws_connection): False if it takes the usual
        way (:meth:`eio_message`); True if taking it was all (an update's,
        an awareness update's or a sync-step-1's header in the provider's
        form: its attachment is the next message); else the coroutine that
        handles it (that attachment, or a client's BINARY_ACK header and
        its attachment), which the caller runs. Their handling (the sync
        handlers, the callback of the server's sync-step-1) needs no task
        until it first waits: it takes no ``asyncio.timeout`` before that.
        An update's usually does not wait at all, so a small room's update
        costs no task and no loop turn of its own, and goes to its handler
        without Engine.IO's and Socket.IO's dispatch."""
        session = self.sessions.get(eio_sid)
        if session is None or session.closing:
            return False
        taken = session.update_to
        if taken is not None:
            if taken[2] in _AT_ONCE and isinstance(data, bytes):
                return self._fast_update(session, data)
            return False
        if not isinstance(data, str):
            return False
        if data.startswith(_FAST_UPDATE_MESSAGE):
            return bool(self.fast_handlers) and self._take_update_header(session, data, 1)
        if data.startswith(_FAST_ACK_MESSAGE):  # its rate, then its header: eio_message's
            return self.eio_message(eio_sid, data[1:])
        return False

    def _take_update_header(self, session: Session, data: str, at: int = 0) -> bool:
        """Whether ``data`` (from offset ``at``) is a ``sync-update``,
        ``awareness-update`` or ``sync-step-1`` header in the provider's
        form, taken here (see :meth:`_take_fast`)."""
        found = _FAST_HEADER.match(data, at)
        if found is None:
            return False
        ack = found.group(2)
        return self._take_fast(session, found.group(1), found.group(3), int(ack) if ack else None)

    def _take_ack_header(self, session: Session, data: str) -> bool:
        """Whether ``data`` is a client's BINARY_ACK header in the provider's
        form, taken here (see :meth:`_take_fast`)."""
        found = _FAST_ACK.match(data)
        return found is not None and self._take_fast(
            session, found.group(1), _ACK, int(found.group(2))
        )

    def _take_fast(self, session: Session, namespace: str, event: str, ack: int | None) -> bool:
        """Take a header of a namespace the session joined: its attachment,
        the next message, goes straight to its handler or callback
        (:meth:`_fast_update`). False (python-socketio's path, as always)
        while another packet waits for its attachment or for a namespace
        the session has not joined."""
        if binary_packet_pending(self.sio, session.eio_sid):
            return False
        sid = socket_sid(self.sio, session.eio_sid, namespace)
        if sid is None:
            return False
        session.update_to = (namespace, sid, event, ack)
        return True

    async def _fast_update(self, session: Session, data: Any) -> None:
        """An attachment, to its handler as python-socketio would hand it
        over (``handler(namespace, sid, payload)``, then the ack), or to its
        ack callback, without decoding the header as JSON, rebuilding the
        packet and looking the handler up: an update's fixed cost, what a
        small room pays most."""
        namespace, sid, event, ack = session.update_to or ("", "", "", None)
        session.update_to = None
        if event == _ACK and ack is not None:
            self.fast_acks += 1
            await take_ack(self.sio, sid, ack, [data])
            return
        handler = self.fast_handlers.get(event)
        if handler is not None and self.sio.manager.is_connected(sid, namespace):
            self.fast_updates += 1
            answer = await handler(namespace, sid, data)
            if ack is not None:  # as python-socketio acknowledges an event
                await send_ack(self.sio, session.eio_sid, namespace, ack, answer)

    async def _handle(self, session: Session, data: Any) -> None:
        try:
            await self._on_message(session.eio_sid, data)
        except (InvalidPacket, ValueError) as exc:
            # python-socketio's own refusals are ValueErrors: a CONNECT_ERROR
            # or a binary packet for a namespace the client is not in.
            drop_binary_packet(self.sio, session.eio_sid)
            refusal = exc if isinstance(exc, InvalidPacket) else InvalidPacket(_UNEXPECTED)
            await self.refuse(session, refusal, _namespace_of(data))

    # -- the lane ----------------------------------------------------------------

    async def _to_lane(self, session: Session, data: str) -> None:
        lane = session.lane
        if lane is None:
            lane = session.lane = asyncio.Queue(maxsize=LANE_MAX_EVENTS)
            task = asyncio.get_running_loop().create_task(self._run_lane(session, lane))
            self._lanes.add(task)
            task.add_done_callback(self._lanes.discard)
        await lane.put(data)  # waits while the lane is full: a flood reads no faster
        # One turn for an idle lane to start the event: what it decides without
        # waiting (a lock, an end, a chat message appended) is then decided
        # before the session's next event, as it was in the read loop.
        await asyncio.sleep(0)

    async def _run_lane(self, session: Session, lane: asyncio.Queue[str | None]) -> None:
        """Handle the session's lane events one at a time, in arrival order,
        until the session is closed and the lane empty (what was queued runs;
        python-socketio drops events of namespaces gone since)."""
        while (data := await lane.get()) is not None:
            try:
                await self._handle(session, data)
            except Exception as exc:  # noqa: BLE001 - logged as the read loop logs it
                log.error("event failed sid=%s error=%s", session.eio_sid, type(exc).__name__)
            if session.closing and lane.empty():
                return

    async def drain(self, *, timeout_s: float) -> None:
        """Close every session's lane to new events and wait (up to
        ``timeout_s``) for the events they hold, chat writes in flight among
        them (a stop, before the final flush)."""
        for session in self.sessions.values():
            session.closing = True
            _end_lane(session)
        if self._lanes:
            await asyncio.wait(set(self._lanes), timeout=timeout_s)

    # -- documents -------------------------------------------------------------

    def admit_document(self, session: Session) -> None:
        """TooManyConnections if the session has as many documents as allowed."""
        if len(session.documents) >= self.limits.max_documents_per_session:
            self.metrics.refused("documents_per_session")
            raise TooManyConnections(
                f"a session may join {self.limits.max_documents_per_session} documents"
            )

    def joined(self, session: Session, sid: str, namespace: str) -> None:
        session.documents[sid] = namespace
        if session.deadline is not None:
            session.deadline.cancel()
            session.deadline = None

    def left(self, session: Session, sid: str) -> None:
        session.documents.pop(sid, None)
        if not session.documents and not session.closing:
            self._start_deadline(session)

    def _start_deadline(self, session: Session) -> None:
        if session.deadline is not None:
            session.deadline.cancel()
        loop = asyncio.get_running_loop()
        session.deadline = loop.call_later(
            self.limits.connect_timeout_s, self._deadline_passed, session
        )

    def _deadline_passed(self, session: Session) -> None:
        session.deadline = None
        if session.documents or session.closing or session.eio_sid not in self.sessions:
            return
        self.metrics.refused("connect_timeout")
        log.info("session closed: no document connected sid=%s", session.eio_sid)
        self.spawn(self._close_session(session))

    # -- refused connects per address ------------------------------------------------

    def may_try(self, session: Session | None) -> None:
        """RateLimited if the session's address ran out of failed connects."""
        if session is None:
            return
        bucket = self._failures.get(session.address)
        if bucket is not None and bucket.level(self.clock()) < 1:
            self.metrics.refused("failed_connects")
            raise RateLimited("too many refused connects from this address; wait a minute")

    def failed(self, session: Session | None) -> None:
        """Count a refused connect (bad, missing or expired token) against its address."""
        if session is None:
            return
        now = self.clock()
        bucket = self._failures.get(session.address)
        if bucket is None:
            if len(self._failures) >= 10_000:
                self._forget_recovered(now)
            bucket = self._failures[session.address] = self._failure_rate.bucket(now)
        bucket.take(now)

    def _forget_recovered(self, now: float) -> None:
        full = self._failure_rate.burst
        for address, bucket in list(self._failures.items()):
            if bucket.level(now) >= full:
                del self._failures[address]

    # -- refusals ----------------------------------------------------------------

    async def refuse(
        self, session: Session, exc: CollabError, namespace: str | None = None
    ) -> None:
        """Answer a refusal made here and count it against the session. The
        answer goes to the namespace the packet named if it is connected,
        else (a stray attachment names none) to each document of the session."""
        self.metrics.count_error(exc)
        self.metrics.refused("packets" if isinstance(exc, InvalidPacket) else "acks")
        log.info(
            "refused sid=%s code=%s reason=%s", session.eio_sid, exc.code.value, type(exc).__name__
        )
        if namespace is not None and namespace in session.documents.values():
            targets = [(s, n) for s, n in session.documents.items() if n == namespace]
        elif namespace is None:
            targets = list(session.documents.items())
        else:
            targets = []
        payload = error_payload(exc)
        for sid, target in targets:
            await self.sio.emit(ERROR_EVENT, payload, to=sid, namespace=target)
        self.strike(session)

    def strike(self, session: Session) -> None:
        """One refusal more; close the session once it has run out of them."""
        if session.closing or session.refusals.take(self.clock()):
            return
        self.metrics.refused("refusals")
        log.info("session closed: too many refusals sid=%s", session.eio_sid)
        self.spawn(self._close_session(session, RateLimited("too many refused events")))

    async def _close_session(self, session: Session, reason: CollabError | None = None) -> None:
        """Tell each document why (``collab:error`` with ``event: "disconnect"``),
        then end the Engine.IO session."""
        if session.closing:
            return
        session.closing = True
        if reason is not None:
            payload = error_payload(reason, event="disconnect")
            for sid, namespace in list(session.documents.items()):
                await self.sio.emit(ERROR_EVENT, payload, to=sid, namespace=namespace)
        socket = self.sio.eio.sockets.get(session.eio_sid)
        if socket is not None and is_polling(socket):
            await end_polling_session(self.sio.eio, session.eio_sid, socket)
        else:  # a WebSocket: its writer sends CLOSE and closes it (collab.transport)
            await self.sio.eio.disconnect(session.eio_sid)

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _end_lane(session: Session) -> None:
    """Wake a closing session's idle lane so that it ends (a busy one ends
    when it finds itself empty)."""
    if session.lane is not None and not session.lane.full():
        session.lane.put_nowait(None)


def _namespace_of(data: Any) -> str | None:
    if not isinstance(data, str):
        return None
    match = _NAMESPACE.match(data)
    return match.group(1) if match else None
