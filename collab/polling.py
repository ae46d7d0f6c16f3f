"""Engine.IO's HTTP entry point, guarded: what a hostile long-polling client
sends is refused here, answered at once and counted, before python-engineio
could mishandle it (protocol.md §1, §8).

python-engineio 4 answers some requests badly:

* a POST over ``max_http_buffer_size`` ends its session with the *waiting*
  close, which waits for a GET that may never come: the POST is never
  answered, its connection stays open, and shutdown waits for it;
* more packets than its ``Payload.max_decode_packets`` (16), a body that is
  not UTF-8, a packet type it does not know: answered 200 "OK", the packets
  dropped, a traceback logged;
* a packet type it does know but not from a client (OPEN, PING, NOOP): the
  waiting close again;
* an upgrade to WebSocket is accepted whatever Engine.IO version it names;
* every text packet is decoded as JSON, at whatever size the body allows,
  though the body's limit is set for a base64 attachment as large as a
  document (a sync answer, protocol.md §8.1): a text packet is held to a
  text frame's limit here (collab.transport.FrameLimits), before engine.io
  decodes it.

:class:`PollingGuard` is the route handler on Engine.IO's path. It reads a
POST's body itself, bounded by the limit, decodes it as engine.io will, and
answers what it refuses (see :class:`Reason`) with 4xx, closing the HTTP
connection and, for a broken body, ending the session without waiting for
anything. What passes goes to ``eio.handle_request`` with the body it read.

Logs carry the reason, the session id (a known session's only), the remote
address and sizes, never content; the first of each (address, reason) per
minute is logged, the rest summed up in one line when the minute is over
(:class:`rooms.incidents.Incidents`). Engine.IO's own error records
(tracebacks of handler errors) and aiohttp's parser errors (an over-long
request line or header) become one line without a traceback or content.

Fence: everything this module takes from python-engineio or aiohttp beyond
their documented API is marked ``borrowed:``;
tests/hostile/test_polling.py::test_the_borrowed_internals_are_still_there
fails when an upgrade moves one.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import json
import logging
import math
import time
import urllib.parse
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import engineio.payload
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import server_logger
from engineio import packet as _packet
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from collab.metrics import Metrics
from collab.transport import FrameLimits
from collab.upstream import cors_headers, driver_table, replace_driver_entries
from rooms.incidents import Incidents

__all__ = [
    "POLLING_GUARD",
    "PollingGuard",
    "Reason",
    "check_payload",
    "end_polling_session",
    "install_polling",
    "is_polling",
]

log = logging.getLogger("collab.polling")


class Reason(enum.StrEnum):
    """Why an Engine.IO HTTP request was refused (the ``reason`` label of
    ``collab_bad_requests_total``)."""

    TOO_LARGE = "too_large"  # 413: a body over max_http_buffer_size, of unknown length, or
    # holding a text packet past a text frame's limit
    TOO_MANY_PACKETS = "too_many_packets"  # 400: more than engine.io decodes (16)
    BAD_PAYLOAD = "bad_payload"  # 400: not UTF-8, not Engine.IO packets, or a broken body
    BAD_PACKET_TYPE = "bad_packet_type"  # 400: a type a client does not send
    BODY_TIMEOUT = "body_timeout"  # 408: the body did not arrive within the ping timeout
    OVERLAPPING_POLL = "overlapping_poll"  # 400: a second poll while one is pending
    BAD_VERSION = "bad_version"  # 400: a handshake or upgrade without EIO=4
    BAD_TRANSPORT = "bad_transport"  # 400: a transport the server does not serve
    UNKNOWN_SESSION = "unknown_session"  # 400: no such session (ended, or never was)
    ENGINEIO_ERROR = "engineio_error"  # 400: engine.io failed on what passed the checks
    BAD_MESSAGE = "bad_message"  # 200: Socket.IO refused a message (the session goes on)
    REFUSED = "refused"  # engine.io's own 400 (origin, an upgraded session, ...)


#: The refusals this module answers: status, body (a JSON string, as
#: engine.io's), and whether the long-polling session it names ends (what
#: the client sent cannot be taken back, so the session cannot go on).
_ANSWERS: Mapping[Reason, tuple[int, str, bool]] = {
    Reason.TOO_LARGE: (413, "Payload too large", True),
    Reason.TOO_MANY_PACKETS: (400, "Too many packets", True),
    Reason.BAD_PAYLOAD: (400, "Invalid payload", True),
    Reason.BAD_PACKET_TYPE: (400, "Invalid packet type", True),
    Reason.BODY_TIMEOUT: (408, "Request body timed out", True),
    Reason.OVERLAPPING_POLL: (400, "Overlapping poll", True),
    Reason.ENGINEIO_ERROR: (400, "Bad request", True),
    Reason.BAD_VERSION: (400, "Unsupported Engine.IO version", False),
    Reason.BAD_TRANSPORT: (400, "Invalid transport", False),
    Reason.UNKNOWN_SESSION: (400, "Invalid session", False),
}

# borrowed: engine.io's decoder refuses a payload of more packets than this.
MAX_PACKETS: int = engineio.payload.Payload.max_decode_packets

# borrowed: AsyncSocket.receive handles these from a client; on OPEN, PING and
# NOOP (and types past NOOP) it raises, and engine.io then ends the session
# with the waiting close.
_CLIENT_PACKET_TYPES = frozenset({_packet.CLOSE, _packet.PONG, _packet.MESSAGE, _packet.UPGRADE})


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with a body: the reason and loggable details (numbers
    and class names, never content)."""

    reason: Reason
    detail: str


