"""A Python client for collab: one connection keeps one pycrdt ``Doc`` in sync.

It speaks the same protocol as the y-socket.io JS provider (protocol.md §3–§4)::

    async with CollabClient(["https://a.example", "https://b.example"], "clinic-7/group-a",
                            auth={"name": "Ann"}) as board:
        board.doc.get("shapes", type=Map)["s1"] = {"type": "rect", "x": 10, "y": 10}
        await board.send_chat("hello")        # any document's connection may chat

Local changes to ``doc`` are sent as ``sync-update``; remote ones are applied
to it. On every connect both sides exchange state vectors, so edits made while
offline are sent when the connection comes back.

A lost connection (or a failed connect) is followed by a connect to the next
URL, after a full-jitter exponential backoff (``Backoff``): a node that goes
away is replaced by another behind its own URL, with the same ``doc``.

An update the server refuses (protocol.md §7, §8) is not silently lost: the
refusal is kept in ``refusals``, and where the handshake can deliver what the
live path refused (an update over the per-update limit: the answer to the
server's ``sync-step-1`` may be as large as the document), the client
resyncs: it connects again, so the server takes the refused update from its
answer, and later edits that depend on it integrate. If that answer is
refused too, the client stops resyncing (``resync_refused``) instead of
reconnecting in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from enum import Enum
from types import TracebackType
from typing import Any

import orjson
import socketio
from pycrdt import Doc, Map, TransactionEvent

from collab.reconnect import (
    FINAL_CONNECT_CODES,
    RESYNC_CODES,
    TRANSITIONS,
    Backoff,
    ClientState,
)
from collab.upstream import SocketIOClient
from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness
from crdt.types import DocName
from rooms.chat_delete import CHAT_DELETE
from rooms.errors import InternalError
from rooms.hands import HAND_EVENT, META_HANDS_ROOT, RaisedHand, read_hands
from rooms.moderation import LOWER_HANDS_EVENT, NOTICE_EVENT
from rooms.names import BOARD, namespace_for, validate_room_id
from rooms.reactions import REACTION_SEND

# Backoff and ClientState live in collab.reconnect; they are part of this API.
__all__ = ["Backoff", "ClientState", "CollabClient", "CollabClientError"]

#: Event names of the wire (protocol.md §3, §6.2).
SYNC_STEP_1 = "sync-step-1"
SYNC_UPDATE = "sync-update"
#: The ``event`` of a ``collab:error`` that precedes a deliberate disconnect (§6.2).
DISCONNECT = "disconnect"
#: Codes of this client's own (not the server's): no server answered a connect
#: in time, or the connection dropped while ``reconnection`` is off.
CONNECT_FAILED = "connect_failed"
CONNECTION_LOST = "connection_lost"


class CollabClientError(Exception):
    """The server refused something; ``code`` is its error code (protocol.md §7).

    ``event`` names what was refused when the server said so (``sync-update``,
    ``sync-step-1``, ``disconnect``), or ``connect`` for a refused or failed
    connect (``code`` is then ``connect_failed`` when no server answered).
    """

    def __init__(self, code: str, message: str, event: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.event = event
        #: A refused event's whole ack (``call``), for what it carries besides the error.
        self.ack: dict[str, Any] = {}


class _End(Enum):
    """How a connection ended (``CollabClient._serve``)."""

    LOST = "lost"  # dropped: reconnect
    RESYNC = "resync"  # this client disconnected to resync
    TOLD = "told"  # the server closed it deliberately (§6.2)
    CLOSED = "closed"  # this side closed it otherwise


async def _first_of(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class CollabClient:
    """One document of one room, kept in sync with the server.

    ``url`` is one server URL or several: each connect goes to the next one
    after a lost connection or a failed attempt (all nodes of one deployment,
    sharing Redis). With ``reconnection`` (the default) the client keeps
    connecting, with ``backoff`` between attempts, until ``close()``, a
    refused connect the server would refuse again (``FINAL_CONNECT_CODES``)
    or a deliberate disconnect by the server (``collab:error`` with
    ``"event": "disconnect"``, §6.2).

    Attributes: ``doc`` (the pycrdt Doc, kept across connections), ``synced``
    (set once both sync steps completed on the current connection),
    ``errors`` (every ``collab:error`` payload received), ``refusals`` (the
    document updates the server refused, as ``CollabClientError``),
    ``awareness`` (remote client id → state), ``connects`` (connections
    made), ``attempts`` (connect attempts, failed ones included), ``state``,
    ``stop_reason`` (why it stopped reconnecting, if it did so on its own) and
    ``resync_refused`` (the refused handshake answer that stopped resyncing on
    this connection).
    """

    def __init__(
        self,
        url: str | Sequence[str],
        room: str,
        doc_name: str = BOARD,
        *,
        auth: dict[str, Any] | None = None,
        doc: Doc[Any] | None = None,
        reconnection: bool = True,
        backoff: Backoff | None = None,
        attempt_timeout_s: float = 10.0,
        transports: Sequence[str] = ("websocket",),
        max_message_bytes: int = 256 << 20,
    ) -> None:
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("CollabClient needs at least one URL")
        #: The server URLs, tried in turn; ``url`` is the current one.
        self.urls = [u.rstrip("/") for u in urls]
        self.url = self.urls[0]
        self.reconnection = reconnection
        self.backoff = backoff or Backoff()
        #: How long one connect attempt may take (a node that accepts TCP but
        #: does not answer, such as a stopped process, counts as failed).
        self.attempt_timeout_s = attempt_timeout_s
        #: Engine.IO transports, as python-socketio takes them ("polling" too).
        self.transports = list(transports)
        self.room = validate_room_id(room)
        self.doc_name = DocName(doc_name)
        self.namespace = namespace_for(self.room, self.doc_name)
        self.auth = dict(auth or {})
        # 32-bit client ids, as Yjs makes them (see crdt.engine_pycrdt).
        self.doc: Doc[Any] = doc if doc is not None else Doc(client_id=secrets.randbits(32))
        self.synced = asyncio.Event()
        self.errors: list[dict[str, Any]] = []
        self.refusals: list[CollabClientError] = []
        self.awareness: dict[int, Any] = {}
        #: The room's moderation state, from the last ``room:state`` event.
        self.room_state: dict[str, Any] = {}
        #: Events kept by :meth:`listen`, by name.
        self.received: dict[str, list[Any]] = {}
        self._listening: set[str] = set()
        self.connects = 0
        self.attempts = 0
        self.state = ClientState.NEW
        self.stop_reason: CollabClientError | None = None
        self.resync_refused: CollabClientError | None = None
        self._awareness_clock = 0
        self._awareness_state: dict[str, Any] | None = None
        self._applying_remote = False
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._closing = False
        # The current connection: its number, handshake, and what it sent.
        self._generation = 0
        self._step1_answered = False
        self._step2_received = False
        self._doc_updates_sent = 0
        self._open = False  # the namespace is connected
        self._answered = asyncio.Event()  # the namespace connected or was refused
        self._lost = asyncio.Event()
        self._lost_reason: str | None = None
        self._told_to_go: CollabClientError | None = None
        self._connect_error: dict[str, Any] | None = None
        # Resyncs (see the module docstring): one due at a time, spaced by
        # the backoff when they come in a row.
        self._resync_due = asyncio.Event()
        self._resyncs_in_row = 0
        self._last_resync_at = float("-inf")
        # A document's whole state arrives in one frame (the answer to
        # sync-step-1): aiohttp's default cap of 4 MiB would refuse big boards.
        # Reconnecting is this class's job (several URLs, resyncs), not
        # python-socketio's; nor is the application's SIGINT.
        self._sio = SocketIOClient(
            reconnection=False,
            logger=False,
            handle_sigint=False,
            websocket_extra_options={"max_msg_size": max_message_bytes},
        )
        self._subscription = self.doc.observe(self._on_local_change)
        ns = self.namespace
        self._sio.on("connect", self._on_connect, namespace=ns)
        self._sio.on("disconnect", self._on_disconnect, namespace=ns)
        self._sio.on(SYNC_STEP_1, self._on_sync_step_1, namespace=ns)
        self._sio.on(SYNC_UPDATE, self._on_sync_update, namespace=ns)
        self._sio.on("awareness-update", self._on_awareness_update, namespace=ns)
        self._sio.on("collab:error", self._on_error, namespace=ns)
        self._sio.on("room:state", self._on_room_state, namespace=ns)
        self._sio.on("connect_error", self._on_connect_error, namespace=ns)

    # -- lifecycle -------------------------------------------------------------

    async def connect(self, *, timeout_s: float = 10.0) -> None:
        """Connect and wait until synced.

        Tries the URLs in turn (with backoff, and with ``reconnection`` again
        and again) until one connects or ``timeout_s`` passes. Raises
        CollabClientError with the server's code if a server refused the
        connect, or ``connect_failed`` if none answered in time; the client
        is then closed. Once connected, the client reconnects by itself.
        """
        if self.state is not ClientState.NEW:
            raise RuntimeError("connect() is called once per client")
        loop = asyncio.get_running_loop()
        self._sender = loop.create_task(self._send_loop())
        self._runner = loop.create_task(self._run())
        synced = loop.create_task(self.synced.wait())
        try:
            await asyncio.wait(
                {synced, self._runner}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            synced.cancel()
        if self.synced.is_set():
            return
        error = self.stop_reason or CollabClientError(
            CONNECT_FAILED, f"not connected within {timeout_s} s", "connect"
        )
        await self.close()
        raise error

    async def wait_synced(self, *, timeout_s: float = 10.0) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout_s)

    async def close(self, *, drain_timeout_s: float = 5.0) -> None:
        """Send what is queued, disconnect and stop reconnecting; the Doc
        stays usable offline. Returns promptly whatever the client was doing
        (waiting to reconnect, connecting)."""
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(Exception):
            self.doc.unobserve(self._subscription)
        if self._sender is not None and self._open:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), drain_timeout_s)
                # engine.io's disconnect closes the WebSocket without waiting
                # for its writer: let the writer send what is queued first.
                await asyncio.wait_for(self._sio.eio.queue.join(), drain_timeout_s)
        for task in (self._runner, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._runner = self._sender = None
        await self._sio.disconnect()
        await self._sio.settle()
        if self.state is not ClientState.STOPPED:
            await self._enter(ClientState.STOPPED)

    async def __aenter__(self) -> CollabClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Whether the document's namespace is connected now."""
        return self._open

    # -- connecting, reconnecting, resyncing -------------------------------------

    async def _enter(self, state: ClientState) -> None:
        if state not in TRANSITIONS[self.state]:
            raise InternalError(f"client state {self.state.value} → {state.value}")
        self.state = state
        await self._notify()

    async def _run(self) -> None:
        """Connect, serve the connection until it ends, and connect again (to
        the next URL, after a backoff) until told to stop or closed."""
        loop = asyncio.get_running_loop()
        index = 0
        waits = 0  # backoff waits since the last connection that lasted
        failed = 0  # attempts in a row that failed
        while True:
            await self._enter(ClientState.CONNECTING)
            refused = await self._attempt(self.urls[index])
            if refused is not None:
                failed += 1
                # Before the first connection, a refusal is the caller's answer
                # (connect() raises it); later, only a final one stops.
                final = refused.code in FINAL_CONNECT_CODES or (
                    self.connects == 0 and refused.code != CONNECT_FAILED
                )
                if final or (not self.reconnection and failed >= len(self.urls)):
                    await self._stop(refused)
                    return
            else:
                failed = 0
                await self._enter(ClientState.CONNECTED)
                started = loop.time()
                end = await self._serve()
                if end is _End.RESYNC:
                    continue  # at once, to the same URL
                if end is _End.TOLD:
                    await self._stop(self._told_to_go)
                    return
                if end is _End.CLOSED:
                    await self._stop(None)
                    return
                if not self.reconnection:
                    await self._stop(CollabClientError(CONNECTION_LOST, "connection lost"))
                    return
                if loop.time() - started >= self.backoff.max_s:
                    waits = 0  # it lasted: start the backoff over
            index = (index + 1) % len(self.urls)
            await self._enter(ClientState.WAITING)
            await asyncio.sleep(self.backoff.delay(waits))
            waits += 1

    async def _stop(self, reason: CollabClientError | None) -> None:
        self.stop_reason = reason
        await self._enter(ClientState.STOPPED)

    async def _attempt(self, url: str) -> CollabClientError | None:
        """One connect attempt to ``url``: None once the document's namespace
        is connected, else why not."""
        await self._sio.settle()
        self.url = url
        self.attempts += 1
        self._connect_error = None
        self._answered.clear()
        self._lost.clear()
        self._lost_reason = None
        try:
            async with asyncio.timeout(self.attempt_timeout_s):
                # Without python-socketio's wait: it would not notice an
                # Engine.IO connection that ends before the namespace answers.
                await self._sio.connect(
                    url,
                    namespaces=[self.namespace],
                    auth=self.auth,
                    transports=self.transports,
                    wait=False,
                )
                await _first_of(self._answered, self._sio.ended)
        except (socketio.exceptions.ConnectionError, TimeoutError) as exc:
            reason = str(exc) or "timed out"
        else:
            if self._open:
                return None
            reason = "the connection ended before the namespace connected"
        # Closes what the attempt opened (a socket, its HTTP session).
        await self._sio.disconnect()
        await self._sio.settle()
        data = self._connect_error
        if data is not None and "code" in data:
            return CollabClientError(str(data["code"]), str(data.get("message", "")), "connect")
        return CollabClientError(CONNECT_FAILED, reason, "connect")

    async def _serve(self) -> _End:
        """Wait until the current connection ends; resync when one is due."""
        while True:
            await _first_of(self._lost, self._resync_due)
            if self._lost.is_set():
                self._resync_due.clear()  # the next handshake is the resync
                await self._sio.settle()
                if self._told_to_go is not None:
                    return _End.TOLD
                if self._lost_reason == self._sio.reason.SERVER_DISCONNECT:
                    self._told_to_go = CollabClientError(
                        "disconnected", "the server closed the connection", DISCONNECT
                    )
                    return _End.TOLD
                if self._lost_reason == self._sio.reason.CLIENT_DISCONNECT:
                    return _End.CLOSED
                return _End.LOST
            if await self._resync():
                return _End.RESYNC

    async def _resync(self) -> bool:
        """Disconnect, to connect again at once (protocol.md §4); True if it
        did. Not when this connection's handshake answer was refused."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_resync_at >= self.backoff.max_s:
            self._resyncs_in_row = 0
        if self._resyncs_in_row:
            # Resyncs in a row are spaced like reconnects: never a tight loop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._lost.wait(), self.backoff.delay(self._resyncs_in_row - 1)
                )
        self._resync_due.clear()
        if self._lost.is_set() or self.resync_refused is not None:
            return False
        self._resyncs_in_row += 1
        self._last_resync_at = loop.time()
        await self._sio.disconnect()
        await self._sio.settle()
        return True

    def _refused(self, error: CollabClientError) -> None:
        """A document update was refused: keep it, and resync if that helps."""
        self.refusals.append(error)
        if error.event == SYNC_STEP_1:
            # This connection's handshake was refused (the answer would pass
            # the document's size, say): resyncing would be refused again.
            self.resync_refused = error
            self._resync_due.clear()
            return
        if self._doc_updates_sent == 0 or self.resync_refused is not None:
            return  # not one of the document's updates (see emit_raw), or held
        if error.code in RESYNC_CODES:
            self._resync_due.set()

    # -- sending -------------------------------------------------------------

    async def send_chat(
        self, text: Any, *, client_message_id: str | None = None, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """Send a chat message; return the ack ``{ok, id, ts, duplicate}``.

        Raises CollabClientError with the server's code if it is refused.
        """
        cmid = client_message_id or uuid.uuid4().hex
        ack = await self.call(
            "chat:send", {"text": text, "clientMessageId": cmid}, timeout_s=timeout_s
        )
        return ack

    # -- session activities (protocol.md §6.6) ------------------------------------

    async def raise_hand(self, raised: bool = True, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """Raise (or lower) this user's hand: ``hand:raise``; the ack is
        ``{ok, raised, ts?}``. CollabClientError if refused."""
        return await self.call(HAND_EVENT, {"raised": raised}, timeout_s=timeout_s)

    async def lower_hands(
        self, user_id: str | None = None, *, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """A facilitator lowers ``user_id``'s hand, or every hand: ``mod:lower-hands``."""
        payload = {} if user_id is None else {"userId": user_id}
        return await self.call(LOWER_HANDS_EVENT, payload, timeout_s=timeout_s)

    def raised_hands(self) -> list[RaisedHand]:
        """The queue of raised hands, in raising order, as this client's
        document holds it: meaningful on a client of the room's ``meta``."""
        return read_hands(self.doc.get(META_HANDS_ROOT, type=Map).to_py() or {})

    async def send_reaction(self, kind: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """Send a reaction (``reaction:send``: thumbs-up, heart, clap, relate,
        slow-down); the room receives ``reaction`` events (see :meth:`listen`)."""
        return await self.call(REACTION_SEND, {"kind": kind}, timeout_s=timeout_s)

    async def delete_chat(self, message_id: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """Delete one's own chat message within the server's window: ``chat:delete``."""
        return await self.call(CHAT_DELETE, {"messageId": message_id}, timeout_s=timeout_s)

    async def set_notice(self, text: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """A facilitator sets the session notice (``""`` clears it): ``mod:notice``."""
        return await self.call(NOTICE_EVENT, {"text": text}, timeout_s=timeout_s)

    def listen(self, event: str) -> list[Any]:
        """Keep every ``event`` the server sends this connection (a room
        event, such as ``reaction``) from now on; return the list they are
        appended to, in arrival order (``wait_for`` sees each)."""
        received = self.received.setdefault(event, [])

        async def keep(payload: Any = None) -> None:
            received.append(payload)
            await self._notify()

        if event not in self._listening:
            self._listening.add(event)
            self._sio.on(event, keep, namespace=self.namespace)
        return received

    async def call(self, event: str, payload: Any, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """Emit an extension event and return its ack; raise on ``ok: false``,
        and with ``connection_lost`` as soon as the connection it went out on
        ends (its ack can no longer come; socket.io-client does the same)."""
        answer = asyncio.ensure_future(
            self._sio.call(event, payload, namespace=self.namespace, timeout=timeout_s)
        )
        ended = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait((answer, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            unanswered = not answer.done()
            if unanswered:  # the connection ended, or the caller cancelled
                answer.cancel()
        if unanswered:
            raise CollabClientError(
                CONNECTION_LOST, "the connection ended before the answer", event
            )
        ack = answer.result()
        if not isinstance(ack, dict):
            raise CollabClientError("invalid_payload", f"unexpected ack {type(ack).__name__}")
        if not ack.get("ok"):
            error = ack.get("error") or {}
            refused = CollabClientError(str(error.get("code")), str(error.get("message")))
            refused.ack = ack
            raise refused
        return ack

    async def emit_raw(self, event: str, *args: Any) -> None:
        """Send any event as-is (for tests of bad input). A refused
        ``sync-update`` sent this way does not make the client resync, unless
        the document sent updates on this connection too (the refusal does
        not say which update it answers)."""
        await self._sio.emit(event, args if len(args) != 1 else args[0], namespace=self.namespace)

    async def set_awareness(self, state: dict[str, Any] | None) -> None:
        """Publish this client's awareness state (None: leave)."""
        self._awareness_clock += 1
        self._awareness_state = state
        await self._send_awareness()

    async def _send_awareness(self) -> None:
        state = None if self._awareness_state is None else _json(self._awareness_state)
        entry = AwarenessEntry(int(self.doc.client_id), self._awareness_clock, state)
        await self._sio.emit(
            "awareness-update", encode_awareness([entry]), namespace=self.namespace
        )

    # -- waiting -------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
        """Wait until ``predicate()`` holds after some received event."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout_s)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- handlers -------------------------------------------------------------

    def _on_local_change(self, event: TransactionEvent) -> None:
        if not self._applying_remote:
            self._outbox.put_nowait(bytes(event.update))

    async def _send_loop(self) -> None:
        while True:
            update = await self._outbox.get()
            try:
                if self._open:
                    with contextlib.suppress(socketio.exceptions.BadNamespaceError):
                        await self._sio.emit(SYNC_UPDATE, update, namespace=self.namespace)
                        self._doc_updates_sent += 1
                # Offline: dropped here, sent by the next handshake's sync-step-1 ack.
            finally:
                self._outbox.task_done()

    def _apply_remote(self, update: bytes) -> None:
        self._applying_remote = True
        try:
            self.doc.apply_update(update)
        finally:
            self._applying_remote = False

    async def _on_connect(self) -> None:
        self._open = True
        self._answered.set()
        self.synced.clear()
        self._generation += 1
        generation = self._generation
        self.connects += 1
        self._step1_answered = self._step2_received = False
        self._doc_updates_sent = 0
        self._told_to_go = None
        # This connection's handshake offers everything again.
        self.resync_refused = None

        async def on_diff(update: bytes) -> None:
            if generation != self._generation:
                return  # the answer of an earlier connection's sync-step-1
            self._apply_remote(update)
            self._step2_received = True
            self._check_synced()
            await self._notify()

        await self._sio.emit(
            SYNC_STEP_1, bytes(self.doc.get_state()), namespace=self.namespace, callback=on_diff
        )
        if self._awareness_state is not None:
            await self._send_awareness()
        await self._notify()

    async def _on_disconnect(self, reason: Any = None) -> None:
        self._open = False
        self.synced.clear()
        self.awareness.clear()
        self._lost_reason = reason if isinstance(reason, str) else None
        self._lost.set()
        await self._notify()

    async def _on_sync_step_1(self, state_vector: bytes) -> bytes:
        diff = bytes(self.doc.get_update(state_vector))
        self._step1_answered = True
        self._check_synced()
        return diff

    def _check_synced(self) -> None:
        if self._step1_answered and self._step2_received:
            self.synced.set()

    async def _on_sync_update(self, update: bytes) -> None:
        self._apply_remote(update)
        await self._notify()

    async def _on_awareness_update(self, data: bytes) -> None:
        for entry in decode_awareness(data, max_entries=1 << 16, max_state_bytes=1 << 20):
            if entry.client_id == self.doc.client_id:
                continue
            if entry.state is None:
                self.awareness.pop(entry.client_id, None)
            else:
                self.awareness[entry.client_id] = entry.state_value()
        await self._notify()

    async def _on_connect_error(self, data: Any = None) -> None:
        # The server's CONNECT_ERROR carries {message, data: {code, message}}.
        if isinstance(data, dict):
            self._connect_error = data.get("data") if isinstance(data.get("data"), dict) else data
        self.synced.clear()
        self._answered.set()

    async def _on_room_state(self, payload: Any) -> None:
        if isinstance(payload, dict):
            self.room_state = payload
        await self._notify()

    async def _on_error(self, payload: Any) -> None:
        error = payload if isinstance(payload, dict) else {"code": "unknown"}
        self.errors.append(error)
        code, event = str(error.get("code")), str(error.get("event") or "")
        refused = CollabClientError(code, str(error.get("message", "")), event)
        if event == DISCONNECT:
            self._told_to_go = refused
        elif event in (SYNC_UPDATE, SYNC_STEP_1):
            self._refused(refused)
        await self._notify()


def _json(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")
