"""collab's WebSocket transport under python-engineio's aiohttp driver.

It differs from the stock driver in three ways:

* permessage-deflate is a setting, off by default: per-connection deflate
  state forbids sharing one encoded frame between recipients and roughly
  triples CPU per delivery (design.md §7);
* every open WebSocket is tracked, so shutdown can close them all with
  1001 "going away". Clients then reconnect by themselves; a Socket.IO
  DISCONNECT packet would instead tell them not to. Long-polling clients'
  pending requests are answered with a NOOP, for the same effect;
* the Engine.IO session on a WebSocket is served by ``_serve_websocket``,
  python-engineio's handler with a leaner read loop (see there);
* frames have two limits (:class:`FrameLimits`): a binary frame may be as
  large as the largest document (a client's answer to the server's
  sync-step-1 may carry all of it), a text frame only as large as an
  event's payload. A frame past its limit ends the session with close code
  1009 (message too big), logged and counted (protocol.md §1, §8.1).

Memory: a session holds at most one frame it is reading and, while its
previous message is handled, what aiohttp buffers ahead of it (one frame,
and its 64 KiB read buffer); python-socketio holds at most one attachment
per session (collab.packets).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import engineio
from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web
from engineio.async_drivers.aiohttp import WebSocket as _EngineIOWebSocket

from collab.logs import describe_exception
from collab.metrics import Metrics
from collab.packet_queue import PacketQueue
from collab.upstream import is_stock_websocket_handler, replace_driver_entries

__all__ = ["FRAME_SLACK_BYTES", "FrameLimits", "WebSocketTracker", "install_transport"]

log = logging.getLogger("collab.transport")

#: What a frame may carry beyond its payload: the Engine.IO and Socket.IO
#: framing, and a little slack.
FRAME_SLACK_BYTES = 64 << 10


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """The largest frames a client may send (protocol.md §8.1)."""

    #: A binary frame (a Socket.IO attachment): an update, or an answer to
    #: the server's sync-step-1, which may be as large as the largest document.
    binary_bytes: int
    #: A text frame (Engine.IO and Socket.IO packets; chat and moderation
    #: events). Kept to an event's payload: the JSON a text frame holds
    #: takes many times its size once decoded.
    text_bytes: int

    @classmethod
    def of(cls, *, max_message_bytes: int, max_document_bytes: int) -> FrameLimits:
        """The limits for events of ``max_message_bytes`` and documents of
        ``max_document_bytes`` (the largest of every kind)."""
        largest = max(max_message_bytes, max_document_bytes)
        return cls(largest + FRAME_SLACK_BYTES, max_message_bytes + FRAME_SLACK_BYTES)

    @property
    def polling_body_bytes(self) -> int:
        """A long-polling POST body: a binary frame in base64 (4 characters
        for 3 bytes) and, in its slack, the text packets beside it.
        Engine.IO's ``max_http_buffer_size``, advertised as ``maxPayload``."""
        return 4 * -(-self.binary_bytes // 3)

    def text_too_large(self, text: str) -> bool:
        """Whether ``text`` is more than ``text_bytes`` bytes of UTF-8
        (encoded only when its length leaves a doubt)."""
        limit = self.text_bytes
        if len(text) <= limit // 4:  # at most 4 bytes a character
            return False
        return len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit


class FrameTooLarge(Exception):
    """A frame past its limit (the session ends with close code 1009)."""


class WebSocketTracker:
    """The open WebSockets of one server, and which Engine.IO session each carries."""

    def __init__(self) -> None:
        #: aiohttp's WebSocket responses and collab.front's connections.
        self.open: set[Any] = set()
        #: Engine.IO session id → (its WebSocket, its python-engineio socket).
        self.by_eio_sid: dict[str, tuple[Any, Any]] = {}

    async def close_all(self, *, timeout_s: float = 5.0) -> None:
        """Close every WebSocket with 1001 (going away)."""
        sockets = list(self.open)
        if not sockets:
            return
        closing = [
            asyncio.ensure_future(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown"))
            for ws in sockets
        ]
        await asyncio.wait(closing, timeout=timeout_s)

    def end_polls(self, eio: Any) -> None:
        """Answer every long-polling client's pending request with a NOOP, so
        shutdown need not wait for it; its next poll fails and it reconnects,
        as a WebSocket client does after 1001."""
        for sid, socket in list(eio.sockets.items()):
            if sid not in self.by_eio_sid and not socket.closed:
                socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.NOOP))