def check_payload(body: bytes, frames: FrameLimits | None = None) -> Problem | None:
    """None if engine.io can take ``body`` as a polling payload from a client,
    else what is wrong with it. Decodes it as ``engineio.payload.Payload``
    will (the JSONP form ``d=`` included) without its limit turning into a
    200 "OK" that drops the packets. With ``frames``, a text packet (one
    that is not a base64 attachment) past ``frames.text_bytes`` is too
    large, and is not decoded."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Problem(Reason.BAD_PAYLOAD, f"bytes={len(body)} error=not-utf-8")
    if text.startswith("d="):  # borrowed: Payload.decode unwraps a JSONP form post
        values = urllib.parse.parse_qs(text).get("d")
        if not values:
            return Problem(Reason.BAD_PAYLOAD, f"bytes={len(body)} error=empty-jsonp")
        text = values[0]
    if not text:
        return None  # no packets: engine.io answers "ok"
    encoded = text.split("\x1e")  # borrowed: Engine.IO v4's record separator
    if len(encoded) > MAX_PACKETS:
        return Problem(Reason.TOO_MANY_PACKETS, f"packets={len(encoded)} limit={MAX_PACKETS}")
    for each in encoded:
        # borrowed: "b" starts a base64 attachment; engine.io decodes any
        # other packet's data as JSON.
        if frames is not None and not each.startswith("b") and frames.text_too_large(each):
            return Problem(Reason.TOO_LARGE, f"packet_chars={len(each)} limit={frames.text_bytes}")
        try:
            packet = _packet.Packet(encoded_packet=each)
        except (ValueError, RecursionError) as exc:  # binascii.Error is a ValueError
            return Problem(Reason.BAD_PAYLOAD, f"bytes={len(body)} error={_name(exc)}")
        if packet.packet_type not in _CLIENT_PACKET_TYPES:
            return Problem(Reason.BAD_PACKET_TYPE, f"packets={len(encoded)}")
    return None


@dataclass
class _Request:
    """What engine.io logged with a traceback while serving one polling
    request (see :class:`_EngineIOLog`)."""

    message_faults: list[str] = field(default_factory=list)
    other_faults: list[str] = field(default_factory=list)


#: The polling request being served by engine.io in this task, if any.
_serving: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
    "collab_polling_request", default=None
)


class _BodyTooLarge(Exception):
    """A body grew past the limit while being read."""


class _Body:
    """``wsgi.input`` for engine.io: the body this module has already read."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, _length: int = -1) -> bytes:
        data, self._data = self._data, b""
        return data


