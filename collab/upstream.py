"""Everything collab takes from python-engineio, python-socketio and aiohttp
beyond their public API, in one place (docs/architecture.md §10).

Each borrowed name is read here and nowhere else; tests/unit/test_upstream.py
is the canary: it checks that every attribute used exists in the installed
versions, and that the upstream code collab copies or relies on is the code
it was written against (a SHA-256 of its source, :data:`PINNED_SOURCES`). A
dependency upgrade that changes any of it fails that test, loudly, instead
of showing up as updates silently not relayed. pyproject.toml caps each of
the three below its next minor release, and constraints.txt pins the
versions CI tests (README, "Upgrading dependencies").

What is borrowed, and why:

* ``eio._async``, python-engineio's table of its aiohttp driver: collab
  replaces the ``websocket`` entry (collab.transport: its own read loop and
  1001 on shutdown) and ``create_route``/``translate_request``
  (collab.polling: long-polling requests checked before engine.io reads them).
* ``AsyncSocket._websocket_handler``: the handler collab.transport's
  ``_serve_websocket`` stands in for (only when the handler is that one);
  collab.transport's subclass of the driver's ``WebSocket`` class sets the
  ``_sock`` its methods use, and reads ``handler`` and ``server``.
* ``AsyncServer._cors_headers``: collab.polling answers with engine.io's CORS
  headers.
* ``WebSocketResponse._writer.transport`` and ``asyncio.Queue._queue``: the
  broadcast fast path writes a frame straight to the socket's transport when
  the Engine.IO queue is empty (collab.broadcast).
* Engine.IO's heartbeat: ``AsyncSocket.last_ping`` and ``schedule_ping``
  (called at the connect and at every PONG; ``check_ping_timeout`` reads
  ``last_ping`` before every send) and the order of ``AsyncServer._handle_connect``
  (the socket is in ``sockets`` when the connect event runs, and
  ``schedule_ping`` is called after it): collab.heartbeat pings every session
  from one timer instead (:func:`take_over_heartbeat`).
* ``AsyncServer._binary_packet``: a binary packet waiting for its
  attachments (collab.sessions bounds them).
* ``AsyncServer._handle_connect``'s order: the connect handler returns, then
  CONNECT is queued and the namespace marked connected, without a yield in
  between; :func:`wait_connected` relies on it.
* python-socketio's ``manager.pre_connect``/``disconnect`` and
  ``AsyncServer._handle_disconnect``/``environ``: its ``_handle_eio_disconnect``
  walks every namespace of the server for each session that ends (O(rooms)
  per disconnect); :class:`SessionNamespaces` knows which namespaces each
  session joined and ends only those.
* python-socketio's dispatch of a BINARY_EVENT (``_handle_eio_message``,
  ``_handle_event``: the next message is the attachment; an event of a
  namespace that is not connected, or still connecting, is dropped; a
  ``namespace="*"`` handler is called ``handler(namespace, sid, *args)``):
  collab.sessions hands a ``sync-update``'s attachment to its handler the
  same way, skipping the packet's decoding (``manager.sid_from_eio_sid``,
  ``manager.is_connected``).
* python-socketio's ``AsyncServer._send_packet`` (encode, then ``eio.send``
  each part) and engine.io's ``AsyncSocket.send`` (``check_ping_timeout``,
  then the queue): :func:`install_direct_sends` puts the parts in a
  collab.front session's ``Outbox`` itself.
* python-socketio's *client* (collab.client): :class:`SocketIOClient` works
  around two of its faults through ``_handle_eio_*``, ``_binary_packet`` and
  Engine.IO's send queue (its own canary: tests/unit/test_client_adapter.py).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import engineio.async_server
import engineio.async_socket
import engineio.base_server
import orjson
import socketio.async_manager
import socketio.async_server
import socketio.packet
from aiohttp import web

from collab.packet_queue import Outbox

__all__ = [
    "PINNED_SOURCES",
    "STOCK_WEBSOCKET_HANDLER",
    "Event",
    "SessionNamespaces",
    "binary_event_header",
    "binary_packet_pending",
    "cors_allowed_origins",
    "cors_headers",
    "driver_table",
    "drop_binary_packet",
    "eio_sid_of",
    "emit_to",
    "engineio_connect_event",
    "install_direct_sends",
    "is_stock_websocket_handler",
    "outbox_of",
    "pinned_functions",
    "put_event",
    "put_messages",
    "queue_items",
    "replace_driver_entries",
    "send_ack",
    "send_messages",
    "socket_sid",
    "source_digest",
    "start_tcp_site",
    "take_ack",
    "take_over_heartbeat",
    "wait_connected",
    "websocket_transport",
]

#: python-engineio's WebSocket handler, which collab.transport stands in for.
STOCK_WEBSOCKET_HANDLER: Callable[..., Any] | None = getattr(
    engineio.async_socket.AsyncSocket, "_websocket_handler", None
)

#: The upstream functions collab copies or relies on, by qualified name, and
#: the SHA-256 of their source in the versions collab was tested with
#: (constraints.txt). tests/unit/test_upstream.py compares.
PINNED_SOURCES: dict[str, str] = {
    # python-engineio 4.15.1
    "engineio.async_socket.AsyncSocket.send": (
        "0437276ccba7ab091471e29f4bc6a0f178da7b16a590c707d6c69a97609e6d14"
    ),
    "engineio.async_socket.AsyncSocket._websocket_handler": (
        "27f120df4d717a24478b7b0f7389ce19eea8a881dd07e2c81fb1cf2493e006a5"
    ),
    "engineio.async_socket.AsyncSocket.schedule_ping": (
        "fe316639159cd70d34cdb911a055fc1a0056ff15615b8460a1ab6593c95e9372"
    ),
    "engineio.async_socket.AsyncSocket.check_ping_timeout": (
        "77616d5ca7809257d5d1866f271e7cc3e114663cfe2772cafda63a7393c880d0"
    ),
    "engineio.async_socket.AsyncSocket.receive": (
        "a91ae36ec2fb5340713ec03be88b1ece9887d2f3116ff09f24dda3a6d965db28"
    ),
    "engineio.async_server.AsyncServer._handle_connect": (
        "5bd7edc1d1ae115ae973b4a39b435d3b243a3c9b1e3218f21bbeb7ef6aa37e93"
    ),
    "engineio.async_server.AsyncServer._trigger_event": (
        "4a09b6e47eb665325458df5d59b61d13547449eedb0ef25ce0b634005dae633b"
    ),
    "engineio.base_server.BaseServer._cors_allowed_origins": (
        "d0cad0c66d5333cb9f89d0e86a29a80af3654b3cd4a1ca4e7e89fc850f55d85d"
    ),
    # aiohttp 3.14.5
    "aiohttp.web_runner.TCPSite.start": (
        "0baaeca3d4f956ad5e5e05e7379dce04b117f2386f53640463e7879325d8c654"
    ),
    # python-socketio 5.18.1
    "socketio.async_server.AsyncServer._handle_eio_message": (
        "bef50fc0e1635921c922995dba721d05d1c5ccc95d6a6b7647a1db75c4e6032e"
    ),
    "socketio.async_server.AsyncServer._handle_event": (
        "65178105ef8b593d1ebb63610cbabab0c29654cee50fd669ba0a66590f2e1f54"
    ),
    "socketio.async_server.AsyncServer._handle_event_internal": (
        "472e8b723a12d507ce3ee3eb8e1643cd326bdd9cc669392e6a636ec7aafdb366"
    ),
    "socketio.async_server.AsyncServer._trigger_event": (
        "01ba90cfa09ba43e73738d2faebbaa179cc5fe5be5bf1eb3acf5fc60fa498d9f"
    ),
    "socketio.async_server.AsyncServer._handle_eio_disconnect": (
        "9344593148b66fd9b4e7614e7a1427f641c74c8cbf1d85263c0ca70d8bfeace5"
    ),
    "socketio.async_server.AsyncServer._handle_connect": (
        "c97c480cf777de36bd6348c6335ac61b324e6ed16372660100d10223faf79a74"
    ),
    "socketio.async_server.AsyncServer.emit": (
        "84391bfd624104d1537da4f557e4d1389fc331d202d2b1aa219bf798c52c80f0"
    ),
    "socketio.async_server.AsyncServer._handle_ack": (
        "b7521c6c3097255159595c9dce09073780872606dffbbf8b8e71768982d8846c"
    ),
    "socketio.async_server.AsyncServer._send_packet": (
        "a00022b42c1c29e908fd601c32aa1854aeaf2f131b3acc12461f6030e1ab9e9b"
    ),
    "socketio.async_manager.AsyncManager.trigger_callback": (
        "9cf95a1d1a3aaeebaa1b345247a98a53db8c7ab6f97b8f465a0696798aac2ce8"
    ),
    "socketio.async_manager.AsyncManager.emit": (
        "01ccd5b82b4f955e4f2e4d07b5fbf09cacef868e9f61bc2abe56d92118a5f3ac"
    ),
}


def source_digest(function: Callable[..., Any]) -> str:
    """SHA-256 of ``function``'s source (for :data:`PINNED_SOURCES`)."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def pinned_functions() -> dict[str, Callable[..., Any]]:
    """The functions :data:`PINNED_SOURCES` names, as installed."""
    return {
        "engineio.async_socket.AsyncSocket._websocket_handler": (
            engineio.async_socket.AsyncSocket._websocket_handler
        ),
        "engineio.async_socket.AsyncSocket.schedule_ping": (
            engineio.async_socket.AsyncSocket.schedule_ping
        ),
        "engineio.async_socket.AsyncSocket.check_ping_timeout": (
            engineio.async_socket.AsyncSocket.check_ping_timeout
        ),
        "engineio.async_socket.AsyncSocket.receive": engineio.async_socket.AsyncSocket.receive,
        "engineio.async_server.AsyncServer._handle_connect": (
            engineio.async_server.AsyncServer._handle_connect
        ),
        "engineio.async_server.AsyncServer._trigger_event": (
            engineio.async_server.AsyncServer._trigger_event
        ),
        "engineio.base_server.BaseServer._cors_allowed_origins": (
            engineio.base_server.BaseServer._cors_allowed_origins
        ),
        "aiohttp.web_runner.TCPSite.start": web.TCPSite.start,
        "socketio.async_server.AsyncServer._handle_eio_message": (
            socketio.async_server.AsyncServer._handle_eio_message
        ),
        "socketio.async_server.AsyncServer._handle_event": (
            socketio.async_server.AsyncServer._handle_event
        ),
        "socketio.async_server.AsyncServer._handle_event_internal": (
            socketio.async_server.AsyncServer._handle_event_internal
        ),
        "socketio.async_server.AsyncServer._trigger_event": (
            socketio.async_server.AsyncServer._trigger_event
        ),
        "socketio.async_server.AsyncServer._handle_eio_disconnect": (
            socketio.async_server.AsyncServer._handle_eio_disconnect
        ),
        "socketio.async_server.AsyncServer._handle_connect": (
            socketio.async_server.AsyncServer._handle_connect
        ),
        "socketio.async_server.AsyncServer.emit": socketio.async_server.AsyncServer.emit,
        "socketio.async_server.AsyncServer._send_packet": (
            socketio.async_server.AsyncServer._send_packet
        ),
        "engineio.async_socket.AsyncSocket.send": engineio.async_socket.AsyncSocket.send,
        "socketio.async_server.AsyncServer._handle_ack": (
            socketio.async_server.AsyncServer._handle_ack
        ),
        "socketio.async_manager.AsyncManager.trigger_callback": (
            socketio.async_manager.AsyncManager.trigger_callback
        ),
        "socketio.async_manager.AsyncManager.emit": socketio.async_manager.AsyncManager.emit,
    }