def install_transport(
    eio: Any,
    *,
    tracker: WebSocketTracker,
    compress: bool,
    frames: FrameLimits,
    metrics: Metrics,
) -> None:
    """Make the Engine.IO server ``eio`` use collab's WebSocket transport,
    with ``frames`` as its limits; frames past them are counted in
    ``metrics`` (``collab_limit_refusals_total{limit="frame_size"}``)."""

    class CollabWebSocket(_EngineIOWebSocket):  # type: ignore[misc]
        """engine.io's aiohttp WebSocket, with collab's frame limits."""

        def refused_frame(self) -> None:
            """Count a frame past its limit."""
            metrics.refused("frame_size")

        async def close(self, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
            await self._sock.close(code=code, message=message)

        async def wait(self) -> str | bytes:
            """The next message's data: FrameTooLarge for a frame past its
            limit, OSError once the WebSocket is closing or closed."""
            msg = await self._sock.receive()
            if isinstance(msg.data, str):
                if frames.text_too_large(msg.data):
                    raise FrameTooLarge(
                        f"type=text chars={len(msg.data)} limit={frames.text_bytes}"
                    )
                return msg.data
            if isinstance(msg.data, bytes):
                return msg.data
            error = msg.data if msg.type is WSMsgType.ERROR else None
            if isinstance(error, WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG:
                # aiohttp refused it from its header (binary_bytes), and has
                # closed the WebSocket with 1009 already.
                raise FrameTooLarge(f"type=binary limit={frames.binary_bytes}")
            raise OSError("the WebSocket is closed")

        async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
            request: web.Request = environ["aiohttp.request"]
            # aiohttp refuses a frame past this one with close code 1009 before
            # reading it (its header says how long it is); text frames are held
            # to their own, smaller limit in wait().
            self._sock = web.WebSocketResponse(max_msg_size=frames.binary_bytes, compress=compress)
            await self._sock.prepare(request)
            self.environ = environ
            tracker.open.add(self._sock)
            # The handler is a bound method of the engine.io socket it serves.
            eio_socket = getattr(self.handler, "__self__", None)
            eio_sid = getattr(eio_socket, "sid", None)
            if eio_sid is not None:
                tracker.by_eio_sid[eio_sid] = (self._sock, eio_socket)
            try:
                if is_stock_websocket_handler(self.handler):
                    await _serve_websocket(eio_socket, self)
                else:  # not the handler _serve_websocket copies: leave it be
                    handler: Callable[[Any], Awaitable[None]] = self.handler
                    await handler(self)
            finally:
                tracker.open.discard(self._sock)
                if eio_sid is not None:
                    tracker.by_eio_sid.pop(eio_sid, None)
            return self._sock

    replace_driver_entries(eio, websocket=CollabWebSocket)
    # Every session's packet queue (engine.io's public factory for them).
    eio.create_queue = _packet_queue


def _packet_queue(*args: Any, **kwargs: Any) -> PacketQueue:
    return PacketQueue()


#: An Engine.IO PONG, as a WebSocket carries it.
_PONG = "3"


async def _next_packets(queue: asyncio.Queue[Any]) -> list[Any]:
    """What the session's queue holds, waiting for the first packet: an
    empty list once the session is closing (a None in the queue, left there
    for any other reader). engine.io's ``poll`` without its timeout (a task
    and a timer per wait): collab.heartbeat ends a silent session, and its
    CLOSE ends this wait."""
    first = await queue.get()
    queue.task_done()
    if first is None:
        return []
    packets = [first]
    while queue.qsize():
        pkt = queue.get_nowait()
        queue.task_done()
        if pkt is None:
            queue.put_nowait(None)
            break
        packets.append(pkt)
    return packets


async def _serve_websocket(eio_socket: Any, ws: Any) -> None:
    """Serve Engine.IO session ``eio_socket`` over WebSocket ``ws``.

    This is python-engineio 4's ``AsyncSocket._websocket_handler`` (the
    polling → WebSocket upgrade, the writer task, the close), with three
    changes. The read loop awaits each message directly and hands a message
    packet straight to Socket.IO: the stock loop wraps every incoming message
    in a task and an ``asyncio.wait_for``, and its dispatch checks the
    handler with ``inspect`` each time (together about 12% of the server's
    CPU with ten clients drawing into one room). A PONG is told to
    collab.heartbeat without making a packet of it. And neither the read nor
    the writer's wait for packets has a timeout (the stock ones are there so
    that a connection silent for ping interval + ping timeout ends, at a task
    and a timer per wait): collab.heartbeat closes a session whose pongs
    stop, which queues a CLOSE; the writer sends it and closes the WebSocket,
    and the read below returns. A frame that is not an Engine.IO
    packet ends its session here, cleanly, where the stock handler raised
    out of the request and left the session to the ping timeout
    (tests/integration/test_transport.py). So does a frame past its limit
    (``ws.wait`` raises FrameTooLarge), with close code 1009.
    """
    server = eio_socket.server
    sid = eio_socket.sid

    async def refuse(exc: FrameTooLarge) -> None:
        log.warning("frame too large sid=%s %s", sid, exc)
        ws.refused_frame()
        await ws.close(code=WSCloseCode.MESSAGE_TOO_BIG, message=b"frame too large")

    if eio_socket.connected:
        # Already connected by long-polling: this is the upgrade (probe, then UPGRADE).
        eio_socket.upgrading = True  # engine.io holds packets back meanwhile
        try:
            probe = engineio.packet.Packet(encoded_packet=await ws.wait())
        except FrameTooLarge as exc:
            eio_socket.upgrading = False
            await refuse(exc)
            return
        except (OSError, ValueError):
            eio_socket.upgrading = False
            return
        if probe.packet_type != engineio.packet.PING or probe.data != "probe":
            eio_socket.upgrading = False
            return
        await ws.send(engineio.packet.Packet(engineio.packet.PONG, data="probe").encode())
        await eio_socket.queue.put(engineio.packet.Packet(engineio.packet.NOOP))  # end the poll
        try:
            upgrade = engineio.packet.Packet(encoded_packet=await ws.wait())
        except FrameTooLarge as exc:
            eio_socket.upgrading = False
            await refuse(exc)
            return
        except (OSError, ValueError):
            eio_socket.upgrading = False
            return
        if upgrade.packet_type != engineio.packet.UPGRADE:
            eio_socket.upgraded = False
            eio_socket.upgrading = False
            return
        eio_socket.upgraded = True
        eio_socket.upgrading = False
    else:
        eio_socket.connected = True
        eio_socket.upgraded = True

    async def writer() -> None:
        closing = False
        queue = eio_socket.queue
        while not closing:
            packets = await _next_packets(queue)
            if not packets:  # the connection is closing
                break
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
                    # The server ended the session: close the WebSocket now,
                    # not when a peer that ignores CLOSE lets the poll time out.
                    closing = pkt.packet_type == engineio.packet.CLOSE
            except Exception:  # noqa: BLE001 - as engine.io: any failure ends the writer
                break
        await ws.close()

    writer_task = asyncio.ensure_future(writer())
    # A message goes straight to Socket.IO's dispatcher, as engine.io's
    # receive → _trigger_event would hand it over when it runs handlers
    # inline (python-socketio sets that), without its per-message checks.
    on_message = None if server.async_handlers else server.handlers.get("message")
    try:
        while True:
            try:
                data = await ws.wait()
            except FrameTooLarge as exc:
                await refuse(exc)
                break
            except Exception:  # noqa: BLE001 - closed or aborted: end the session
                break
            if data is None:
                break
            if data == _PONG:  # answered: collab.heartbeat (engine.io's schedule_ping)
                eio_socket.schedule_ping()
                continue
            try:
                pkt = engineio.packet.Packet(encoded_packet=data)
            except ValueError:  # not an Engine.IO packet: the session cannot go on
                log.warning("malformed engine.io packet sid=%s bytes=%d", sid, len(data))
                break
            if pkt.packet_type == engineio.packet.MESSAGE and on_message is not None:
                try:
                    await on_message(sid, pkt.data)
                except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # noqa: BLE001 - a bad message ends nothing
                    # (BaseException: pycrdt's PanicException is one.)
                    log.warning("message refused sid=%s error=%s", sid, type(exc).__name__)
                continue
            try:
                await eio_socket.receive(pkt)
            except engineio.exceptions.UnknownPacketError:
                pass
            except engineio.exceptions.SocketIsClosedError:
                break
            except Exception as exc:  # noqa: BLE001 - logged, the loop goes on
                # Class and frames, never the message (collab.logs).
                log.error("engine.io receive error sid=%s error=%s", sid, describe_exception(exc))
    except asyncio.CancelledError:
        writer_task.cancel()  # engine.io's ping timeout ends the session
        raise
    await eio_socket.queue.put(None)  # unlock the writer task so it can exit
    await writer_task
    await eio_socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
