"""Redis restarting, empty or not, loses nothing (issue 14, finding 1).

Real redis-server processes killed and started again on the same port, real
``collab serve`` nodes. A restarted server that comes back empty has a new
epoch (``collab:{<room>}:epoch``); every node re-seeds every document it
holds before its next append there is taken, and re-seeds merge (a CRDT
update appended like any other). A persistent server that comes back with its
data keeps its epoch: nothing is re-seeded.
"""

from __future__ import annotations

import pytest
from pycrdt import Map

from tests.boards import shapes
from tests.procs import RedisProcess
from tests.redis.conftest import clients, metrics, node_factory  # noqa: F401 (fixtures)
from tests.redis.outages import (
    NO_SUBSCRIBE,
    allow_subscribe,
    asyncio_complaints,
    exactly_once,
    messages,
    restart,
    send_until_stored,
    status,
    until_status,
)
from tests.waiting import until

pytestmark = pytest.mark.slow


@pytest.fixture
async def redis(redis_binary, tmp_path):
    server = RedisProcess(tmp_path)
    await server.start()
    holder = {"server": server}
    yield holder
    await holder["server"].stop()


async def test_chat_sent_before_the_subscriber_is_back_keeps_every_message(
    redis,
    tmp_path,
    node_factory,  # noqa: F811 (fixtures)
    clients,  # noqa: F811 (fixtures)
):
    """10 messages, Redis restarts empty, 15 more while node A's subscriber
    cannot subscribe yet (its commands go through): every acknowledged
    message is on a fresh node exactly once, and after restarting every node."""
    a = await node_factory(redis["server"].url, "A", "--chat-burst", "100")
    ann = await clients(a.url, "phoenix", "chat")
    acked = [await ann.send_chat(f"before {i}", client_message_id=f"before-{i}") for i in range(10)]
    redis["server"] = await restart(redis["server"], tmp_path, *NO_SUBSCRIBE)
    for i in range(15):
        acked.append(await send_until_stored(ann, f"during {i}", f"during-{i}"))
    assert await status(a.url) == "degraded", "the subscriber was not back yet"
    await allow_subscribe(redis["server"])
    await until_status(a.url, "ok")
    ids = [ack["id"] for ack in acked]
    assert len(set(ids)) == 25
    await ann.wait_for(lambda: len(messages(ann)) == 25, timeout_s=10)
    exactly_once(messages(ann), ids)

    c = await node_factory(redis["server"].url, "C")
    fresh = await clients(c.url, "phoenix", "chat")
    exactly_once(messages(fresh), ids)
    assert [m["text"] for m in messages(fresh)][:10] == [f"before {i}" for i in range(10)]

    for node in (a, c):
        await node.stop()
    for node in (a, c):
        await node.start()
    for node in (a, c):
        after = await clients(node.url, "phoenix", "chat")
        exactly_once(messages(after), ids)
    assert (await metrics(a.url))["collab_envelopes_reseeds_total"] == 0, "A was restarted"
    assert asyncio_complaints(a.log()) == []


async def test_board_edits_of_an_outage_survive_after_their_authors_left(
    redis,
    tmp_path,
    node_factory,  # noqa: F811 (fixtures)
    clients,  # noqa: F811 (fixtures)
):
    """20 shapes stored, 40 drawn while Redis is down, Redis back empty, the
    authors leave and the room unloads before node A's subscriber is back:
    all 60 shapes are in Redis."""
    a = await node_factory(redis["server"].url, "A", "--unload-after-s", "0.3")
    author = await clients(a.url, "canvas")
    watcher = await clients(a.url, "canvas")
    board = author.doc.get("shapes", type=Map)
    for i in range(20):
        board[f"before-{i}"] = {"type": "rect", "x": float(i)}
    await watcher.wait_for(lambda: len(shapes(watcher)) == 20, timeout_s=10)
    b = await node_factory(redis["server"].url, "B")  # a fresh node reads them: stored
    probe = await clients(b.url, "canvas")
    assert len(shapes(probe)) == 20
    await probe.close()

    await redis["server"].stop()
    await until_status(a.url, "degraded")
    for i in range(40):
        board[f"during-{i}"] = {"type": "ellipse", "x": float(i)}
    await watcher.wait_for(lambda: len(shapes(watcher)) == 60, timeout_s=10)
    redis["server"] = await restart(redis["server"], tmp_path, *NO_SUBSCRIBE)
    await author.close()
    await watcher.close()

    async def unloaded() -> bool:
        from tests.redis.conftest import healthz

        return (await healthz(a.url))["rooms"] == 0

    await until(unloaded, timeout_s=20, what="the room unloaded from node A")
    await allow_subscribe(redis["server"])
    await until_status(a.url, "ok")
    c = await node_factory(redis["server"].url, "C")
    fresh = await clients(c.url, "canvas")
    expected = {f"before-{i}" for i in range(20)} | {f"during-{i}" for i in range(40)}
    assert set(shapes(fresh)) == expected
    assert asyncio_complaints(a.log()) == []


