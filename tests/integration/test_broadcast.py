"""The fast broadcast path: slow consumers are dropped, closed sockets skipped,
and everyone else keeps receiving (protocol.md §1)."""

from __future__ import annotations

import asyncio
import socket

from pycrdt import Map

from tests.boards import DrawingDoc, shapes
from tests.rawsio import RawSocket
from tests.scrape import scrape
from tests.waiting import let_io_run, until


async def test_a_slow_consumer_is_dropped_and_nobody_else_waits(server_factory, client_factory):
    # 20 MB into one board: past the default size and byte-rate limits.
    srv = await server_factory(
        max_send_buffer_bytes=64 << 10, max_board_bytes=64 << 20, update_bytes_burst=64 << 20
    )
    sender = await client_factory(srv.url, "busy")
    fast = await client_factory(srv.url, "busy")
    elsewhere = await client_factory(srv.url, "quiet")
    slow = await RawSocket.open(srv.url)  # connects, then never reads again
    assert (await slow.connect("/yjs|busy"))["connected"]
    broadcaster = srv.app.sync.broadcaster
    try:
        text = "x" * 100_000
        for i in range(200):  # 20 MB: far past what the kernel buffers hold
            sender.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "text", "text": text}
            if i % 10 == 0:
                await let_io_run()
        await fast.wait_for(lambda: len(shapes(fast)) == 200, timeout_s=30)
        await until(lambda: broadcaster.dropped_slow >= 1)
        await until(lambda: len(srv.app.sync.connections) == 3)  # the slow one is gone
        values = await scrape(srv.url)
        assert values["collab_slow_consumers_dropped_total"] == broadcaster.dropped_slow >= 1
        elsewhere.doc.get("shapes", type=Map)["ok"] = {"type": "rect"}
        late = await client_factory(srv.url, "quiet")
        assert "ok" in shapes(late)
    finally:
        await slow.close()


async def test_closed_sockets_are_skipped(server_factory, client_factory):
    srv = await server_factory()
    sender = await client_factory(srv.url, "r")
    keeper = await client_factory(srv.url, "r")
    raws = []
    for _ in range(5):
        raw = await RawSocket.open(srv.url)
        assert (await raw.connect("/yjs|r"))["connected"]
        raws.append(raw)
    for raw in raws:  # gone without a goodbye, while updates keep flowing
        raw.ws._response.connection.transport.abort()
        sender.doc.get("shapes", type=Map)[f"after-{id(raw)}"] = {"type": "rect"}
    await keeper.wait_for(lambda: len(shapes(keeper)) == 5)
    await until(lambda: len(srv.app.sync.connections) == 2)
    assert srv.app.sync.broadcaster.dropped_slow == 0
    for raw in raws:
        await raw.session.close()


async def test_the_fast_path_is_what_clients_receive(server_factory, client_factory):
    srv = await server_factory()
    sender = await client_factory(srv.url, "f")
    receivers = [await client_factory(srv.url, "f") for _ in range(4)]
    for i in range(30):
        sender.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect", "x": float(i)}
    for r in receivers:
        await r.wait_for(lambda r=r: len(shapes(r)) == 30)
    broadcaster = srv.app.sync.broadcaster
    assert broadcaster.fast_deliveries >= 30 * 4
    assert broadcaster.queued_deliveries < broadcaster.fast_deliveries
    values = await scrape(srv.url)
    assert values['collab_broadcast_deliveries_total{path="direct"}'] == (
        broadcaster.fast_deliveries
    )
    assert values['collab_broadcast_deliveries_total{path="queued"}'] == (
        broadcaster.queued_deliveries
    )
    assert values["collab_slow_consumers_dropped_total"] == 0
    assert values["collab_recipients_behind"] == 0


async def test_broadcasts_keep_their_order_behind_a_full_buffer(server_factory):
    """A reader that stops reading gets later broadcasts through engine.io's
    queue; when it reads again, every update arrives once, in sent order."""
    srv = await server_factory(max_send_buffer_bytes=64 << 20, update_bytes_burst=64 << 20)
    sender = await RawSocket.open(srv.url)
    reader = await RawSocket.open(srv.url)  # does not read while updates flow
    namespace = "/yjs|order"
    assert (await sender.connect(namespace))["connected"]
    assert (await reader.connect(namespace))["connected"]
    board = DrawingDoc()
    text = "y" * 60_000
    broadcaster = srv.app.sync.broadcaster
    try:
        for i in range(160):  # ~10 MB: more than the kernel's socket buffers hold
            update = board.put(f"s{i:03}", {"type": "text", "text": text})
            await sender.send_binary_event(namespace, "sync-update", update)
        await until(lambda: broadcaster.queued_deliveries > 0)
        assert await reader.sync_updates(namespace, len(board.updates)) == board.updates
        assert broadcaster.dropped_slow == 0
        assert broadcaster.recipients_behind == 0  # engine.io's writer wrote them all
    finally:
        await sender.close()
        await reader.close()


