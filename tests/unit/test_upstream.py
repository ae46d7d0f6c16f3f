"""The canary for collab.upstream: what collab borrows from python-engineio,
python-socketio and aiohttp beyond their public API is still there, and the
upstream code it copies or relies on is the code it was written against.

When this fails after an upgrade: read the upstream change, update the code
in collab that depends on it (collab.upstream says where), then the pinned
digest, constraints.txt and the version caps in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import inspect

import engineio.async_socket
import pytest
import socketio
from aiohttp import web

from collab import upstream


@pytest.mark.parametrize("name", sorted(upstream.PINNED_SOURCES))
def test_the_upstream_code_collab_relies_on_is_unchanged(name):
    function = upstream.pinned_functions()[name]
    assert upstream.source_digest(function) == upstream.PINNED_SOURCES[name], (
        f"{name} changed upstream: review collab.upstream's users before updating the digest"
    )


def test_the_websocket_handler_collab_replaces_is_there():
    assert upstream.STOCK_WEBSOCKET_HANDLER is not None
    assert inspect.iscoroutinefunction(upstream.STOCK_WEBSOCKET_HANDLER)


async def test_the_engineio_driver_table_has_what_collab_replaces():
    sio = socketio.AsyncServer(async_mode="aiohttp")
    table = upstream.driver_table(sio.eio)
    assert {"websocket", "create_route", "translate_request"} <= set(table)
    assert hasattr(sio.eio, "_cors_headers")  # collab.polling answers CORS like engine.io


async def test_the_socketio_internals_are_there():
    sio = socketio.AsyncServer(async_mode="aiohttp")
    assert not upstream.binary_packet_pending(sio, "nobody")
    upstream.drop_binary_packet(sio, "nobody")
    assert upstream.eio_sid_of(sio, "nobody", "/") is None
    assert await upstream.wait_connected(sio, "nobody", "/") is False
    socket_fields = inspect.signature(engineio.async_socket.AsyncSocket.__init__).parameters
    assert "server" in socket_fields and "sid" in socket_fields


async def test_a_websocket_response_exposes_its_transport_and_a_queue_its_deque():
    queue: asyncio.Queue[int] = asyncio.Queue()
    queue.put_nowait(1)
    assert list(upstream.queue_items(queue)) == [1]
    ws = web.WebSocketResponse()
    assert upstream.websocket_transport(ws) is None  # not prepared: no writer yet
    assert hasattr(ws, "_writer")


@pytest.mark.parametrize("namespace", ["/", "/yjs|room-1"])
def test_the_binary_ack_header_is_python_socketio_s(namespace):
    from socketio import packet

    from collab.upstream import _binary_ack_header

    encoded = packet.Packet(packet.ACK, namespace=namespace, id=42, data=[b"\x00"]).encode()
    assert encoded[0] == _binary_ack_header(namespace, 42)


@pytest.mark.parametrize("namespace", ["/", "/yjs|room-1"])
@pytest.mark.parametrize("ack_id", [None, 7])
@pytest.mark.parametrize("event", ["sync-step-1", 'odd "name" \u00e9'])
def test_the_binary_event_header_is_python_socketio_s(namespace, ack_id, event):
    from socketio import packet

    from collab.upstream import binary_event_header

    pkt = packet.Packet(packet.EVENT, namespace=namespace, id=ack_id, data=[event, b"\x00"])
    assert pkt.encode()[0] == binary_event_header(namespace, event, ack_id)


@pytest.mark.parametrize("namespace", ["/", "/yjs|room-1"])
@pytest.mark.parametrize("ack_id", [None, 7])
@pytest.mark.parametrize(
    "data",
    [{"a": 1, "b": [1, 2.5, None, True], "c": "é\u2028"}, None, (1, "two"), "text", [[]]],
)
def test_a_json_event_is_encoded_as_collab_s_packets_encode_it(namespace, ack_id, data):
    from socketio import packet

    from collab.packets import CollabPacket
    from collab.upstream import _arguments, _json_event

    pkt = CollabPacket(packet.EVENT, namespace=namespace, id=ack_id, data=["e", *_arguments(data)])
    assert _json_event(namespace, "e", data, ack_id) == pkt.encode()


@pytest.mark.parametrize("data", [{"bin": b"\x00"}, {1: "int key"}, [2**70]])
def test_what_orjson_will_not_encode_takes_python_socketio_s_way(data):
    from collab.upstream import _json_event

    assert _json_event("/", "e", data, None) is None