# -- python-engineio ------------------------------------------------------------------


def driver_table(eio: Any) -> dict[str, Any]:
    """The Engine.IO server's driver table (``eio._async``); RuntimeError if
    it is not there or lacks what collab replaces."""
    table = getattr(eio, "_async", None)
    missing = {"websocket", "create_route", "translate_request"} - set(table or {})
    if not isinstance(table, dict) or missing:
        raise RuntimeError(
            f"python-engineio changed: its driver table lacks {sorted(missing)}; "
            "collab.upstream needs updating"
        )
    return table


def replace_driver_entries(eio: Any, **entries: Any) -> None:
    """Replace entries of the Engine.IO server's driver table."""
    eio._async = {**driver_table(eio), **entries}


def cors_allowed_origins(eio: Any, environ: dict[str, Any]) -> list[str] | None:
    """The origins engine.io accepts for a request with ``environ`` (None: any)."""
    allowed: list[str] | None = eio._cors_allowed_origins(environ)
    return allowed


async def engineio_connect_event(eio: Any, sid: str, environ: dict[str, Any]) -> Any:
    """Engine.IO's connect event for a new session, as ``_handle_connect``
    triggers it: the handler's answer, False if it raised."""
    return await eio._trigger_event("connect", sid, environ, run_async=False)