class PollingGuard:
    """The handler of Engine.IO's HTTP path for the Engine.IO server ``eio``.

    ``polls`` holds the session ids with a poll in flight, ``counts`` the
    refusals by reason. ``flush(now)`` logs the summaries of ended windows.
    """

    def __init__(
        self,
        eio: Any,
        *,
        frames: FrameLimits | None = None,
        window_s: float = 60.0,
        summary_every_s: float = 5.0,
    ) -> None:
        self._eio = eio
        #: What a text packet in a body may hold (None: only the body's limit).
        self.frames = frames
        # Public attributes of engine.io's server (constructor arguments).
        self.max_body_bytes: int = eio.max_http_buffer_size
        #: A body must arrive within the time a client has to answer a ping.
        self.body_timeout_s: float = float(eio.ping_timeout)
        self.counts: dict[Reason, int] = dict.fromkeys(Reason, 0)
        self.incidents = Incidents(window_s=window_s)
        self.summary_every_s = summary_every_s
        self._polls: set[str] = set()
        self._reads: set[asyncio.Timeout] = set()
        self._stopping = False
        self._summaries: asyncio.Task[None] | None = None
        # borrowed (collab.upstream): the driver's request → WSGI environ translation.
        self._environ = driver_table(eio)["translate_request"]

    @property
    def polls(self) -> frozenset[str]:
        return frozenset(self._polls)

    # -- the route handler -------------------------------------------------

    def stopping(self) -> bool:
        """Whether the server is shutting down (new sessions are refused)."""
        return self._stopping

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request on Engine.IO's path, or hand it to engine.io."""
        if self._stopping:
            # The long-polling client's next request fails and it reconnects.
            return await self._answer(request, 503, "Server shutting down")
        remote = request.remote or "-"
        if request.method == "OPTIONS":
            return await self._pass(request, remote=remote)
        query = urllib.parse.parse_qs(request.query_string)  # as engine.io parses it
        sid = _first(query, "sid")
        transport = _first(query, "transport") or "polling"
        if transport not in self._eio.transports:
            return await self._refuse(request, Reason.BAD_TRANSPORT, remote)
        # engine.io checks the version of a handshake only; an upgrade starts
        # a new framing, so it must name its session's version too.
        if (sid is None or transport == "websocket") and query.get("EIO") != ["4"]:
            detail = "upgrade=yes" if sid is not None else "upgrade=no"
            return await self._refuse(request, Reason.BAD_VERSION, remote, detail=detail)
        if request.method == "POST":
            return await self._post(request, sid, remote)
        if sid is None:
            return await self._pass(request, remote=remote)  # a handshake
        socket = self._eio.sockets.get(sid)  # borrowed: engine.io's sessions by id
        if socket is None:
            return await self._refuse(request, Reason.UNKNOWN_SESSION, remote)
        if transport == "polling" and is_polling(socket):
            return await self._poll(request, sid, socket, remote)
        return await self._pass(request, remote=remote)  # an upgrade, or engine.io refuses it

    async def _poll(
        self, request: web.Request, sid: str, socket: Any, remote: str
    ) -> web.StreamResponse:
        if sid in self._polls:
            # One poll per session (as Engine.IO's reference server): a second
            # one would wait beside the first, and shutdown answers only one.
            overlap = Reason.OVERLAPPING_POLL
            return await self._refuse(request, overlap, remote, sid=sid, socket=socket)
        self._polls.add(sid)
        try:
            return await self._pass(request, sid=sid, socket=socket, remote=remote)
        finally:
            self._polls.discard(sid)

    async def _post(self, request: web.Request, sid: str | None, remote: str) -> web.StreamResponse:
        socket = self._eio.sockets.get(sid) if sid is not None else None
        known = sid if socket is not None else None  # never log a sid nobody issued

        async def refuse(reason: Reason, detail: str = "") -> web.StreamResponse:
            return await self._refuse(
                request, reason, remote, sid=known, socket=socket, detail=detail
            )

        # The size first: an oversized body is not read, whatever it is for.
        limit = self.max_body_bytes
        declared = request.content_length
        if declared is None and request.body_exists:  # chunked: no length to check
            return await refuse(Reason.TOO_LARGE, f"declared=none limit={limit}")
        if declared is not None and declared > limit:
            return await refuse(Reason.TOO_LARGE, f"declared={declared} limit={limit}")
        if known is None:
            return await refuse(Reason.UNKNOWN_SESSION)
        if not is_polling(socket):
            return await self._pass(request, remote=remote)  # engine.io refuses it unread
        try:
            body = await self._read_body(request)
        except _BodyTooLarge:  # a compressed body that inflates past the limit
            return await refuse(Reason.TOO_LARGE, f"declared={declared} decoded=more limit={limit}")
        except TimeoutError:
            if not self._stopping:
                timeout = f"declared={declared} timeout_s={self.body_timeout_s:g}"
                return await refuse(Reason.BODY_TIMEOUT, timeout)
            await self._end_session(known, socket)
            return await self._answer(request, 503, "Server shutting down")
        except (OSError, HttpProcessingError) as exc:  # cut short, or a broken encoding
            return await refuse(Reason.BAD_PAYLOAD, f"declared={declared} error={_name(exc)}")
        problem = check_payload(body, self.frames)
        if problem is not None:
            return await refuse(problem.reason, problem.detail)
        return await self._pass(request, sid=known, socket=socket, remote=remote, body=body)

    async def _read_body(self, request: web.Request) -> bytes:
        """The request's body, at most ``max_body_bytes`` after any content
        decoding; _BodyTooLarge past that, TimeoutError when it takes longer
        than ``body_timeout_s`` or the server stops meanwhile."""
        limit = self.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        async with asyncio.timeout(self.body_timeout_s) as deadline:
            self._reads.add(deadline)
            try:
                while size <= limit:
                    chunk = await request.content.read(limit + 1 - size)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
            finally:
                self._reads.discard(deadline)
        if size > limit:
            raise _BodyTooLarge
        return b"".join(chunks)

    async def _pass(
        self,
        request: web.Request,
        *,
        sid: str | None = None,
        socket: Any = None,
        remote: str = "-",
        body: bytes | None = None,
    ) -> web.StreamResponse:
        """engine.io's answer to ``request`` (with ``body`` as its body, if
        given); for a request of polling session ``sid``, what went wrong in
        engine.io meanwhile is the request's (see :class:`_EngineIOLog`)."""
        # borrowed: handle_request passes its arguments to the driver's
        # translate_request, which install_polling wraps to take ``body``.
        if sid is None:
            # Not a polling request: a handshake, an upgrade (whose WebSocket
            # session runs inside this call), what engine.io refuses.
            plain: web.StreamResponse = await self._eio.handle_request(request, body=body)
            if plain.status == 400:
                self._note(Reason.REFUSED, remote, None, f"status=400 method={request.method}")
            return plain
        served = _Request()
        token = _serving.set(served)
        try:
            response: web.StreamResponse = await self._eio.handle_request(request, body=body)
        except Exception as exc:  # noqa: BLE001 - engine.io's fault on client input
            served.other_faults.append(_name(exc))
        finally:
            _serving.reset(token)
        if served.other_faults:
            detail = f"error={served.other_faults[0]}"
            return await self._refuse(
                request, Reason.ENGINEIO_ERROR, remote, sid=sid, socket=socket, detail=detail
            )
        if served.message_faults:
            faults = served.message_faults
            detail = f"status={response.status} faults={len(faults)} error={faults[0]}"
            self._note(Reason.BAD_MESSAGE, remote, sid, detail)
        elif response.status == 400:
            self._note(Reason.REFUSED, remote, sid, f"status=400 method={request.method}")
        if socket.closed and request.method == "POST":
            # The client closed its session (a CLOSE packet): engine.io's
            # aborting close leaves a pending poll waiting; answer it now.
            await self._end_session(sid, socket)
        return response

    # -- refusing ----------------------------------------------------------

    async def _refuse(
        self,
        request: web.Request,
        reason: Reason,
        remote: str,
        *,
        sid: str | None = None,
        socket: Any = None,
        detail: str = "",
    ) -> web.StreamResponse:
        """Count, log (the first per address and reason in a window), end
        the session if the reason says so, answer and close the connection."""
        status, message, ends_session = _ANSWERS[reason]
        self._note(reason, remote, sid, f"status={status} {detail}".rstrip())
        if ends_session and sid is not None and socket is not None:
            await self._end_session(sid, socket)
        return await self._answer(request, status, message)

    def _note(self, reason: Reason, remote: str, sid: str | None, detail: str) -> None:
        self.counts[reason] += 1
        if self.incidents.note((remote, reason.value), time.monotonic()):
            log.warning(
                "bad engine.io request reason=%s remote=%s sid=%s %s",
                reason.value,
                remote,
                sid or "-",
                detail,
            )

    async def _answer(self, request: web.Request, status: int, message: str) -> web.Response:
        """Send ``status`` now and close the connection at once: the rest of
        a body is not read (nor lingered over, as aiohttp would)."""
        # borrowed (collab.upstream): engine.io's CORS headers, as on its own answers.
        headers = cors_headers(self._eio, self._environ(request))
        response = web.Response(
            status=status, text=json.dumps(message), content_type="text/plain", headers=headers
        )
        response.force_close()
        try:
            await response.prepare(request)
            await response.write_eof()
        finally:
            # aiohttp: flushes what was written, then closes the socket; the
            # handler's return skips aiohttp's lingering read of the body.
            request.protocol.force_close()
        return response

    async def _end_session(self, sid: str, socket: Any) -> None:
        if is_polling(socket):  # a stray HTTP request does not end a WebSocket session
            await end_polling_session(self._eio, sid, socket)

    # -- lifecycle ---------------------------------------------------------

    async def on_startup(self, _app: web.Application) -> None:
        self._summaries = asyncio.create_task(self._summarise())

    async def on_shutdown(self, _app: web.Application) -> None:
        """Answer what this module holds: body reads end now (503); polls of
        sessions already closed get a NOOP. (CollabApp.shutdown ends the
        polls of open sessions.)"""
        self._stopping = True
        now = asyncio.get_running_loop().time()
        for deadline in list(self._reads):
            deadline.reschedule(now)
        for sid in list(self._polls):
            socket = self._eio.sockets.get(sid)
            if socket is not None and socket.closed:
                socket.queue.put_nowait(_packet.Packet(_packet.NOOP))

    async def on_cleanup(self, _app: web.Application) -> None:
        if self._summaries is not None:
            self._summaries.cancel()
            await asyncio.gather(self._summaries, return_exceptions=True)
        self.flush(math.inf)  # what the last window counted

    async def _summarise(self) -> None:
        while True:
            await asyncio.sleep(self.summary_every_s)
            self.flush(time.monotonic())

    def flush(self, now: float) -> None:
        """Log one line per (address, reason) that repeated in a window that
        ended by ``now``, and the same for aiohttp's parser errors."""
        for repeats in self.incidents.drain(now):
            remote, reason = _key_parts(repeats.key)
            log.warning(
                "bad engine.io requests repeated reason=%s remote=%s count=%d window_s=%g",
                reason,
                remote,
                repeats.count,
                self.incidents.window_s,
            )
        _HTTP_ERRORS.flush(now)


