"""collab's WebSocket transport under python-engineio's aiohttp driver.

It differs from the stock driver in two ways:

* permessage-deflate is a setting, off by default: per-connection deflate
  state forbids sharing one encoded frame between recipients and roughly
  triples CPU per delivery (design.md §7);
* every open WebSocket is tracked, so shutdown can close them all with
  1001 "going away". Clients then reconnect by themselves; a Socket.IO
  DISCONNECT packet would instead tell them not to. Long-polling clients'
  pending requests are answered with a NOOP, for the same effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
from aiohttp import WSCloseCode, web
from engineio.async_drivers.aiohttp import WebSocket as _EngineIOWebSocket

__all__ = ["WebSocketTracker", "install_transport"]


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
                handler: Callable[[Any], Awaitable[None]] = self.handler
                await handler(self)
            finally:
                tracker.open.discard(self._sock)
                if eio_sid is not None:
                    tracker.by_eio_sid.pop(eio_sid, None)
            return self._sock

    eio._async = {**eio._async, "websocket": CollabWebSocket}
