"""Finding 5 of issue 12: rate limits, on by default.

3,000 chat:send in 3 s were all acknowledged and stored; awareness at 100 Hz
with 8 client ids × 15 KB pushed 12 MB/s to every member; 10,000 unknown
events with a reused ack id each cost two replies and a log line. Now each
kind of event has a token bucket (protocol.md §8): what is past it is refused
(``rate_limited``, told once per run, never relayed or stored), and a client
whose refusals keep coming is disconnected. An honest client never meets them.
"""

from __future__ import annotations

import asyncio
import json
import time

from pycrdt import Array, Map

from collab.client import CollabClient, CollabClientError
from crdt.awareness import AwarenessEntry, encode_awareness
from tests.boards import DrawingDoc, shapes
from tests.conftest import SECRET, mint
from tests.hostile.resources import open_fds
from tests.rawsio import RawSocket
from tests.waiting import until

NS = "/yjs|R"


def codes(client: CollabClient) -> list[str]:
    return [e["code"] for e in client.errors]


async def send_chats(chat: CollabClient, count: int) -> tuple[list[dict], list[str]]:
    """Send ``count`` chat messages at once; return the acks and refusal codes."""

    async def one(i: int) -> dict | str:
        try:
            return await chat.send_chat(f"flood {i}", client_message_id=f"m{i}", timeout_s=10)
        except CollabClientError as exc:
            return exc.code
        except (TimeoutError, Exception) as exc:  # noqa: BLE001 - disconnected mid-flood
            return type(exc).__name__

    results = await asyncio.gather(*(one(i) for i in range(count)))
    return [r for r in results if isinstance(r, dict)], [r for r in results if isinstance(r, str)]


def stored_chat(server, room: str) -> list[dict]:
    return server.registry.rooms[room].docs["chat"].engine.read_array("messages")


async def test_a_chat_flood_gets_its_burst_and_nothing_more(server_factory, client_factory):
    srv = await server_factory(max_refusals_per_min=10_000)
    chat = await client_factory(srv.url, "R", "chat")
    started = time.monotonic()
    acks, refused = await send_chats(chat, 300)
    elapsed = time.monotonic() - started
    assert 20 <= len(acks) <= 20 + int(elapsed) + 1, (len(acks), elapsed)
    assert set(refused) == {"rate_limited"}
    # What was acknowledged is stored, once; nothing else is.
    stored = stored_chat(srv, "R")
    assert sorted(m["id"] for m in stored) == sorted(a["id"] for a in acks)
    # A second later there is room for one more.
    await until(lambda: time.monotonic() - started > elapsed + 1.1, what="a second passed")
    assert (await chat.send_chat("one more"))["ok"]


async def test_a_client_that_keeps_flooding_is_disconnected(server_factory, client_factory):
    srv = await server_factory()  # defaults: 60 refusals, then the connection goes
    chat = await client_factory(srv.url, "R", "chat", reconnection=False)
    other = await client_factory(srv.url, "S", "chat")
    acks, refused = await send_chats(chat, 3000)
    assert len(acks) <= 25
    await until(lambda: not chat.connected, what="the flooder disconnected")
    assert "rate_limited" in refused
    assert {"code": "rate_limited"}.items() <= next(
        e for e in chat.errors if e.get("event") == "disconnect"
    ).items()
    stored = stored_chat(srv, "R")
    assert sorted(m["id"] for m in stored) == sorted(a["id"] for a in acks)
    # Someone else, elsewhere, never noticed.
    assert (await other.send_chat("hello"))["ok"]


async def test_an_update_flood_is_cut_at_its_rate_and_told_once(server_factory, client_factory):
    srv = await server_factory(update_rate_per_s=50, update_burst=100, max_refusals_per_min=10_000)
    peer = await client_factory(srv.url, "R")
    raw = await RawSocket.open(srv.url)
    assert (await raw.connect(NS))["connected"]
    board = DrawingDoc()
    started = time.monotonic()
    try:
        for i in range(1000):
            await raw.send_binary_event(NS, "sync-update", board.put(f"s{i}", {"type": "rect"}))
        errors = await drain_errors(raw)  # returns once the server is quiet
        elapsed = time.monotonic() - started
        stored = srv.registry.rooms["R"].docs["board"]
        accepted = len(stored.engine.read_map("shapes"))
        assert 100 <= accepted <= 100 + 50 * elapsed + 5, (accepted, elapsed)
        # Told once per run of refusals (a run ends when one gets through),
        # not once per refused update.
        assert {e["code"] for e in errors} == {"rate_limited"}
        assert 1 <= len(errors) <= accepted - 100 + 1, (len(errors), accepted)
        await until(lambda: len(shapes(peer)) == accepted, what="the peer got what was accepted")
    finally:
        await raw.close()