POLLING_GUARD = web.AppKey("collab.polling", PollingGuard)


async def end_polling_session(eio: Any, sid: str, socket: Any) -> None:
    """End long-polling session ``sid`` now: engine.io's own ``disconnect``
    waits for a poll to drain the session's queue, which a client that
    stopped polling never does. A pending poll gets a CLOSE packet at once."""
    # borrowed: AsyncSocket.close(wait, abort, reason), .queue (an
    # asyncio.Queue a poll waits on), .closed; server.sockets, .reason.
    if not socket.closed:
        await socket.close(wait=False, abort=True, reason=eio.reason.TRANSPORT_ERROR)
    socket.queue.put_nowait(_packet.Packet(_packet.CLOSE))
    if eio.sockets.get(sid) is socket:
        del eio.sockets[sid]


def is_polling(socket: Any) -> bool:
    """Whether engine.io serves ``socket`` by long-polling (not upgraded)."""
    # borrowed: AsyncSocket.connected / .upgraded.
    return bool(socket.connected and not socket.upgraded)


def _name(exc: BaseException | type[BaseException]) -> str:
    """An exception's class, named for a log line (``binascii.Error``, ``KeyError``)."""
    cls = exc if isinstance(exc, type) else type(exc)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"


def _key_parts(key: Hashable) -> tuple[str, str]:
    """(address, reason) of an incident key; past Incidents.max_keys, ("*", "other")."""
    if isinstance(key, tuple) and len(key) == 2:
        return str(key[0]), str(key[1])
    return "*", str(key)


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


