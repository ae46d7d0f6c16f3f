"""A ``sync-update`` as the y-socket.io provider sends it skips python-socketio
(collab.sessions: its attachment goes straight to the handler) and is handled
exactly as before: relayed, refused with the same typed errors, dropped for a
namespace the session has not joined."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from pycrdt import Doc, Map

from tests.boards import DrawingDoc, shapes
from tests.rawsio import RawSocket

NS = "/yjs|fast"
HEADER = '451-{ns},["sync-update",{{"_placeholder":true,"num":0}}]'


async def _errors(raw: RawSocket, count: int) -> list[dict[str, object]]:
    """The next ``count`` collab:error payloads the raw socket receives."""
    found: list[dict[str, object]] = []
    prefix = f'42{NS},["collab:error",'
    while len(found) < count:
        msg = await raw.ws.receive()
        if msg.type is aiohttp.WSMsgType.TEXT and msg.data.startswith(prefix):
            found.append(json.loads(msg.data[len(f"42{NS},") :])[1])
        elif msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise AssertionError(f"the session ended: {msg.type}")
    return found


async def test_a_provider_update_is_relayed_and_counted(server_factory, client_factory):
    srv = await server_factory()
    reader = await client_factory(srv.url, "fast")
    writer = await client_factory(srv.url, "fast")
    before = srv.app.sessions.fast_updates
    writer.doc.get("shapes", type=Map)["a"] = {"type": "rect"}
    await reader.wait_for(lambda: "a" in shapes(reader))
    assert srv.app.sessions.fast_updates > before  # the Python client's header takes it


async def test_a_raw_update_is_relayed_and_a_bad_one_refused_as_before(
    server_factory, client_factory
):
    srv = await server_factory()
    reader = await client_factory(srv.url, "fast")
    raw = await RawSocket.open(srv.url)
    try:
        assert (await raw.connect(NS))["connected"]
        before = srv.app.sessions.fast_updates
        await raw.ws.send_str(HEADER.format(ns=NS))
        await raw.ws.send_bytes(DrawingDoc().put("raw", {"type": "ellipse"}))
        await reader.wait_for(lambda: "raw" in shapes(reader))
        assert srv.app.sessions.fast_updates == before + 1
        # Not a Yjs update: the handler's own typed refusal, and the session goes on.
        await raw.ws.send_str(HEADER.format(ns=NS))
        await raw.ws.send_bytes(b"\xff\xff\xff")
        # A text frame where the attachment belongs: handed over as the payload.
        await raw.ws.send_str(HEADER.format(ns=NS))
        await raw.ws.send_str("4not bytes")  # an Engine.IO message, text
        codes = [e["code"] for e in await _errors(raw, 2)]
        assert codes == ["malformed_update", "invalid_payload"], codes
        await raw.ws.send_str(HEADER.format(ns=NS))
        await raw.ws.send_bytes(DrawingDoc().put("after", {"type": "rect"}))
        await reader.wait_for(lambda: "after" in shapes(reader))
    finally:
        await raw.session.close()


async def test_an_update_for_a_namespace_not_joined_is_refused_as_before(
    server_factory, client_factory
):
    srv = await server_factory()
    reader = await client_factory(srv.url, "fast")
    raw = await RawSocket.open(srv.url)
    try:
        assert (await raw.connect("/yjs|elsewhere"))["connected"]
        writer = await client_factory(srv.url, "fast")  # its own sync steps take the fast way
        before = srv.app.sessions.fast_updates
        await raw.ws.send_str(HEADER.format(ns=NS))  # not joined: python-socketio's path
        await raw.ws.send_bytes(DrawingDoc().put("sneaky", {"type": "rect"}))
        # A later honest update arrives; the one of a namespace not joined never did.
        writer.doc.get("shapes", type=Map)["honest"] = {"type": "rect"}
        await reader.wait_for(lambda: "honest" in shapes(reader))
        assert "sneaky" not in shapes(reader)
        assert srv.app.sessions.fast_updates == before + 1  # the honest one only
        assert not srv.app.sio._binary_packet
    finally:
        await raw.session.close()


async def test_a_provider_awareness_update_takes_the_same_way(server_factory, client_factory):
    srv = await server_factory()
    watcher = await client_factory(srv.url, "fast")
    mover = await client_factory(srv.url, "fast")
    before = srv.app.sessions.fast_updates
    await mover.set_awareness({"cursor": {"x": 1, "y": 2}})
    await watcher.wait_for(
        lambda: any(
            isinstance(state, dict) and state.get("cursor") == {"x": 1, "y": 2}
            for state in watcher.awareness.values()
        )
    )
    assert srv.app.sessions.fast_updates > before


async def test_a_provider_sync_step_1_is_answered_with_the_ack_python_socketio_would_send(
    server_factory, client_factory
):
    srv = await server_factory()
    writer = await client_factory(srv.url, "fast")
    writer.doc.get("shapes", type=Map)["s"] = {"type": "rect"}
    reader = await client_factory(srv.url, "fast")
    await reader.wait_for(lambda: "s" in shapes(reader))  # stored on the server
    raw = await RawSocket.open(srv.url)
    try:
        assert (await raw.connect(NS))["connected"]
        before = srv.app.sessions.fast_updates
        await raw.ws.send_str(f'451-{NS},7["sync-step-1",{{"_placeholder":true,"num":0}}]')
        await raw.ws.send_bytes(b"\x00")  # an empty state vector: all of it, please
        header = await raw.next_text(f"461-{NS},7")
        assert header == f'461-{NS},7[{{"_placeholder":true,"num":0}}]'
        diff = (await raw.ws.receive()).data
        replica: Doc[Any] = Doc()
        replica.apply_update(diff)
        assert "s" in replica.get("shapes", type=Map).to_py()
        assert srv.app.sessions.fast_updates == before + 1
    finally:
        await raw.close()


async def test_a_provider_answer_to_the_server_s_step_reaches_its_callback(
    server_factory, client_factory
):
    srv = await server_factory()
    reader = await client_factory(srv.url, "fast")
    raw = await RawSocket.open(srv.url)
    try:
        assert (await raw.connect(NS))["connected"]
        prefix = f"451-{NS},"
        # The server's own sync-step-1, with its ack id.
        step = await raw.next_text(lambda text: '["sync-step-1",' in text)
        assert step.startswith(prefix)
        ack = step[len(prefix) : step.index("[")]
        await raw.ws.receive()  # its state vector
        # The client holds a shape the server lacks: its answer carries it.
        before = srv.app.sessions.fast_acks
        in_read = srv.app.front.handled_in_read
        await raw.ws.send_str(f'461-{NS},{ack}[{{"_placeholder":true,"num":0}}]')
        await raw.ws.send_bytes(DrawingDoc().put("given-back", {"type": "rect"}))
        await reader.wait_for(lambda: "given-back" in shapes(reader))
        assert srv.app.sessions.fast_acks == before + 1  # past python-socketio's dispatch
        # The header and its attachment: both within their reads, no task of their own.
        assert srv.app.front.handled_in_read == in_read + 2
    finally:
        await raw.close()
