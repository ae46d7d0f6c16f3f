"""The Engine.IO session on a WebSocket (collab.transport): a silent peer is
closed, an oversized or malformed frame ends only its own session, a bad
Socket.IO packet ends nothing, every message of a busy connection is handled
in order."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from pycrdt import Map

from tests.boards import DrawingDoc, shapes
from tests.rawsio import RawSocket
from tests.waiting import until


async def test_a_silent_websocket_is_closed(server_factory, client_factory):
    # Pings every 0.5 s, answered within 1 s: a peer that answers none is
    # closed after about 1.5 s. The window is wide enough that a client which
    # does answer is not dropped when a busy CI host stalls the loop briefly.
    srv = await server_factory(ping_interval_s=0.5, ping_timeout_s=1.0)
    silent = await RawSocket.open(srv.url)  # connects, then answers no ping
    assert (await silent.connect("/yjs|quiet"))["connected"]
    alive = await client_factory(srv.url, "quiet")  # answers pings: stays
    tracker = srv.app.websockets
    try:
        await silent.until_closed()
        await until(lambda: len(srv.app.sync.connections) == 1, timeout_s=10)
        await until(lambda: len(tracker.open) == 1, timeout_s=10)
        assert alive.connected
        alive.doc.get("shapes", type=Map)["after"] = {"type": "rect"}
        late = await client_factory(srv.url, "quiet")
        await late.wait_for(lambda: "after" in shapes(late))
    finally:
        await silent.session.close()


@pytest.mark.parametrize("kind", ["binary", "text"])
async def test_an_oversized_frame_ends_only_its_connection_with_1009(
    server_factory, client_factory, kind
):
    # Frame limits (protocol.md §8.1): binary, the largest document + 64 KiB
    # (here 128 KiB); text, max_message_bytes + 64 KiB (here 68 KiB).
    small = 64 << 10
    srv = await server_factory(
        max_message_bytes=4096, max_board_bytes=small, max_chat_bytes=small, max_meta_bytes=small
    )
    other = await client_factory(srv.url, "big")
    raw = await RawSocket.open(srv.url)
    assert (await raw.connect("/yjs|big"))["connected"]
    try:
        if kind == "binary":
            await raw.ws.send_bytes(b"\x00" * (200 << 10))
        else:  # a Socket.IO event of 100 KiB of JSON
            await raw.ws.send_str('42/yjs|big,["x","' + "a" * (100 << 10) + '"]')
        assert await raw.until_closed() == aiohttp.WSMsgType.CLOSE
        assert raw.ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        await until(lambda: len(srv.app.sync.connections) == 1)
        counted = 'collab_limit_refusals_total{limit="frame_size"} 1.0'
        await until(lambda: counted in srv.app.metrics.render().decode(), what="counted")
        other.doc.get("shapes", type=Map)["still"] = {"type": "rect"}
        late = await client_factory(srv.url, "big")
        await late.wait_for(lambda: "still" in shapes(late))
    finally:
        await raw.close()


async def test_a_binary_frame_as_large_as_a_document_is_read(server_factory):
    """A binary frame over max_message_bytes but within the largest document
    is read: an event's own limit answers it with a typed error."""
    srv = await server_factory(max_message_bytes=4096, max_board_bytes=64 << 10)
    raw = await RawSocket.open(srv.url)
    namespace = "/yjs|roomy"
    assert (await raw.connect(namespace))["connected"]
    try:
        await raw.send_binary_event(namespace, "sync-update", b"\x00" * (32 << 10))
        prefix = f'42{namespace},["collab:error",'
        while True:
            msg = await raw.ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.TEXT
            if msg.data.startswith(prefix):
                assert '"code":"message_too_large"' in msg.data.replace(" ", "")
                break
    finally:
        await raw.close()


async def test_messages_of_one_connection_are_handled_in_order(server_factory):
    """Many updates written back to back on one socket arrive at another
    member in the order they were sent."""
    srv = await server_factory()
    sender = await RawSocket.open(srv.url)
    reader = await RawSocket.open(srv.url)
    namespace = "/yjs|burst"
    assert (await sender.connect(namespace))["connected"]
    assert (await reader.connect(namespace))["connected"]
    board = DrawingDoc()
    try:
        for i in range(300):
            update = board.put(f"s{i:03}", {"type": "rect", "x": float(i)})
            await sender.send_binary_event(namespace, "sync-update", update)
        assert await reader.sync_updates(namespace, len(board.updates)) == board.updates
    finally:
        await sender.close()
        await reader.close()


async def test_a_bad_socketio_packet_is_refused_and_the_connection_goes_on(
    server_factory, client_factory, caplog
):
    caplog.set_level(logging.INFO, logger="collab")
    srv = await server_factory()
    watcher = await client_factory(srv.url, "bad")
    raw = await RawSocket.open(srv.url)
    namespace = "/yjs|bad"
    assert (await raw.connect(namespace))["connected"]
    secret = "confidential-board-text"
    for frame in (
        f"49{secret}",  # no such Socket.IO packet type
        f'44{namespace},{{"message":"{secret}"}}',  # CONNECT_ERROR from a client
    ):
        await raw.ws.send_str(frame)
    await raw.ws.send_bytes(secret.encode())  # an attachment nobody announced
    try:
        update = DrawingDoc().put("after", {"type": "rect"})
        await raw.send_binary_event(namespace, "sync-update", update)
        await watcher.wait_for(lambda: "after" in shapes(watcher))
        refused = [r for r in caplog.records if "code=invalid_packet" in r.getMessage()]
        assert len(refused) == 3
        assert all(secret not in r.getMessage() and not r.exc_info for r in refused)
    finally:
        await raw.close()


async def test_a_malformed_engineio_frame_ends_only_its_session(
    server_factory, client_factory, caplog
):
    srv = await server_factory()
    other = await client_factory(srv.url, "frames")
    for frame in ("x-not-a-packet-type", ""):
        raw = await RawSocket.open(srv.url)
        assert (await raw.connect("/yjs|frames"))["connected"]
        try:
            await raw.ws.send_str(frame)
            assert await raw.until_closed() in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            # The session is over on the server too, not left to a ping timeout.
            await until(lambda: len(srv.app.sync.connections) == 1)
            await until(lambda: len(srv.app.websockets.open) == 1)
        finally:
            await raw.close()
    assert not [r for r in caplog.records if r.exc_info]  # no traceback, no content
    assert len([r for r in caplog.records if "malformed engine.io packet" in r.getMessage()]) == 2
    other.doc.get("shapes", type=Map)["still"] = {"type": "rect"}
    late = await client_factory(srv.url, "frames")
    await late.wait_for(lambda: "still" in shapes(late))
