"""One connection of collab's own WebSocket server (collab.front): its
request head, then its Engine.IO session on a WebSocket."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

import engineio

from collab.logs import describe_exception
from collab.packet_queue import Outbox
from collab.upstream import engineio_connect_event
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

if TYPE_CHECKING:
    from collab.front import FrontDoor

__all__ = ["CLOSE_TIMEOUT_S", "HEAD_TIMEOUT_S", "MAX_HEAD_BYTES", "Connection"]

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


class _Resume:
    """Awaits a coroutine whose first step has run (``send(None)`` gave
    ``waiting``, what it waits for): from a task, it goes on from there, as
    if the task had run it from the start."""

    __slots__ = ("_coro", "_waiting")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self._coro = coro
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting = self._coro, self._waiting
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - the task's cancel, passed on
                try:
                    waiting = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    waiting = coro.send(sent)
                except StopIteration as done:
                    return done.value


async def _finish(resume: _Resume) -> Any:
    """A task's coroutine for what a :class:`_Resume` goes on with."""
    return await resume


async def _contained(sid: str, handling: _Resume) -> Any:
    """What a message's handling that went on in a task returns; None if
    it raised (contained as Connection._handle contains it)."""
    try:
        return await handling
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a bad message ends nothing
        _refused(sid, exc)
        return None


def _refused(sid: str, exc: BaseException) -> None:
    # BaseException: pycrdt's PanicException is one. Its class, never its
    # message (which may quote content).
    log.warning("message refused sid=%s error=%s", sid, type(exc).__name__)


