"""collab's own WebSocket server for Engine.IO sessions opened on a WebSocket.

A client that opens its Engine.IO session straight on a WebSocket
(``GET /socket.io/?EIO=4&transport=websocket``, as collab's Python client,
load generators and most native clients do) is served here, without
aiohttp's request machinery: :class:`Connection` is the connection's one
asyncio protocol from its first byte. It reads the request head itself; a
request it does not serve (any other path, long-polling, an upgrade from
long-polling, an origin to check against a list it does not hold, a
malformed or oversized head, permessage-deflate when that setting is on)
is handed to aiohttp untouched, with the bytes read so far, and aiohttp
answers it as it always has. One it serves gets Engine.IO's open exactly as
python-engineio's ``_handle_connect`` gives it (the session is python-
engineio's ``AsyncSocket``; python-socketio and collab.sessions see no
difference), then ``101 Switching Protocols``.

What an open connection costs (BENCHMARKS.md, ``bench conns``): this
object, its transport, the Engine.IO socket with its :class:`Outbox`, and
a small environ. No request object, no reader or writer task, no suspended
coroutine: frames are parsed in ``data_received``
(collab.ws_frames.FrameReader, with the frame limits of
collab.transport.FrameLimits), and a task runs only while messages wait to
be handled, in order, one at a time. Packets are written to the transport
at the end of the loop turn they are sent in, all of the turn's in one
write (an event and its attachment, the 101 and the OPEN); while the
transport pauses writing (its buffer past its high-water mark) they wait in
the :class:`Outbox`, which is what collab.broadcast's slow-consumer check
counts.

docs/architecture.md §7 ("Many idle connections").
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
import logging
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

import engineio
from aiohttp import web

from collab.logs import WebSocketAccessLog, describe_exception
from collab.metrics import Metrics
from collab.packet_queue import PacketQueue
from collab.transport import FrameLimits, WebSocketTracker
from collab.upstream import cors_allowed_origins, engineio_connect_event, start_tcp_site
from collab.ws_frames import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    FIN_BINARY,
    FIN_TEXT,
    FrameError,
    FrameReader,
    accept_key,
    close_frame,
    frame,
)

__all__ = ["CollabSite", "Connection", "FrontDoor", "Outbox"]

log = logging.getLogger("collab.front")

#: A request head longer than this goes to aiohttp (which holds lines and
#: fields to 8190 bytes each and refuses more).
MAX_HEAD_BYTES = 8192
#: A connection that has not sent a whole request head by then goes to
#: aiohttp with what it sent (aiohttp's own timeouts apply from there).
HEAD_TIMEOUT_S = 10.0
#: After the server's close frame, how long the peer has to read it.
CLOSE_TIMEOUT_S = 10.0
#: Received messages waiting to be handled, in bytes, past which reading
#: pauses (as aiohttp's WebSocket reader pauses past 64 KiB).
INBOX_PAUSE_BYTES = 64 << 10

#: An Engine.IO PONG, as a WebSocket carries it.
_PONG = "3"
#: Marks the end of the connection in its inbox (handled after what came before).
_END = object()


class _Phase(enum.Enum):
    """Where a connection is: reading its request head, opening its
    Engine.IO session, open, or closed (or handed to aiohttp)."""

    HEAD = "head"
    OPENING = "opening"
    OPEN = "open"
    CLOSED = "closed"


_HEAD, _OPENING, _OPEN, _CLOSED = _Phase.HEAD, _Phase.OPENING, _Phase.OPEN, _Phase.CLOSED


class FrontDoor:
    """What every :class:`Connection` of one server shares."""

    def __init__(
        self,
        eio: Any,
        *,
        frames: FrameLimits,
        tracker: WebSocketTracker,
        metrics: Metrics,
        stopping: Callable[[], bool],
        compress: bool,
        access_log: WebSocketAccessLog | None = None,
        path: str = "/socket.io/",
    ) -> None:
        self.eio = eio
        self.frames = frames
        self.tracker = tracker
        self.metrics = metrics
        self.stopping = stopping
        #: With permessage-deflate on, every WebSocket is aiohttp's.
        self.compress = compress
        #: Its access lines (``--access-log``), as aiohttp writes its own.
        self.access_log = access_log
        self.path = path
        self._prefix = f"GET {path}?".encode("ascii")
        #: aiohttp's protocol factory (its ``web.Server``), set when the site starts.
        self.http: Callable[[], asyncio.Protocol] | None = None
        #: The tasks of the connections (opens, and readers while messages wait).
        self._tasks: set[asyncio.Task[Any]] = set()
        #: How many sessions were opened here, and how many requests went to aiohttp.
        self.opened = 0
        self.handed_over = 0
        self._opening: str | None = None

    def __call__(self) -> Connection:
        return Connection(self)

    def opening(self, sid: str) -> bytes:
        """Engine.IO's OPEN packet for session ``sid``, as engine.io encodes
        it for a WebSocket (no upgrades): built from a template, not JSON."""
        template = self._opening
        if template is None:
            eio = self.eio
            fields = {
                "sid": "%SID%",
                "upgrades": [],
                "pingTimeout": int(eio.ping_timeout * 1000),
                "pingInterval": int(eio.ping_interval + eio.ping_interval_grace_period) * 1000,
                "maxPayload": eio.max_http_buffer_size,
            }
            template = self._opening = "0" + json.dumps(fields, separators=(",", ":"))
        return template.replace("%SID%", sid).encode("ascii")

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def may_start(self, head: bytes) -> bool:
        """Whether ``head`` (the first bytes) may still be a request served here."""
        prefix = self._prefix
        return head[: len(prefix)] == prefix[: len(head)]

    def environ_for(self, head: bytes, peer: str) -> dict[str, Any] | None:
        """The environ of an Engine.IO open on a WebSocket that this server
        serves, from the request ``head`` (without its blank line); None for
        any other request (it goes to aiohttp)."""
        if self.compress or self.stopping() or "websocket" not in self.eio.transports:
            return None
        try:
            lines = head.decode("latin-1").split("\r\n")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
            return None
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] != "HTTP/1.1":
            return None
        path, _, query_string = parts[1].partition("?")
        if path != self.path:
            return None
        query = urllib.parse.parse_qs(query_string)  # as engine.io parses it
        if query.get("EIO") != ["4"] or query.get("transport") != ["websocket"]:
            return None
        if "sid" in query or "j" in query:
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            raw_name, colon, value = line.partition(":")
            name = raw_name.lower()
            if not colon or not name or name != name.strip() or name in headers:
                return None  # malformed, folded or repeated: aiohttp decides
            headers[name] = value.strip()
        if headers.get("upgrade", "").lower() != "websocket":
            return None
        if "upgrade" not in [t.strip() for t in headers.get("connection", "").lower().split(",")]:
            return None
        if headers.get("sec-websocket-version") != "13" or not _valid_key(
            headers.get("sec-websocket-key", "")
        ):
            return None
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            return None
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query_string,
            "REMOTE_ADDR": peer,
            # As engine.io's aiohttp driver sets it, so that its origin
            # check decides here as it would there.
            "wsgi.url_scheme": headers.get("x-forwarded-proto", "http"),
            "collab.websocket_key": headers["sec-websocket-key"],
        }
        for name in ("host", "origin", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"):
            if name in headers:
                environ["HTTP_" + name.upper().replace("-", "_")] = headers[name]
        if self.access_log is not None and self.access_log.wants_request:
            environ["collab.access"] = (
                lines[0],
                headers.get("referer", "-"),
                headers.get("user-agent", "-"),
            )
        origin = environ.get("HTTP_ORIGIN")
        if origin and self.eio.cors_allowed_origins != []:
            allowed = cors_allowed_origins(self.eio, environ)
            if allowed is not None and origin not in allowed:
                return None  # engine.io refuses it, and logs it, as before
        return environ


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


class Outbox(PacketQueue):
    """An Engine.IO session's queue that writes what is put in it to the
    connection's transport at once, and holds it only while the connection
    cannot take it (before the open, or while the transport pauses writing)."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self._connection = connection

    def put_nowait(self, item: Any) -> None:
        connection = self._connection
        if connection.writable and not self._queue:
            connection.send_packet(item)
        else:
            super().put_nowait(item)

    def flush(self) -> None:
        """Write what was held, while the connection takes it."""
        items = self._queue
        connection = self._connection
        while items and connection.writable:
            item = items.popleft()
            self.task_done()
            connection.send_packet(item)

    def discard(self) -> None:
        """The connection is gone: what was held never will be written."""
        while self._queue:
            self._queue.popleft()
            self.task_done()


