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
  python-engineio's handler with a leaner read loop (see there).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import engineio.async_socket
from aiohttp import WSCloseCode, web
from engineio.async_drivers.aiohttp import WebSocket as _EngineIOWebSocket

__all__ = ["WebSocketTracker", "install_transport"]

log = logging.getLogger("collab.transport")

#: The python-engineio handler ``_serve_websocket`` stands in for.
_STOCK_HANDLER = getattr(engineio.async_socket.AsyncSocket, "_websocket_handler", None)


class WebSocketTracker:
    """The open WebSockets of one server, and which Engine.IO session each carries."""

    def __init__(self) -> None:
        self.open: set[web.WebSocketResponse] = set()
        #: Engine.IO session id → (its WebSocket, its python-engineio socket).
        self.by_eio_sid: dict[str, tuple[web.WebSocketResponse, Any]] = {}

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


def install_transport(eio: Any, *, tracker: WebSocketTracker, compress: bool) -> None:
    """Make the Engine.IO server ``eio`` use collab's WebSocket transport."""

    class CollabWebSocket(_EngineIOWebSocket):  # type: ignore[misc]
        async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
            request: web.Request = environ["aiohttp.request"]
            self._sock = web.WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=compress
            )
            await self._sock.prepare(request)
            self.environ = environ
            tracker.open.add(self._sock)
            # The handler is a bound method of the engine.io socket it serves.
            eio_socket = getattr(self.handler, "__self__", None)
            eio_sid = getattr(eio_socket, "sid", None)
            if eio_sid is not None:
                tracker.by_eio_sid[eio_sid] = (self._sock, eio_socket)
            try:
                if getattr(self.handler, "__func__", None) is _STOCK_HANDLER:
                    await _serve_websocket(eio_socket, self)
                else:  # not the handler _serve_websocket copies: leave it be
                    handler: Callable[[Any], Awaitable[None]] = self.handler
                    await handler(self)
            finally:
                tracker.open.discard(self._sock)
                if eio_sid is not None:
                    tracker.by_eio_sid.pop(eio_sid, None)
            return self._sock

    eio._async = {**eio._async, "websocket": CollabWebSocket}


async def _serve_websocket(eio_socket: Any, ws: Any) -> None:
    """Serve Engine.IO session ``eio_socket`` over WebSocket ``ws``.

    This is python-engineio 4's ``AsyncSocket._websocket_handler`` (the
    polling → WebSocket upgrade, the writer task, the close), with one
    change: the read loop awaits each message directly and hands a message
    packet straight to Socket.IO. The stock loop wraps every incoming message
    in a task and an ``asyncio.wait_for``, and its dispatch checks the
    handler with ``inspect`` each time (together about 12% of the server's
    CPU with ten clients drawing into one room); the ``wait_for`` is there so
    that a connection silent for ping interval + ping timeout ends.
    Engine.IO's ping timeout already ends it: the server closes a session
    whose pongs stop, its writer's ``poll`` then times out and closes the
    WebSocket, and the read below returns. A frame that is not an Engine.IO
    packet ends its session here, cleanly, where the stock handler raised
    out of the request and left the session to the ping timeout
    (tests/integration/test_transport.py).
    """
    server = eio_socket.server
    limit = server.max_http_buffer_size

    async def next_message() -> Any:
        data = await ws.wait()  # OSError once the WebSocket is closing or closed
        if data and len(data) > limit:
            raise ValueError("packet is too large")
        return data

    if eio_socket.connected:
        # Already connected by long-polling: this is the upgrade (probe, then UPGRADE).
        eio_socket.upgrading = True  # engine.io holds packets back meanwhile
        try:
            probe = engineio.packet.Packet(encoded_packet=await next_message())
        except (OSError, ValueError):
            eio_socket.upgrading = False
            return
        if probe.packet_type != engineio.packet.PING or probe.data != "probe":
            eio_socket.upgrading = False
            return
        await ws.send(engineio.packet.Packet(engineio.packet.PONG, data="probe").encode())
        await eio_socket.queue.put(engineio.packet.Packet(engineio.packet.NOOP))  # end the poll
        try:
            upgrade = engineio.packet.Packet(encoded_packet=await next_message())
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
        while not closing:
            try:
                packets = await eio_socket.poll()
            except engineio.exceptions.QueueEmpty:
                break
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
    sid = eio_socket.sid
    # A message goes straight to Socket.IO's dispatcher, as engine.io's
    # receive → _trigger_event would hand it over when it runs handlers
    # inline (python-socketio sets that), without its per-message checks.
    on_message = None if server.async_handlers else server.handlers.get("message")
    try:
        while True:
            try:
                data = await next_message()
            except Exception:  # noqa: BLE001 - closed, aborted, oversized: end the session
                break
            if data is None:
                break
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
            except Exception:
                log.exception("engine.io receive error sid=%s", sid)
    except asyncio.CancelledError:
        writer_task.cancel()  # engine.io's ping timeout ends the session
        raise
    await eio_socket.queue.put(None)  # unlock the writer task so it can exit
    await writer_task
    await eio_socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