class Connection(asyncio.Protocol):
    """One client connection: its request head, then its WebSocket."""

    __slots__ = (
        "_close_timer",
        "_early",
        "_head",
        "_held",
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
        #: Whether they wait for the turn's end, not for the end of the read
        #: or the message that wrote them (:meth:`hold_writes`).
        self._held = False

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
                if self._out is not None and self._reader is None and not self._held:
                    self._write_out()  # the answers to what was handled: now
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
        self.frames = None  # nothing more is read (its callbacks refer to this connection)
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
        # Engine.IO's open runs here, in the read, while it does not wait
        # (its connect handler usually does not): no task, and the 101 goes
        # out in this turn. If it waits, it goes on in a task.
        opening = self._open(environ)
        try:
            waiting = opening.send(None)
        except StopIteration:
            return
        door.opens_in_task += 1
        door.spawn(_finish(_Resume(opening, waiting)))

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
            self.door.log_access(401, started, size, environ, request)
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
        self.door.log_access(101, started, 0, environ, request)
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
        self._write_out()  # the 101 and the OPEN now, not a loop turn later
        if self._early:
            early, self._early = self._early, b""
            self.data_received(early)

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

    def send_message(self, data: str | bytes) -> None:
        """Write one Engine.IO MESSAGE (what ``send_packet`` writes for
        ``Packet(MESSAGE, data)``, without the packet)."""
        if isinstance(data, str):
            self._write(frame(FIN_TEXT, ("4" + data).encode("utf-8")))
        else:
            self._write(frame(FIN_BINARY, data))

    def _write(self, data: bytes) -> None:
        """Write ``data`` at the end of this loop turn, with whatever else is
        written to this connection in the turn: one ``send`` for an event
        and its attachment, or for the 101 and the OPEN."""
        out = self._out
        if out is None:
            self._out = out = [data]
            asyncio.get_running_loop().call_soon(self._end_of_turn, out)
        else:
            out.append(data)

    def _end_of_turn(self, out: list[bytes]) -> None:
        """The end of the turn in which ``out`` was begun: write it, unless
        it was written already (a direct :meth:`_write_out`: a list begun
        since has its own end of turn). While writes are held, one turn
        more: the callback the hold waits for was scheduled before this."""
        if self._out is not out:
            return
        if self._held:
            self._held = False
            asyncio.get_running_loop().call_soon(self._end_of_turn, out)
            return
        self._write_out()

    def hold_writes(self) -> None:
        """What is written now leaves with what the callback scheduled right
        after this call writes (collab.sync: the server's step after the ack
        of the client's): not as soon as the message being handled is, and
        not at the end of a turn begun before that callback (see
        :meth:`_end_of_turn`)."""
        self._held = True

    def _write_control(self, data: bytes) -> None:
        """A PONG for the client's PING, unless the client is not reading
        what it is sent (a PING flood must not grow the write buffer; RFC
        6455 lets a PONG answer the latest PING only)."""
        if not self._write_paused and self.transport is not None:
            self.transport.write(data)

    def _write_out(self) -> None:
        out = self._out
        self._out = None
        self._held = False
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
        if self._reader is None and not self._inbox:  # nothing waits: maybe now
            at_once = self.door.at_once
            if at_once is not None and self._on_message is not None:
                handling = at_once(self.sid, data)
                if handling is not False:
                    self._handle_now(handling)
                    return
        self._receive(data, len(data))

    def _receive(self, data: Any, size: int) -> None:
        """Queue ``data`` (or the connection's end) in the inbox, handled in
        order by the reader task (started if none runs)."""
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

    def _handle_now(self, handling: Coroutine[Any, Any, Any] | bool) -> None:
        """Handle a message SessionGuard.at_once took while nothing else
        waits: True if taking it was all (an update's header), else the
        coroutine that handles it, whose first step runs here, in the read
        (an update's whole handling, usually: no task and no loop turn per
        message). A handler that has to wait goes on in a task, and what
        comes meanwhile waits in the inbox behind it. Whatever it raises is
        contained as :meth:`_handle` contains it."""
        transport = self.transport
        if transport is None or transport.is_closing():
            if handling is not True:
                handling.close()  # type: ignore[union-attr]
            return  # the session is ending: what comes after is not handled
        door = self.door
        door.handled_in_read += 1
        if handling is True:
            return
        try:
            waiting = handling.send(None)  # type: ignore[union-attr]
        except StopIteration as done:
            if done.value is False:
                self._close(CLOSE_NORMAL)
            return
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a bad message ends nothing
            _refused(self.sid, exc)
            return
        door.resumed_in_task += 1
        self._reader = door.spawn(self._read(_Resume(handling, waiting)))  # type: ignore[arg-type]

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

    async def _read(self, handling: _Resume | None = None) -> None:
        """Finish ``handling`` (a message whose handler waits), then handle
        what waits in the inbox, in order; ends when it is empty."""
        try:
            if handling is not None and await _contained(self.sid, handling) is False:
                self._stop_handling()
            while inbox := self._inbox:
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
                    self._stop_handling()
                if self._out is not None and not inbox and not self._held:
                    self._write_out()  # the answers to what came: now, not a turn later
        finally:
            self._reader = None
            if not self._inbox:
                self._inbox = None

    def _stop_handling(self) -> None:
        """A message ended the session: close, and handle nothing more that
        came (but the end of the connection)."""
        self._close(CLOSE_NORMAL)
        inbox = self._inbox
        if inbox:
            ended = _END in inbox
            inbox.clear()
            self._inbox_bytes = 0
            if ended:
                inbox.append(_END)

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
            _refused(self.sid, exc)
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
        # The Outbox refers to this connection: unlinked from this side (the
        # socket keeps it as its queue, for late sends), the connection, its
        # Outbox and its socket are freed by reference counting, not by a
        # collection of the cyclic collector (which walks every survivor).
        outbox, self.outbox = self.outbox, None
        if outbox is not None:
            outbox.discard()
        await socket.close(wait=False, abort=True, reason=eio.reason.TRANSPORT_CLOSE)
        if eio.sockets.get(self.sid) is socket:
            del eio.sockets[self.sid]
        self.socket = None
