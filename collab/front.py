"""collab's own WebSocket server for Engine.IO sessions opened on a WebSocket.

A client that opens its Engine.IO session straight on a WebSocket
(``GET /socket.io/?EIO=4&transport=websocket``, as collab's Python client,
load generators and most native clients do) is served here, without
aiohttp's request machinery: a :class:`Connection` (collab.ws_connection)
is the connection's one asyncio protocol from its first byte. It reads the request head itself; a
request it does not serve (any other path, long-polling, an upgrade from
long-polling, an origin engine.io's list would refuse, a
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
import json
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from collab.logs import WebSocketAccessLog
from collab.metrics import Metrics
from collab.packet_queue import Outbox
from collab.transport import FrameLimits, WebSocketTracker
from collab.upstream import cors_allowed_origins, start_tcp_site
from collab.ws_connection import Connection

__all__ = ["CollabSite", "Connection", "FrontDoor", "Outbox"]


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
        at_once: Callable[[str, Any], Coroutine[Any, Any, None] | bool] | None = None,
    ) -> None:
        self.eio = eio
        #: Whether a session's message may be handled within the read that
        #: brought it, before any task is made for it (SessionGuard.at_once).
        self.at_once = at_once
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
        #: The tasks of the connections (opens that wait, and readers while
        #: messages wait).
        self._tasks: set[asyncio.Task[Any]] = set()
        #: How many sessions were opened here, and how many requests went to aiohttp.
        self.opened = 0
        self.handed_over = 0
        #: Messages handled within the read that brought them (SessionGuard.at_once),
        #: and of those, how many went on in a task (their handler waited).
        self.handled_in_read = 0
        self.resumed_in_task = 0
        #: Engine.IO opens that went on in a task (their connect handler waited).
        self.opens_in_task = 0
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

    def log_access(
        self,
        status: int,
        started: float,
        size: int,
        environ: dict[str, Any],
        request: tuple[str, str, str] | None,
    ) -> None:
        """The access line of an open answered with ``status`` (``--access-log``)."""
        if self.access_log is not None:
            self.access_log.log(
                status=status,
                duration_s=asyncio.get_running_loop().time() - started,
                size=size,
                peer=environ.get("REMOTE_ADDR", "-"),
                request=request,
            )

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