def cors_headers(eio: Any, environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The CORS headers engine.io puts on its own answers to ``environ``."""
    headers: list[tuple[str, str]] = eio._cors_headers(environ)
    return headers


def take_over_heartbeat(socket: Any, pong: Callable[[], None]) -> None:
    """Engine.IO's own heartbeat of ``socket`` stops (collab.heartbeat runs
    it): ``schedule_ping``, which engine.io calls after the connect and at
    every PONG, becomes ``pong``, and with ``last_ping`` None its
    ``check_ping_timeout`` (run before every send) never ends the session."""
    socket.last_ping = None
    socket.schedule_ping = pong


def is_stock_websocket_handler(handler: Any) -> bool:
    """Whether ``handler`` (a bound method) is python-engineio's WebSocket handler."""
    return getattr(handler, "__func__", None) is STOCK_WEBSOCKET_HANDLER


# -- python-socketio ----------------------------------------------------------------


async def send_ack(sio: Any, eio_sid: str, namespace: str, ack_id: int, answer: Any) -> None:
    """Acknowledge event ``ack_id`` of ``namespace`` with a handler's
    ``answer``, as python-socketio's ``_handle_event_internal`` does (None is
    no argument, a tuple several). One ``bytes`` answer (a sync step's) is
    sent as the BINARY_ACK python-socketio would encode, without building it."""
    if isinstance(answer, bytes):
        await send_messages(sio.eio, eio_sid, (_binary_ack_header(namespace, ack_id), answer))
        return
    pkt = sio.packet_class(
        socketio.packet.ACK, namespace=namespace, id=ack_id, data=_arguments(answer)
    )
    await sio._send_packet(eio_sid, pkt)