# -- logs ------------------------------------------------------------------


class _EngineIOLog(logging.Filter):
    """On engine.io's logger: a record with a traceback (a handler error,
    ``post request handler error``) made while serving a polling request
    becomes that request's fault (the guard counts and logs it); elsewhere it
    is kept as one line, the traceback replaced by the exception's class."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[0] is None:
            return True
        name = _name(record.exc_info[0])
        served = _serving.get()
        if served is not None:
            # borrowed: _trigger_event logs "message [async ]handler error".
            if str(record.msg).startswith("message "):
                served.message_faults.append(name)
            else:
                served.other_faults.append(name)
            return False
        record.msg = record.getMessage().replace("%", "%%") + " error=%s"
        record.args = (name,)
        record.exc_info = None
        record.exc_text = None
        return True


class _HttpParseErrors(logging.Filter):
    """On aiohttp's server logger: a request aiohttp could not parse (an
    over-long request line or header, a malformed one) is one line without
    traceback or content, the first per (address, error) in a window; the
    rest are counted and summed up by :meth:`flush`. Other records, a
    server fault's traceback included, pass untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.incidents = Incidents(window_s=60.0)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        # aiohttp: handle_error logs "Error handling request from %s", remote.
        args = record.args if isinstance(record.args, tuple) else ()
        remote = str(args[0]) if args else "-"
        name = type(exc).__name__
        record.msg = "bad HTTP request remote=%s error=%s status=%s"
        record.args = (remote, name, exc.code)
        if record.levelno > logging.WARNING:  # a client's fault, not the server's
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = None
        record.exc_text = None
        return self.incidents.note((remote, name), time.monotonic())

    def flush(self, now: float) -> None:
        for repeats in self.incidents.drain(now):
            remote, name = _key_parts(repeats.key)
            log.warning(
                "bad HTTP requests repeated remote=%s error=%s count=%d window_s=%g",
                remote,
                name,
                repeats.count,
                self.incidents.window_s,
            )