class Connection(asyncio.Protocol):
    """One client connection: its request head, then its WebSocket."""

    __slots__ = (
        "_close_timer",
        "_early",
        "_head",
        "_inbox",
        "_inbox_bytes",
        "_lost",
        "_on_message",
        "_out",
        "_read_paused",
        "_reader",
        "_state",
        "_timer",
        "_write_paused",
        "door",
        "frames",
        "outbox",
        "sid",
        "socket",
        "transport",
    )

    def __init__(self, door: FrontDoor) -> None:
        self.door = door
        self.transport: asyncio.Transport | None = None
        self._state = _HEAD
        self._head = b""
        self._timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._early = b""
        self.frames: FrameReader | None = None
        self.socket: Any = None
        self.outbox: Outbox | None = None
        self.sid = ""
        #: Messages waiting to be handled (None while there are none: most
        #: connections are idle most of the time).
        self._inbox: deque[Any] | None = None
        self._inbox_bytes = 0
        self._reader: asyncio.Task[None] | None = None
        self._read_paused = False
        self._write_paused = False
        self._on_message: Callable[..., Any] | None = None
        self._lost: asyncio.Future[None] | None = None
        #: Frames written this loop turn, not yet handed to the transport.
        self._out: list[bytes] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT_S, self._hand_over)

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state is _OPEN:
            frames = self.frames
            if frames is not None:
                try:
                    frames.feed(data)
                except FrameError as exc:
                    self._refuse_frame(exc)
        elif state is _HEAD:
            self._sniff(data)
        elif state is _OPENING:
            self._early += data  # frames sent before the 101: read once open
            if len(self._early) > MAX_HEAD_BYTES:
                self.transport.abort()  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost ends the session

    def connection_lost(self, exc: Exception | None) -> None:
        state = self._state
        self._state = _CLOSED
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if state is _OPEN:
            self.door.tracker.open.discard(self)
            self.door.tracker.by_eio_sid.pop(self.sid, None)
            self._receive(_END, 0)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.outbox is not None:
            self.outbox.flush()

    # -- the request head ----------------------------------------------------------

    def _sniff(self, data: bytes) -> None:
        head = self._head + data
        door = self.door
        if not door.may_start(head):
            self._hand_over(head)
            return
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_HEAD_BYTES:
                self._hand_over(head)
            else:
                self._head = head
            return
        if end + 4 != len(head):  # more than the head: not a WebSocket open
            self._hand_over(head)
            return
        transport = self.transport
        assert transport is not None
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else "-"
        environ = door.environ_for(head[:end], peer)
        if environ is None:
            self._hand_over(head)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._head = b""
        self._state = _OPENING
        environ["collab.started"] = asyncio.get_running_loop().time()
        door.spawn(self._open(environ))

    def _hand_over(self, head: bytes | None = None) -> None:
        """aiohttp serves this connection from here, from its first byte."""
        if self._state is not _HEAD or self.transport is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        head = self._head if head is None else head
        self._head = b""
        self._state = _CLOSED
        factory = self.door.http
        transport = self.transport
        self.transport = None
        if factory is None:  # pragma: no cover - the site sets it before listening
            transport.abort()
            return
        self.door.handed_over += 1
        handler = factory()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if head:
            handler.data_received(head)

    # -- Engine.IO's open --------------------------------------------------------------

    async def _open(self, environ: dict[str, Any]) -> None:
        try:
            await self._open_session(environ)
        except Exception as exc:  # noqa: BLE001 - this connection ends, the server goes on
            log.error("websocket open failed sid=%s error=%s", self.sid, describe_exception(exc))
            opened = self._state is _OPEN  # then connection_lost ends the session
            if self.transport is not None:
                self.transport.abort()
            if not opened and self.socket is not None:
                await self._end_session()

    async def _open_session(self, environ: dict[str, Any]) -> None:
        """python-engineio's ``_handle_connect`` for a WebSocket, then the 101."""
        door = self.door
        eio = door.eio
        # What only the access line needs: not kept with the session.
        started: float = environ.pop("collab.started")
        request: tuple[str, str, str] | None = environ.pop("collab.access", None)
        sid = eio.generate_id()
        socket = engineio.async_socket.AsyncSocket(eio, sid)
        self.outbox = socket.queue = Outbox(self)
        self.socket = socket
        self.sid = sid
        eio.sockets[sid] = socket
        answer = await engineio_connect_event(eio, sid, environ)
        if answer is not None and answer is not True:
            eio.sockets.pop(sid, None)
            self.outbox.discard()
            size = self._refuse_open(answer)
            self._access(401, started, size, environ, request)
            return
        socket.schedule_ping()
        socket.connected = True
        socket.upgraded = True
        transport = self.transport
        if transport is None:  # the client left while the connect ran
            await self._end_session()
            return
        key = environ.pop("collab.websocket_key")
        self._write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(key).encode("ascii")
            + b"\r\n\r\n"
        )
        # Engine.IO's OPEN (engine.io queues it before the connect event; the
        # connect handler sends nothing, so it is first either way).
        self._write(frame(FIN_TEXT, door.opening(sid)))
        self._state = _OPEN
        self._access(101, started, 0, environ, request)
        frames = door.frames
        self.frames = FrameReader(
            text_bytes=frames.text_bytes,
            binary_bytes=frames.binary_bytes,
            on_message=self._message,
            on_close=self._peer_closed,
            write=self._write_control,
        )
        # A message goes straight to Socket.IO's dispatcher, as engine.io's
        # receive → _trigger_event would hand it over when it runs handlers
        # inline (python-socketio sets that), without its per-message checks.
        self._on_message = None if eio.async_handlers else eio.handlers.get("message")
        door.tracker.open.add(self)
        door.tracker.by_eio_sid[sid] = (self, socket)
        door.opened += 1
        self.outbox.flush()
        if self._early:
            early, self._early = self._early, b""
            self.data_received(early)

    def _access(
        self,
        status: int,
        started: float,
        size: int,
        environ: dict[str, Any],
        request: tuple[str, str, str] | None,
    ) -> None:
        access = self.door.access_log
        if access is not None:
            access.log(
                status=status,
                duration_s=asyncio.get_running_loop().time() - started,
                size=size,
                peer=environ.get("REMOTE_ADDR", "-"),
                request=request,
            )

    def _refuse_open(self, answer: Any) -> int:
        """The connect handler refused: engine.io's 401, and the connection
        closes; returns the body's size."""
        body = json.dumps(answer or "Unauthorized", separators=(",", ":")).encode()
        transport = self.transport
        self._state = _CLOSED
        if transport is not None:
            transport.write(
                b"HTTP/1.1 401 UNAUTHORIZED\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
            )
            transport.close()
        return len(body)

    # -- writing -----------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        return (
            self._state is _OPEN
            and not self._write_paused
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def send_packet(self, pkt: Any) -> None:
        """Write one Engine.IO packet (None: the session is over: close)."""
        transport = self.transport
        if transport is None:
            return
        if pkt is None:
            self._close(CLOSE_NORMAL)
            return
        data = pkt.encode()
        if isinstance(data, str):
            self._write(frame(FIN_TEXT, data.encode("utf-8")))
        else:
            self._write(frame(FIN_BINARY, data))
        if pkt.packet_type == engineio.packet.CLOSE:
            # The server ended the session: close the WebSocket now, not when
            # a peer that ignores CLOSE lets its heartbeat run out.
            self._close(CLOSE_NORMAL)

    def _write(self, data: bytes) -> None:
        """Write ``data`` at the end of this loop turn, with whatever else is
        written to this connection in the turn: one ``send`` for an event
        and its attachment, or for the 101 and the OPEN."""
        out = self._out
        if out is None:
            self._out = [data]
            asyncio.get_running_loop().call_soon(self._write_out)
        else:
            out.append(data)

    def _write_control(self, data: bytes) -> None:
        """A PONG for the client's PING, unless the client is not reading
        what it is sent (a PING flood must not grow the write buffer; RFC
        6455 lets a PONG answer the latest PING only)."""
        if not self._write_paused and self.transport is not None:
            self.transport.write(data)

    def _write_out(self) -> None:
        out = self._out
        self._out = None
        transport = self.transport
        if out and transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _close(self, code: int, reason: bytes = b"") -> None:
        """Send a close frame and close the connection (the peer has
        CLOSE_TIMEOUT_S to read what is buffered before it is cut)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._write_out()  # what was sent before the close goes first
        if self._state is _OPEN:
            transport.write(close_frame(code, reason))
        transport.close()
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(CLOSE_TIMEOUT_S, transport.abort)

    async def close(self, code: int = CLOSE_NORMAL, message: bytes = b"") -> None:
        """Close the WebSocket (shutdown: 1001) and wait until it is closed."""
        if self.transport is None:
            return
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        self._close(code, message)
        await asyncio.shield(self._lost)

    # -- reading -----------------------------------------------------------------------

    def _message(self, data: str | bytes) -> None:
        if data == _PONG:  # answered: collab.heartbeat (engine.io's schedule_ping)
            # Now, not in turn: a pong says the peer is there whatever waits.
            self.socket.schedule_ping()
            return
        self._receive(data, len(data))

    def _receive(self, data: Any, size: int) -> None:
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append(data)
        self._inbox_bytes += size
        if self._reader is None:
            self._reader = self.door.spawn(self._read())
        elif self._inbox_bytes > INBOX_PAUSE_BYTES and not self._read_paused:
            transport = self.transport
            if transport is not None:
                self._read_paused = True
                transport.pause_reading()

    def _peer_closed(self, code: int) -> None:
        """The client's close frame: answer it, and close."""
        self._close(code if 1000 <= code < 5000 and code not in (1004, 1005, 1006) else 1002)

    def _refuse_frame(self, exc: FrameError) -> None:
        if exc.code == CLOSE_MESSAGE_TOO_BIG:
            log.warning("frame too large sid=%s %s", self.sid, exc)
            self.door.metrics.refused("frame_size")
            self._close(exc.code, b"frame too large")
        else:
            log.warning("malformed frame sid=%s code=%d %s", self.sid, exc.code, exc)
            self._close(exc.code)
        self.frames = None  # nothing more is read

    async def _read(self) -> None:
        """Handle what waits in the inbox, in order; ends when it is empty."""
        inbox = self._inbox
        assert inbox is not None
        try:
            while inbox:
                data = inbox.popleft()
                if data is _END:
                    await self._end_session()
                    return
                self._inbox_bytes -= len(data)
                if self._read_paused and self._inbox_bytes <= INBOX_PAUSE_BYTES // 2:
                    self._read_paused = False
                    if self.transport is not None:
                        self.transport.resume_reading()
                if not await self._handle(data):
                    self._close(CLOSE_NORMAL)
                    ended = _END in inbox  # what else came is not handled
                    inbox.clear()
                    if ended:
                        inbox.append(_END)
        finally:
            self._reader = None
            if not inbox:
                self._inbox = None

    async def _handle(self, data: str | bytes) -> bool:
        """One message, as collab.transport's read loop handles it; False
        ends the session."""
        if isinstance(data, bytes):
            payload: Any = data  # a binary frame is an Engine.IO message
        elif len(data) > 1 and data[0] == "4" and data[1].isdigit():
            payload = data[1:]  # a Socket.IO packet (engine.io would not decode it as JSON)
        else:
            try:
                pkt = engineio.packet.Packet(encoded_packet=data)
            except ValueError:  # not an Engine.IO packet: the session cannot go on
                log.warning("malformed engine.io packet sid=%s bytes=%d", self.sid, len(data))
                return False
            if pkt.packet_type != engineio.packet.MESSAGE or self._on_message is None:
                return await self._receive_packet(pkt)
            payload = pkt.data
        on_message = self._on_message
        if on_message is None:
            return await self._receive_packet(
                engineio.packet.Packet(engineio.packet.MESSAGE, data=payload)
            )
        try:
            await on_message(self.sid, payload)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a bad message ends nothing
            # (BaseException: pycrdt's PanicException is one.)
            log.warning("message refused sid=%s error=%s", self.sid, type(exc).__name__)
        return True

    async def _receive_packet(self, pkt: Any) -> bool:
        try:
            await self.socket.receive(pkt)
        except engineio.exceptions.UnknownPacketError:
            pass
        except engineio.exceptions.SocketIsClosedError:
            return False
        except Exception as exc:  # noqa: BLE001 - logged, the connection goes on
            # Class and frames, never the message (collab.logs).
            log.error("engine.io receive error sid=%s error=%s", self.sid, describe_exception(exc))
        return True

    async def _end_session(self) -> None:
        """The connection is gone: engine.io closes the session (disconnect
        handlers run) and forgets it."""
        socket = self.socket
        eio = self.door.eio
        if self.outbox is not None:
            self.outbox.discard()
        await socket.close(wait=False, abort=True, reason=eio.reason.TRANSPORT_CLOSE)
        if eio.sockets.get(self.sid) is socket:
            del eio.sockets[self.sid]


class CollabSite(web.TCPSite):
    """aiohttp's TCP site with :class:`FrontDoor` in front: it takes the
    Engine.IO opens on a WebSocket and hands every other connection to the
    runner's aiohttp server."""

    __slots__ = ("_door",)

    def __init__(self, runner: web.BaseRunner, door: FrontDoor, *args: Any, **kwargs: Any) -> None:
        super().__init__(runner, *args, **kwargs)
        self._door = door

    async def start(self) -> None:
        self._door.http = self._runner.server
        await start_tcp_site(self, self._door)