def install_direct_sends(sio: Any) -> None:
    """python-socketio's every send to one session (``_send_packet``: the
    answer to a CONNECT, an event, an ack, a DISCONNECT) goes, for a session
    of collab.front, straight to its ``Outbox`` (:func:`put_messages`),
    without engine.io's ``send`` → ``send_packet`` → ``AsyncSocket.send``
    layers; any other session takes them, as python-socketio's own does."""
    eio = sio.eio

    async def send_packet(eio_sid: str, pkt: Any) -> None:
        await send_messages(eio, eio_sid, _messages_of(pkt))

    sio._send_packet = send_packet


async def send_messages(eio: Any, eio_sid: str, messages: Sequence[str | bytes]) -> None:
    """Engine.IO MESSAGEs for session ``eio_sid``: put in its ``Outbox``
    (:func:`put_messages`), else sent through engine.io as
    python-socketio's ``_send_packet`` sends them."""
    if not put_messages(eio, eio_sid, messages):
        for message in messages:
            await eio.send(eio_sid, message)


def put_messages(eio: Any, eio_sid: str, messages: Sequence[str | bytes]) -> bool:
    """Engine.IO MESSAGEs for session ``eio_sid``, put in its ``Outbox``
    (written at once while its connection takes them, else held in order)
    when it is a collab.front session that is not closed; False for any
    other (the caller sends them through engine.io, which also says what a
    closed or unknown session says). Skips ``AsyncSocket.send``'s
    ``check_ping_timeout``, a no-op since collab.heartbeat took over
    (:func:`take_over_heartbeat`)."""
    outbox = _outbox(eio, eio_sid)
    if outbox is None:
        return False
    for message in messages:
        outbox.put_message(message)
    return True


def _arguments(value: Any) -> list[Any]:
    """An event's or ack's arguments as python-socketio makes them from one
    value: a tuple is several, None none, anything else one."""
    if value is None:
        return []
    if isinstance(value, tuple):
        return list(value)
    return [value]


async def take_ack(sio: Any, sid: str, ack_id: int, arguments: list[Any]) -> None:
    """A client's acknowledgement ``ack_id`` of an event the server sent
    ``sid``, with ``arguments``: the callback runs as python-socketio's
    ``_handle_ack`` runs it (an unknown id is ignored)."""
    await sio.manager.trigger_callback(sid, ack_id, arguments)