async def drain_errors(raw: RawSocket) -> list[dict]:
    """collab:error payloads received until the server has been quiet a moment."""
    found = []
    while True:
        try:
            msg = await raw.ws.receive(timeout=0.5)
        except TimeoutError:
            return found
        if isinstance(msg.data, str) and msg.data.startswith(f'42{NS},["collab:error"'):
            found.append(json.loads(msg.data[len(f"42{NS},") :])[1])


async def test_an_awareness_flood_reaches_members_at_its_byte_rate(server_factory, client_factory):
    """The finding: 8 client ids × 15 KB at 100 Hz, 12 MB/s to every member."""
    srv = await server_factory(max_refusals_per_min=10_000)
    peer = await client_factory(srv.url, "R")
    received = 0

    async def count(data: bytes) -> None:
        nonlocal received
        received += len(data)

    peer._sio.on("awareness-update", count, namespace=peer.namespace)
    raw = await RawSocket.open(srv.url)
    assert (await raw.connect(NS))["connected"]
    state = json.dumps({"cursor": "z" * 15_000})
    started = time.monotonic()
    try:
        for clock in range(1, 201):  # 2 s at 100 Hz: 24 MB offered
            update = encode_awareness([AwarenessEntry(1000 + i, clock, state) for i in range(8)])
            await raw.send_binary_event(NS, "awareness-update", update)
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        await until(lambda: received > 0, what="some awareness relayed")
        # The burst (512 KiB) and 64 KiB a second, plus one message in flight.
        assert received <= (512 << 10) + (64 << 10) * elapsed + 130_000, (received, elapsed)
    finally:
        await raw.close()


async def test_unknown_events_with_a_reused_ack_id_cost_a_bounded_reply(server_factory):
    """The finding: 10,000 unknown events with one ack id, two replies each."""
    srv = await server_factory()
    fds = open_fds()
    raw = await RawSocket.open(srv.url)
    assert (await raw.connect(NS))["connected"]
    frames = 0
    try:
        sent = 0
        try:
            for sent in range(1, 10_001):  # noqa: B007 - counted below
                await raw.ws.send_str(f'427{NS},7["nope",{{}}]')
        except ConnectionError:
            pass
        while True:
            msg = await raw.ws.receive(timeout=10)
            if msg.type not in (1, 2):  # TEXT, BINARY
                break
            frames += 1
        assert frames < 200, "replies are bounded, then the connection is closed"
        assert srv.app.sync.connections == {}
    finally:
        await raw.close()
    await until(lambda: open_fds() <= fds, what="descriptors back to their baseline")


async def test_stray_acknowledgements_are_bounded(server_factory, client_factory):
    srv = await server_factory()
    peer = await client_factory(srv.url, "R")
    raw = await RawSocket.open(srv.url)
    assert (await raw.connect(NS))["connected"]
    try:
        with_error = 0
        try:
            for _ in range(10_000):
                await raw.ws.send_str(f"43{NS},99[1]")
                with_error += 1
        except ConnectionError:
            pass
        assert await raw.until_closed() is not None
        await until(lambda: len(srv.app.sync.connections) == 1, what="only the peer is left")
        peer.doc.get("shapes", type=Map)["still"] = {"type": "rect"}
        stored = srv.registry.rooms["R"].docs["board"]
        await until(lambda: "still" in stored.engine.read_map("shapes"))
    finally:
        await raw.close()


async def test_an_honest_session_never_meets_a_limit(server_factory, client_factory):
    """Drawing at 60 updates a second with a cursor at 30 a second, and
    chatting now and then, for two seconds: nothing refused."""
    srv = await server_factory(dev=False, jwt_secret=SECRET)
    token = mint("R", "participant", name="Ann", sub="u-ann")
    board = await client_factory(srv.url, "R", auth={"token": token})
    chat = await client_factory(srv.url, "R", "chat", auth={"token": token})
    watcher = await client_factory(srv.url, "R", auth={"token": mint("R", sub="u-ben")})
    shapes_map = board.doc.get("shapes", type=Map)
    for tick in range(120):
        shapes_map[f"stroke{tick // 20}"] = {"type": "pen", "points": [tick, tick]}
        if tick % 2 == 0:
            await board.set_awareness({"cursor": {"x": tick, "y": tick}})
        if tick % 30 == 0:
            await chat.send_chat(f"note {tick}")
        await asyncio.sleep(1 / 60)
    await watcher.wait_for(lambda: len(shapes(watcher)) == 6)
    await chat.wait_for(lambda: len(chat.doc.get("messages", type=Array).to_py()) == 4)
    assert board.errors == chat.errors == watcher.errors == []
