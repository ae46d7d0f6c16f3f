"""A lean load-generator client: Socket.IO over one aiohttp WebSocket, or the
y-websocket protocol for the Node peer. Hundreds fit in one process; no
per-connection Socket.IO machinery (no AsyncClient, no queues, no tasks
beyond one reader)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bench.wire import (
    SIO_ACK,
    SIO_BINARY_ACK,
    SIO_CONNECT,
    SIO_CONNECT_ERROR,
    SIO_EVENT,
    binary_event_frames,
    connect_frame,
    event_frame,
    parse_text_frame,
    yws_decode,
    yws_sync_step_1,
    yws_sync_step_2,
    yws_update,
)

__all__ = ["LeanSocketIO", "LeanYWebsocket", "OnUpdate"]

#: Called with (payload, arrival time in monotonic ns) for every received update.
OnUpdate = Callable[[bytes, int], None]

_EMPTY_UPDATE = b"\x00\x00"
#: The state vector of a document holding nothing.
_EMPTY_STATE_VECTOR = b"\x00"


class _LeanConnection:
    """What both lean clients share: one WebSocket and its reader task."""

    ws: aiohttp.ClientWebSocketResponse | None
    _reader: asyncio.Task[None] | None

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class LeanSocketIO(_LeanConnection):
    """One Socket.IO connection to one namespace, WebSocket transport only."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        namespace: str,
        auth: dict[str, Any] | None = None,
        on_update: OnUpdate | None = None,
        answer: bytes = _EMPTY_UPDATE,
    ) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.auth = auth or {}
        self.on_update = on_update
        #: What it answers the server's sync-step-1 with (default: nothing).
        self.answer = answer
        #: Set once it has answered the server's sync-step-1.
        self.answered = asyncio.Event()
        #: Set once the server answered its sync-step-1 (the provider's ``synced``).
        self.synced = asyncio.Event()
        #: The WebSocket close code, once the server closed it.
        self.close_code: int | None = None
        #: Set once the connection has ended.
        self.ended = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next_ack = 1
        self._connected = asyncio.get_running_loop().create_future()
        self._pending_event: Any = None
        self._pending_ack: int | None = None
        self._ack_waiting: asyncio.Future[Any] | None = None
        self.errors: list[Any] = []

    async def open(self, timeout_s: float = 30.0) -> None:
        endpoint = self.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await self.session.ws_connect(endpoint, autoping=False, max_msg_size=0)
        hello = await asyncio.wait_for(self.ws.receive(), timeout_s)
        if not isinstance(hello.data, str) or not hello.data.startswith("0"):
            raise ConnectionError(f"unexpected Engine.IO open: {hello.data!r}")
        await self.ws.send_str(connect_frame(self.namespace, self.auth))
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await asyncio.wait_for(self._connected, timeout_s)

    async def _read(self) -> None:
        assert self.ws is not None
        ws = self.ws
        on_update = self.on_update
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    now = time.monotonic_ns()
                    event = self._pending_event
                    self._pending_event = None
                    if event == "sync-update":
                        if on_update is not None:
                            on_update(msg.data, now)
                    elif event == "sync-step-1" and self._pending_ack is not None:
                        # Answer the server's step (by default like a client
                        # holding nothing).
                        ack = self._pending_ack
                        self._pending_ack = None
                        await ws.send_str(
                            f"461-{self.namespace},{ack}" + '[{"_placeholder":true,"num":0}]'
                        )
                        await ws.send_bytes(self.answer)
                        self.answered.set()
                    elif event == "__ack__" and self._ack_waiting is not None:
                        self._ack_waiting.set_result(msg.data)
                        self._ack_waiting = None
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                text = msg.data
                if text == "2":
                    await ws.send_str("3")
                    continue
                if text.startswith("451-"):  # the hot path: skip JSON unless needed
                    name_start = text.index("[") + 2
                    self._pending_event = text[name_start : text.index('"', name_start)]
                    comma = text.index(",")
                    digits = text[comma + 1 : text.index("[")]
                    self._pending_ack = int(digits) if digits else None
                    continue
                packet = parse_text_frame(text)
                if packet is None:
                    continue
                if packet.kind == SIO_CONNECT and not self._connected.done():
                    self._connected.set_result(packet.data)
                elif packet.kind == SIO_CONNECT_ERROR and not self._connected.done():
                    self._connected.set_exception(ConnectionError(str(packet.data)))
                elif packet.kind == SIO_BINARY_ACK and packet.ack_id in self._acks:
                    self._pending_event = "__ack__"  # the value is the next frame
                    self._ack_waiting = self._acks.pop(packet.ack_id)
                elif packet.kind == SIO_ACK and packet.ack_id in self._acks:
                    self._acks.pop(packet.ack_id).set_result(packet.data)
                elif packet.kind == SIO_EVENT and packet.data and packet.data[0] == "collab:error":
                    self.errors.append(packet.data[1])
        except (aiohttp.ClientError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.close_code = ws.close_code
            self.ended.set()
            if not self._connected.done():
                self._connected.set_exception(ConnectionError("closed before connecting"))
            for waiting in self._acks.values():
                if not waiting.done():
                    waiting.set_exception(ConnectionError("closed before the answer"))

    async def start_sync(self) -> None:
        """Send sync-step-1 with an empty state vector, as y-socket.io's
        provider does once connected. The server answers it (:attr:`synced`)
        and sends its own step, which :attr:`answered` waits for."""
        assert self.ws is not None
        ack_id = self._next_ack
        self._next_ack += 1
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        answer.add_done_callback(self._synced)
        self._acks[ack_id] = answer
        header, body = binary_event_frames(
            self.namespace, "sync-step-1", _EMPTY_STATE_VECTOR, ack_id
        )
        await self.ws.send_str(header)
        await self.ws.send_bytes(body)

    def _synced(self, answer: asyncio.Future[Any]) -> None:
        if not answer.cancelled() and answer.exception() is None:
            self.synced.set()

    async def send_update(self, payload: bytes) -> None:
        assert self.ws is not None
        header, body = binary_event_frames(self.namespace, "sync-update", payload)
        await self.ws.send_str(header)
        await self.ws.send_bytes(body)

    async def call(self, event: str, data: Any, timeout_s: float = 30.0) -> Any:
        """Emit a JSON event with an ack; return the ack's data."""
        assert self.ws is not None
        ack_id = self._next_ack
        self._next_ack += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        await self.ws.send_str(event_frame(self.namespace, event, data, ack_id))
        reply = await asyncio.wait_for(future, timeout_s)
        return reply[0] if isinstance(reply, list) and len(reply) == 1 else reply

    async def sync_full_state(self, timeout_s: float = 60.0) -> int:
        """Ask for the whole document (sync-step-1 with an empty state vector);
        return the size of the answer in bytes."""
        assert self.ws is not None
        ack_id = self._next_ack
        self._next_ack += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        header, body = binary_event_frames(self.namespace, "sync-step-1", b"\x00", ack_id)
        await self.ws.send_str(header)
        await self.ws.send_bytes(body)
        state = await asyncio.wait_for(future, timeout_s)
        return len(state) if isinstance(state, bytes | bytearray) else 0


class LeanYWebsocket(_LeanConnection):
    """One y-websocket connection (the Node peer's protocol)."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, room: str, on_update: OnUpdate | None = None
    ) -> None:
        self.session = session
        self.url = url.rstrip("/").replace("http", "ws", 1) + "/" + room
        self.on_update = on_update
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self.errors: list[Any] = []
        #: Set once it has answered the server's sync step 1.
        self.answered = asyncio.Event()
        #: Set once the server answered its sync step 1 (the provider's ``synced``).
        self.synced = asyncio.Event()
        #: Set once the connection has ended.
        self.ended = asyncio.Event()

    async def open(self, timeout_s: float = 30.0) -> None:
        """Connect and, as y-websocket's provider does once open, send sync
        step 1 (an empty state vector; no awareness, like the Socket.IO
        client). The server answers it and sends its own step 1."""
        self.ws = await asyncio.wait_for(
            self.session.ws_connect(self.url, autoping=True, max_msg_size=0), timeout_s
        )
        await self.ws.send_bytes(yws_sync_step_1(_EMPTY_STATE_VECTOR))
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        on_update = self.on_update
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                now = time.monotonic_ns()
                decoded = yws_decode(msg.data)
                if decoded is None or decoded[0] != 0:
                    continue
                if decoded[1] == 2 and on_update:
                    on_update(decoded[2], now)
                elif decoded[1] == 1:
                    self.synced.set()
                elif decoded[1] == 0 and not self.answered.is_set():
                    # The server's sync step 1: answer like a client holding nothing.
                    await self.ws.send_bytes(yws_sync_step_2(_EMPTY_UPDATE))
                    self.answered.set()
        except (aiohttp.ClientError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.ended.set()

    async def send_update(self, payload: bytes) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(yws_update(payload))