def _json_event(namespace: str, event: str, data: Any, ack_id: int | None) -> str | None:
    """The EVENT python-socketio encodes (with collab.packets' orjson) for
    ``event`` with ``data``, or None where it would encode something else:
    orjson refuses bytes (a BINARY_EVENT) and what collab.packets hands on
    to the json module."""
    try:
        body = orjson.dumps([event, *_arguments(data)])
    except TypeError:
        return None
    return _packet_head("2", namespace, ack_id) + body.decode("utf-8")


def binary_event_header(namespace: str, event: str, ack_id: int | None = None) -> str:
    """The BINARY_EVENT python-socketio encodes for ``event`` with one
    ``bytes`` argument (and ack ``ack_id``), its attachment sent after it."""
    head = _packet_head("51-", namespace, ack_id)
    return f'{head}["{_event_name(event)}",{{"_placeholder":true,"num":0}}]'


@functools.lru_cache(maxsize=64)
def _event_name(event: str) -> str:
    """``event`` inside a JSON string, as python-socketio's encoder writes it."""
    return json.dumps(event)[1:-1]


def _binary_ack_header(namespace: str, ack_id: int) -> str:
    return _packet_head("61-", namespace, ack_id) + '[{"_placeholder":true,"num":0}]'


def _packet_head(kind: str, namespace: str, ack_id: int | None) -> str:
    """A Socket.IO packet's type (and attachment count), namespace and ack id,
    as python-socketio writes them before the data."""
    where = f"{namespace}," if namespace != "/" else ""
    return f"{kind}{where}{'' if ack_id is None else ack_id}"


async def emit_to(
    sio: Any,
    event: str,
    data: Any,
    *,
    to: str,
    namespace: str,
    callback: Callable[..., Any] | None = None,
) -> None:
    """``sio.emit(event, data, to=to, namespace=namespace, callback=...)``
    for one connection, without the manager's task per packet and
    ``asyncio.wait``: the packet is sent as ``AsyncManager.emit`` would send
    it to that one participant (a tuple is several arguments, None none),
    and not at all if ``to`` is no longer connected there."""
    manager = sio.manager
    eio_sid = manager.eio_sid_from_sid(to, namespace)
    if eio_sid is None:
        return
    ack_id = manager._generate_ack_id(to, callback) if callback else None
    await send_messages(sio.eio, eio_sid, _event_messages(sio, event, data, namespace, ack_id))


def outbox_of(sio: Any, sid: str, namespace: str) -> Outbox | None:
    """The ``Outbox`` of the collab.front session behind connection ``sid``
    (None if it is gone, closed, or another kind of session)."""
    eio_sid = sio.manager.eio_sid_from_sid(sid, namespace)
    return None if eio_sid is None else _outbox(sio.eio, eio_sid)


def _outbox(eio: Any, eio_sid: str) -> Outbox | None:
    socket = eio.sockets.get(eio_sid)
    if socket is None or socket.closed or type(socket.queue) is not Outbox:
        return None
    queue: Outbox = socket.queue
    return queue


#: An event for one connection: its name, its data, and its ack callback or None.
Event = tuple[str, Any, Callable[..., Any] | None]


def put_event(sio: Any, outbox: Outbox, to: str, namespace: str, event: Event) -> None:
    """:func:`emit_to` without waiting, for a collab.front session: ``event``
    (its name, data and ack callback or None) is put in ``to``'s ``outbox``
    (:func:`outbox_of`), now."""
    name, data, callback = event
    ack_id = sio.manager._generate_ack_id(to, callback) if callback else None
    for message in _event_messages(sio, name, data, namespace, ack_id):
        outbox.put_message(message)


def _event_messages(
    sio: Any, event: str, data: Any, namespace: str, ack_id: int | None
) -> Sequence[str | bytes]:
    """The Engine.IO MESSAGEs of an EVENT python-socketio would encode."""
    if isinstance(data, bytes):  # one attachment (a sync step, awareness)
        return (binary_event_header(namespace, event, ack_id), data)
    text = _json_event(namespace, event, data, ack_id)
    if text is not None:
        return (text,)
    pkt = sio.packet_class(
        socketio.packet.EVENT, namespace=namespace, data=[event, *_arguments(data)], id=ack_id
    )
    return _messages_of(pkt)