#: One per process, as the loggers they filter are.
_ENGINEIO_LOG = _EngineIOLog()
_HTTP_ERRORS = _HttpParseErrors()


# -- metrics ---------------------------------------------------------------


class _BadRequestCollector(Collector):
    def __init__(self, counts: Mapping[Reason, int]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "collab_bad_requests",
            "Engine.IO HTTP requests refused or faulted, by reason (protocol.md §1).",
            labels=["reason"],
        )
        for reason in Reason:
            family.add_metric([reason.value], self._counts[reason])
        yield family


# -- installing ------------------------------------------------------------


def install_polling(
    eio: Any, *, web_app: web.Application, metrics: Metrics, frames: FrameLimits | None = None
) -> PollingGuard:
    """Route Engine.IO's HTTP path through a :class:`PollingGuard`, which
    holds text packets to ``frames`` (a body as a whole is held to engine.io's
    ``max_http_buffer_size``).

    Call before ``sio.attach(web_app)`` (which adds the route). Counts go to
    ``metrics`` as ``collab_bad_requests_total{reason}``; the guard is
    ``web_app[POLLING_GUARD]``. Raises RuntimeError if python-engineio no
    longer has the driver entries this module replaces.
    """
    # borrowed (collab.upstream): the async driver table (transport.py
    # replaces its "websocket" entry): "create_route" adds the aiohttp
    # routes, "translate_request" turns a request into the environ engine.io
    # reads. RuntimeError here if python-engineio changed them.
    driver = driver_table(eio)
    guard = PollingGuard(eio, frames=frames)
    stock_environ = driver["translate_request"]

    def translate_request(request: web.Request, body: bytes | None = None) -> dict[str, Any]:
        environ: dict[str, Any] = stock_environ(request)
        if body is not None:
            environ["wsgi.input"] = _Body(body)
            environ["CONTENT_LENGTH"] = str(len(body))  # decoded, if it was compressed
        return environ

    def create_route(app: web.Application, server: Any, path: str) -> None:
        if server is not eio:
            raise RuntimeError("collab.polling guards one Engine.IO server per app")
        app.router.add_get(path, guard.handle)
        app.router.add_post(path, guard.handle)
        app.router.add_route("OPTIONS", path, guard.handle)

    replace_driver_entries(eio, create_route=create_route, translate_request=translate_request)
    eio.logger.addFilter(_ENGINEIO_LOG)  # Logger.addFilter adds it once
    server_logger.addFilter(_HTTP_ERRORS)
    metrics.registry.register(_BadRequestCollector(guard.counts))
    web_app[POLLING_GUARD] = guard
    web_app.on_startup.append(guard.on_startup)
    web_app.on_shutdown.append(guard.on_shutdown)
    web_app.on_cleanup.append(guard.on_cleanup)
    return guard