async def test_three_nodes_two_reseeding_at_once(
    redis,
    tmp_path,
    node_factory,  # noqa: F811 (fixtures)
    clients,  # noqa: F811 (fixtures)
):
    """Three nodes hold a room; Redis restarts empty; nodes A and B both wrote
    during the outage and re-seed at once; node C only read. Re-seeds merge:
    every shape and every acknowledged message is there, exactly once."""
    url = redis["server"].url
    a, b, c = [await node_factory(url, name, "--chat-burst", "100") for name in "ABC"]
    boards = {n.node_id: await clients(n.url, "trio") for n in (a, b, c)}
    chats = {n.node_id: await clients(n.url, "trio", "chat") for n in (a, b, c)}
    acked = []
    for i in range(5):
        for name in "AB":
            boards[name].doc.get("shapes", type=Map)[f"{name}-before-{i}"] = {"type": "rect"}
            acked.append(
                await chats[name].send_chat(f"{name} before {i}", client_message_id=f"{name}b{i}")
            )
    expected = {f"{n}-before-{i}" for n in "AB" for i in range(5)}
    await boards["C"].wait_for(lambda: set(shapes(boards["C"])) == expected, timeout_s=10)

    await redis["server"].stop()
    for node in (a, b, c):
        await until_status(node.url, "degraded")
    for i in range(10):
        for name in "AB":
            boards[name].doc.get("shapes", type=Map)[f"{name}-during-{i}"] = {"type": "pen"}
    expected |= {f"{n}-during-{i}" for n in "AB" for i in range(10)}
    redis["server"] = await restart(redis["server"], tmp_path, *NO_SUBSCRIBE)
    for i in range(5):
        for name in "AB":
            acked.append(await send_until_stored(chats[name], f"{name} after {i}", f"{name}a{i}"))
    await allow_subscribe(redis["server"])
    for node in (a, b, c):
        await until_status(node.url, "ok")
    ids = [ack["id"] for ack in acked]
    for name in "ABC":
        client = boards[name]
        await client.wait_for(lambda c=client: set(shapes(c)) == expected, timeout_s=20)
        chat = chats[name]
        await chat.wait_for(lambda c=chat: len(messages(c)) == len(ids), timeout_s=20)
        exactly_once(messages(chat), ids)

    d = await node_factory(redis["server"].url, "D")
    assert set(shapes(await clients(d.url, "trio"))) == expected
    exactly_once(messages(await clients(d.url, "trio", "chat")), ids)
    for name, node in (("A", a), ("B", b)):
        assert (await metrics(node.url))["collab_envelopes_reseeds_total"] >= 1, name
    for node in (a, b, c):
        assert asyncio_complaints(node.log()) == []


async def test_persistent_redis_restarted_with_its_data_needs_no_reseed(
    redis_binary,
    tmp_path,
    node_factory,  # noqa: F811 (fixtures)
    clients,  # noqa: F811 (fixtures)
):
    """``--appendonly yes --appendfsync always``: the server comes back with its
    data and its epoch; the nodes catch up and re-seed nothing."""
    server = RedisProcess(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    await server.start()
    try:
        a = await node_factory(server.url, "A")
        b = await node_factory(server.url, "B")
        on_a, on_b = await clients(a.url, "kept"), await clients(b.url, "kept")
        chat = await clients(b.url, "kept", "chat")
        for i in range(10):
            on_a.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect"}
        acked = [await chat.send_chat(f"m{i}", client_message_id=f"m{i}") for i in range(5)]
        await on_b.wait_for(lambda: len(shapes(on_b)) == 10, timeout_s=10)

        server = await restart(server, tmp_path, keep_args=True)
        for node in (a, b):
            await until_status(node.url, "ok")
        on_b.doc.get("shapes", type=Map)["after"] = {"type": "rect"}
        acked.append(await send_until_stored(chat, "after", "after"))
        await on_a.wait_for(lambda: "after" in shapes(on_a), timeout_s=10)
        for node in (a, b):
            stats = await metrics(node.url)
            assert stats["collab_envelopes_reconnects_total"] >= 1
            assert stats["collab_envelopes_reseeds_total"] == 0, node.node_id
        c = await node_factory(server.url, "C")
        assert len(shapes(await clients(c.url, "kept"))) == 11
        exactly_once(messages(await clients(c.url, "kept", "chat")), [x["id"] for x in acked])
    finally:
        await server.stop()