def _messages_of(pkt: Any) -> Sequence[str | bytes]:
    """The Engine.IO MESSAGEs of python-socketio's packet ``pkt`` (a binary
    one is its header, then its attachments)."""
    encoded = pkt.encode()
    return encoded if isinstance(encoded, list) else (encoded,)


def eio_sid_of(sio: Any, sid: str, namespace: str) -> str | None:
    """The Engine.IO session id behind a Socket.IO connection."""
    eio_sid: str | None = sio.manager.eio_sid_from_sid(sid, namespace)
    return eio_sid


def binary_packet_pending(sio: Any, eio_sid: str) -> bool:
    """Whether a binary packet of the session waits for its attachments."""
    return eio_sid in sio._binary_packet


def socket_sid(sio: Any, eio_sid: str, namespace: str) -> str | None:
    """The Socket.IO sid of Engine.IO session ``eio_sid`` in ``namespace``, if
    it joined it (python-socketio's ``manager.sid_from_eio_sid``)."""
    sid: str | None = sio.manager.sid_from_eio_sid(eio_sid, namespace)
    return sid


def drop_binary_packet(sio: Any, eio_sid: str) -> None:
    """Forget the session's binary packet that waits for its attachments."""
    sio._binary_packet.pop(eio_sid, None)


class SessionNamespaces:
    """The namespaces each Engine.IO session has joined in python-socketio's
    manager, kept by wrapping the manager's ``pre_connect`` and
    ``disconnect`` (every join and leave goes through them), so that a session's end
    disconnects those namespaces only: python-socketio's own
    ``_handle_eio_disconnect`` (pinned above) calls ``_handle_disconnect``
    for every namespace the server has, one per room and document, for
    every session that ends."""

    def __init__(self, sio: Any) -> None:
        self.sio = sio
        #: Engine.IO sid → the namespaces it is in (at most a session's documents).
        self.of: dict[str, set[str]] = {}
        manager = sio.manager
        pre_connect, disconnect = manager.pre_connect, manager.disconnect

        async def tracked_pre_connect(eio_sid: str, namespace: str) -> Any:
            sid = await pre_connect(eio_sid, namespace)
            if sid is not None:
                self.of.setdefault(eio_sid, set()).add(namespace)
            return sid

        async def tracked_disconnect(sid: str, namespace: str, **kwargs: Any) -> Any:
            eio_sid = manager.eio_sid_from_sid(sid, namespace)
            result = await disconnect(sid, namespace, **kwargs)
            names = self.of.get(eio_sid) if eio_sid is not None else None
            if names is not None and manager.sid_from_eio_sid(eio_sid, namespace) is None:
                names.discard(namespace)
                if not names:
                    del self.of[eio_sid]
            return result

        manager.pre_connect = tracked_pre_connect
        manager.disconnect = tracked_disconnect

    async def end_session(self, eio_sid: str, reason: Any = None) -> None:
        """What python-socketio's ``_handle_eio_disconnect`` does, for the
        namespaces ``eio_sid`` joined only."""
        for namespace in list(self.of.pop(eio_sid, ())):
            await self.sio._handle_disconnect(eio_sid, namespace, reason)
        self.sio.environ.pop(eio_sid, None)


async def wait_connected(sio: Any, sid: str, namespace: str) -> bool:
    """Wait until python-socketio has sent CONNECT for ``sid`` (called from a
    task the connect handler started); False if it never did (the connect
    was refused after all, or the client left).

    python-socketio marks the namespace connected right after the handler
    returns, in the same turn (``_handle_connect``: pinned above), so this
    normally returns at the first check; the few turns after are a margin.
    """
    for _ in range(100):
        if sio.manager.is_connected(sid, namespace):
            return True
        await asyncio.sleep(0)
    return False


# -- aiohttp and asyncio ------------------------------------------------------------


async def start_tcp_site(site: web.TCPSite, protocol_factory: Callable[[], Any]) -> None:
    """``TCPSite.start`` with ``protocol_factory`` instead of the runner's
    aiohttp server (collab.front hands it the connections it does not serve)."""
    await web.BaseSite.start(site)  # registers the site with its runner
    loop = asyncio.get_running_loop()
    site._server = await loop.create_server(
        protocol_factory,
        site._host,
        site._port,
        ssl=site._ssl_context,
        backlog=site._backlog,
        reuse_address=site._reuse_address,
        reuse_port=site._reuse_port,
    )
    sockets = site._server.sockets
    site._bound_port = sockets[0].getsockname()[1] if sockets else site._port


