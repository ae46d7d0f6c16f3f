"""A Python client for collab: one connection keeps one pycrdt ``Doc`` in sync.

It speaks the same protocol as the y-socket.io JS provider (protocol.md §3–§4)::

    async with CollabClient("http://127.0.0.1:8000", "clinic-7/group-a",
                            auth={"name": "Ann"}) as board:
        board.doc.get("shapes", type=Map)["s1"] = {"type": "rect", "x": 10, "y": 10}
        await board.send_chat("hello")        # any document's connection may chat

Local changes to ``doc`` are sent as ``sync-update``; remote ones are applied
to it. On (re)connect both sides exchange state vectors, so edits made while
offline are sent when the connection comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import orjson
import socketio
from pycrdt import Doc, TransactionEvent

from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness
from crdt.types import DocName
from rooms.names import BOARD, namespace_for, validate_room_id

__all__ = ["CollabClient", "CollabClientError"]


class CollabClientError(Exception):
    """The server refused something; ``code`` is its error code (protocol.md §7)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CollabClient:
    """One document of one room, kept in sync with the server.

    Attributes: ``doc`` (the pycrdt Doc), ``synced`` (set once both sync
    steps completed on the current connection), ``errors`` (every
    ``collab:error`` payload received), ``awareness`` (remote client id →
    state).
    """

    def __init__(
        self,
        url: str,
        room: str,
        doc_name: str = BOARD,
        *,
        auth: dict[str, Any] | None = None,
        doc: Doc[Any] | None = None,
        reconnection: bool = True,
        transports: Sequence[str] = ("websocket",),
        max_message_bytes: int = 256 << 20,
    ) -> None:
        self.url = url.rstrip("/")
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
        self.awareness: dict[int, Any] = {}
        #: The room's moderation state, from the last ``room:state`` event.
        self.room_state: dict[str, Any] = {}
        self._awareness_clock = 0
        self._awareness_state: dict[str, Any] | None = None
        self._applying_remote = False
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._step1_answered = False
        self._step2_received = False
        # A document's whole state arrives in one frame (the answer to
        # sync-step-1): aiohttp's default cap of 4 MiB would refuse big boards.
        self._sio = socketio.AsyncClient(
            reconnection=reconnection,
            logger=False,
            websocket_extra_options={"max_msg_size": max_message_bytes},
        )
        self._subscription = self.doc.observe(self._on_local_change)
        ns = self.namespace
        self._sio.on("connect", self._on_connect, namespace=ns)
        self._sio.on("disconnect", self._on_disconnect, namespace=ns)
        self._sio.on("sync-step-1", self._on_sync_step_1, namespace=ns)
        self._sio.on("sync-update", self._on_sync_update, namespace=ns)
        self._sio.on("awareness-update", self._on_awareness_update, namespace=ns)
        self._sio.on("collab:error", self._on_error, namespace=ns)
        self._sio.on("room:state", self._on_room_state, namespace=ns)
        self._sio.on("connect_error", self._on_connect_error, namespace=ns)
        self._connect_error: dict[str, Any] | None = None

    # -- lifecycle -------------------------------------------------------------

    async def connect(self, *, timeout_s: float = 10.0) -> None:
        """Connect and wait until synced; raise CollabClientError if refused."""
        self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        try:
            await self._sio.connect(
                self.url,
                namespaces=[self.namespace],
                auth=self.auth,
                transports=self.transports,
                wait_timeout=timeout_s,
            )
        except socketio.exceptions.ConnectionError as exc:
            await self.close()
            data = self._connect_error
            if data is not None and "code" in data:
                raise CollabClientError(str(data["code"]), str(data.get("message", ""))) from None
            raise CollabClientError("connect_failed", str(exc)) from None
        await self.wait_synced(timeout_s=timeout_s)

    async def wait_synced(self, *, timeout_s: float = 10.0) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout_s)

    async def close(self, *, drain_timeout_s: float = 5.0) -> None:
        """Send what is queued, disconnect and stop; the Doc stays usable offline."""
        with contextlib.suppress(Exception):
            self.doc.unobserve(self._subscription)
        if self._sender is not None and self._sio.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), drain_timeout_s)
                # engine.io's disconnect closes the WebSocket without waiting
                # for its writer: let the writer send what is queued first.
                await asyncio.wait_for(self._sio.eio.queue.join(), drain_timeout_s)
        await self._sio.disconnect()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None

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
        return bool(self._sio.connected)

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

    async def call(self, event: str, payload: Any, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """Emit an extension event and return its ack; raise on ``ok: false``."""
        ack = await self._sio.call(event, payload, namespace=self.namespace, timeout=timeout_s)
        if not isinstance(ack, dict):
            raise CollabClientError("invalid_payload", f"unexpected ack {type(ack).__name__}")
        if not ack.get("ok"):
            error = ack.get("error") or {}
            raise CollabClientError(str(error.get("code")), str(error.get("message")))
        return ack

    async def emit_raw(self, event: str, *args: Any) -> None:
        """Send any event as-is (for tests of bad input)."""
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
                if self._sio.connected:
                    with contextlib.suppress(socketio.exceptions.BadNamespaceError):
                        await self._sio.emit("sync-update", update, namespace=self.namespace)
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
        self.synced.clear()
        self._step1_answered = self._step2_received = False

        async def on_diff(update: bytes) -> None:
            self._apply_remote(update)
            self._step2_received = True
            self._check_synced()
            await self._notify()

        await self._sio.emit(
            "sync-step-1", bytes(self.doc.get_state()), namespace=self.namespace, callback=on_diff
        )
        if self._awareness_state is not None:
            await self._send_awareness()

    async def _on_disconnect(self, reason: Any = None) -> None:
        self.synced.clear()
        self.awareness.clear()
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

    async def _on_room_state(self, payload: Any) -> None:
        if isinstance(payload, dict):
            self.room_state = payload
        await self._notify()

    async def _on_error(self, payload: Any) -> None:
        self.errors.append(payload if isinstance(payload, dict) else {"code": "unknown"})
        await self._notify()


def _json(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")