async def test_one_large_message_does_not_make_a_reader_slow(server_factory):
    """A reader on a slow link still taking in one message larger than
    max_send_buffer_bytes (a big paste; a joiner's initial state) is not a
    slow consumer: only broadcasts queued behind it count."""
    srv = await server_factory(max_send_buffer_bytes=64 << 10, max_message_bytes=12 << 20)
    sender = await RawSocket.open(srv.url)
    reader = await RawSocket.open(srv.url, max_msg_size=16 << 20)  # not reading for now
    # A small receive window, as on a slow link: the kernel holds little of
    # what the server sends, the rest waits in the server's transport.
    sock = reader.ws._response.connection.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
    namespace = "/yjs|big"
    assert (await sender.connect(namespace))["connected"]
    joined = await reader.connect(namespace)
    assert joined["connected"]
    reader_transport = srv.app.sync.broadcaster._resolve(joined["sid"], namespace)[0]
    board = DrawingDoc()
    big = board.put("big", {"type": "text", "text": "z" * (10 << 20)})
    broadcaster = srv.app.sync.broadcaster
    try:
        await sender.send_binary_event(namespace, "sync-update", big)
        await until(lambda: reader_transport.get_write_buffer_size() > 1 << 20)
        for i in range(20):  # small updates queue behind the big one
            update = board.put(f"s{i}", {"type": "rect", "x": float(i)})
            await sender.send_binary_event(namespace, "sync-update", update)
        await until(lambda: broadcaster.queued_deliveries >= 20)
        assert broadcaster.dropped_slow == 0
        assert await reader.sync_updates(namespace, len(board.updates)) == board.updates
        assert broadcaster.dropped_slow == 0
    finally:
        await sender.close()
        await reader.close()


async def test_polling_and_upgraded_clients_get_every_update_in_order(
    server_factory, client_factory
):
    """Clients the fast path does not write to (long-polling, or upgraded from
    it) get python-socketio's own path, mixed with WebSocket recipients."""
    srv = await server_factory()
    sender = await client_factory(srv.url, "mixed")
    websocket = await client_factory(srv.url, "mixed")
    polling = await client_factory(srv.url, "mixed", transports=["polling"])
    upgraded = await client_factory(srv.url, "mixed", transports=["polling", "websocket"])
    order = {c: [] for c in (websocket, polling, upgraded)}

    def recorder(seen: list[str]):
        return lambda event: seen.extend(sorted(event.keys))

    subscriptions = [  # kept: pycrdt drops an observer whose subscription is gone
        client.doc.get("shapes", type=Map).observe(recorder(seen)) for client, seen in order.items()
    ]
    for i in range(40):
        sender.doc.get("shapes", type=Map)[f"s{i:02}"] = {"type": "rect", "x": float(i)}
        if i % 8 == 0:  # several turns, each with a few broadcasts
            await websocket.wait_for(lambda i=i: len(shapes(websocket)) == i + 1)
    for client, seen in order.items():
        await client.wait_for(lambda client=client: len(shapes(client)) == 40)
        assert seen == [f"s{i:02}" for i in range(40)]
    assert len(subscriptions) == 3
    assert srv.app.sync.broadcaster.queued_deliveries >= 40  # the polling client at least
    # Shutdown answers the pending long-poll instead of waiting for it (25 s).
    await asyncio.wait_for(srv.stop(), 10)


async def test_the_stock_path_when_the_fast_path_is_off(server_factory, client_factory):
    srv = await server_factory(fast_broadcast=False)
    sender = await client_factory(srv.url, "stock")
    receivers = [await client_factory(srv.url, "stock") for _ in range(3)]
    for i in range(20):
        sender.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect"}
    for r in receivers:
        await r.wait_for(lambda r=r: len(shapes(r)) == 20)
    assert srv.app.sync.broadcaster.fast_deliveries == 0