def websocket_transport(ws: Any) -> asyncio.Transport | None:
    """The transport under an open WebSocket: aiohttp's response, or a
    collab.front connection (None once it closed)."""
    if not isinstance(ws, web.WebSocketResponse):
        lean: asyncio.Transport | None = ws.transport
        return lean
    writer = getattr(ws, "_writer", None)
    if writer is None:
        return None
    transport: asyncio.Transport | None = writer.transport
    return transport


def queue_items(queue: asyncio.Queue[Any]) -> deque[Any]:
    """An asyncio.Queue's deque: its truth is a C-level check, not a method call."""
    items: deque[Any] = queue._queue  # type: ignore[attr-defined]
    return items


# -- python-socketio's client (collab.client) ---------------------------------------


class SocketIOClient(socketio.AsyncClient):  # type: ignore[misc]
    """python-socketio's client, with two faults worked around, and ``ended``
    and ``settle`` for a client that reconnects by itself.

    Engine.IO's client hands every message to python-socketio in a task of
    its own (``_trigger_event(..., run_async=True)``), but handles the end of
    a connection inline. A binary event is two messages, its header and its
    attachment; python-socketio keeps the header in ``_binary_packet`` until
    the attachment comes, and clears it when the connection ends. So when a
    connection ends between the two messages' tasks (the server went away
    right after sending a large ``sync-update``), the attachment's task finds
    no header, parses the raw update as a packet, and dies with ``ValueError``
    ("Task exception was never retrieved"). Run the other way round, a
    header's task that runs after the end leaves ``_binary_packet`` set, and
    the next connection's first packet (its CONNECT) is taken for that
    header's attachment and lost.

    The fix belongs upstream (Engine.IO's client should not let messages of a
    connection outlive it); until then, a message whose connection has ended
    is dropped here. Nothing is lost by that: the next connection's handshake
    exchanges state vectors (protocol.md §4). Engine.IO's ``state`` leaves
    ``connected`` before or as soon as the end is handled, before any task
    created earlier can run.

    The other fault: Engine.IO's client keeps one send queue for all its
    connections, and its writer leaves a packet it failed to send at the end
    of one unaccounted for, so ``queue.join()`` never returns after that.
    Each connection gets a fresh queue here.

    The third: when the server ends a connection (an Engine.IO CLOSE),
    Engine.IO's client calls ``disconnect(abort=True)``, which queues the
    None that ends its writer and then empties the queue (``_reset``), None
    included. Its reader then waits for the writer, which waits for a packet
    for the longer of the ping interval and timeout, plus 5 s (30 s against
    collab's defaults): ``settle`` (so a close, a reconnect, a client told to
    go) would wait as long. ``settle`` queues the None again.

    ``tests/unit/test_client_adapter.py`` fails when an upgrade changes what
    this relies on (the private names below) or fixes the first fault
    upstream.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        #: Set when an Engine.IO connection ends (cleared when one opens).
        self.ended = asyncio.Event()

    async def _handle_eio_connect(self) -> None:
        # A connection starts with no half-received binary event, and with a
        # send queue of its own (see above).
        self._binary_packet = None
        self.eio.queue = self.eio.create_queue()
        self.ended.clear()
        await super()._handle_eio_connect()

    async def _handle_eio_message(self, data: str | bytes) -> None:
        if self.eio.state != "connected":
            return  # a message of a connection that has ended (see above)
        await super()._handle_eio_message(data)

    async def _handle_eio_disconnect(self, reason: str) -> None:
        await super()._handle_eio_disconnect(reason)
        self.ended.set()

    async def settle(self) -> None:
        """Return once Engine.IO has finished with its last connection (its
        read loop has ended and reset the client), so ``connect`` may run."""
        eio = self.eio
        task = eio.read_loop_task
        if task is None or task.done() or task is asyncio.current_task():
            return
        if eio.state == "disconnected" and eio.write_loop_task is not None:
            # The third fault (see above): the writer waits for a packet
            # that its own ``_reset`` took away; this one ends it.
            eio.queue.put_nowait(None)
        await asyncio.wait([task])
