"""Redis Sentinel (issue 14, finding 7b): ``redis+sentinel://`` URLs, and a
failover with real processes (a master with ``appendfsync always``, a
replica, three sentinels; two collab nodes). The master is killed right
after acknowledged writes, so the replica may lack the last of them
(replication is asynchronous): the nodes, which still hold them, write them
again once they reach the new master (README: what an ack means under
Sentinel)."""

from __future__ import annotations

import pytest
from pycrdt import Map

from rooms.redis_conn import RedisConfigError, redis_options
from tests.boards import shapes
from tests.conftest import mint
from tests.redis.conftest import clients, metrics, node_factory  # noqa: F401 (fixtures)
from tests.redis.outages import (
    asyncio_complaints,
    exactly_once,
    messages,
    send_until_stored,
    until_status,
)
from tests.redis.sentinels import SentinelGroup

pytestmark = pytest.mark.slow


def test_sentinel_urls():
    o = redis_options("redis+sentinel://ann:pw@10.0.0.1:26380,10.0.0.2,[::1]:5000/prod/3")
    assert o.sentinels == (("10.0.0.1", 26380), ("10.0.0.2", 26379), ("::1", 5000))
    assert (o.master_name, o.db, o.username, o.password, o.tls) == ("prod", 3, "ann", "pw", False)
    assert o.display == "redis+sentinel://ann@10.0.0.1:26380,10.0.0.2:26379,::1:5000/prod/3"
    assert "pw" not in o.display
    assert "host" not in o.connection_kwargs()  # the sentinels say where the master is
    assert o.connection_kwargs(host="10.0.0.9", port=6380)["db"] == 3
    assert redis_options("rediss+sentinel://s1/prod").tls
    for bad in ("redis+sentinel://s1", "redis+sentinel:///prod", "redis+sentinel://s1:x/prod"):
        with pytest.raises(RedisConfigError):
            redis_options(bad)


@pytest.fixture
async def sentinel_group(redis_binary, tmp_path):
    group = SentinelGroup(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    await group.start()
    yield group
    await group.stop()


async def test_failover_keeps_every_acknowledged_message(
    sentinel_group,
    node_factory,  # noqa: F811 (fixtures)
    clients,  # noqa: F811 (fixtures)
):
    group = sentinel_group
    a = await node_factory(group.url, "A", "--chat-burst", "100")
    b = await node_factory(group.url, "B", "--chat-burst", "100")
    on_a, on_b = await clients(a.url, "ha"), await clients(b.url, "ha")
    ann = await clients(a.url, "ha", "chat", auth={"token": mint("ha", name="Ann", sub="ann")})
    bob = await clients(b.url, "ha", "chat", auth={"token": mint("ha", name="Bob", sub="bob")})
    acked = []
    for i in range(10):
        on_a.doc.get("shapes", type=Map)[f"a{i}"] = {"type": "rect"}
        on_b.doc.get("shapes", type=Map)[f"b{i}"] = {"type": "rect"}
        acked.append(await ann.send_chat(f"ann {i}", client_message_id=f"ann-{i}"))
        acked.append(await bob.send_chat(f"bob {i}", client_message_id=f"bob-{i}"))
    expected = {f"{who}{i}" for who in "ab" for i in range(10)}
    for client in (on_a, on_b):
        await client.wait_for(lambda c=client: set(shapes(c)) == expected, timeout_s=10)
    # The last writes before the master dies never reach the replica.
    await group.cut_replication()
    for i in range(5):
        on_a.doc.get("shapes", type=Map)[f"late-a{i}"] = {"type": "rect"}
        acked.append(await ann.send_chat(f"ann late {i}", client_message_id=f"ann-late-{i}"))
        acked.append(await bob.send_chat(f"bob late {i}", client_message_id=f"bob-late-{i}"))
    expected |= {f"late-a{i}" for i in range(5)}
    await on_b.wait_for(lambda: set(shapes(on_b)) == expected, timeout_s=10)

    await group.kill_master_and_fail_over()
    # Sent while the nodes find the new master: refused store_unavailable
    # until they do, then stored (a retry keeps its clientMessageId).
    for i in range(5):
        acked.append(await send_until_stored(ann, f"ann after {i}", f"ann-after-{i}", timeout_s=30))
        acked.append(await send_until_stored(bob, f"bob after {i}", f"bob-after-{i}", timeout_s=30))
    for node in (a, b):
        await until_status(node.url, "ok", timeout_s=30)
    on_a.doc.get("shapes", type=Map)["after-a"] = {"type": "rect"}
    on_b.doc.get("shapes", type=Map)["after-b"] = {"type": "rect"}
    expected |= {"after-a", "after-b"}
    for client in (on_a, on_b):
        await client.wait_for(lambda c=client: set(shapes(c)) == expected, timeout_s=20)

    ids = [ack["id"] for ack in acked]
    for client in (ann, bob):
        await client.wait_for(lambda c=client: len(messages(c)) == len(ids), timeout_s=20)
        exactly_once(messages(client), ids)
    assert await group.master_port() == group.replica.port
    c = await node_factory(group.url, "C")
    assert set(shapes(await clients(c.url, "ha"))) == expected
    exactly_once(messages(await clients(c.url, "ha", "chat")), ids)
    reseeds = 0
    for node in (a, b):
        stats = await metrics(node.url)
        assert stats["collab_envelopes_reconnects_total"] >= 1
        reseeds += stats["collab_envelopes_reseeds_total"]
        assert asyncio_complaints(node.log()) == []
    # The first node back writes what the new master lacked; the other then
    # finds nothing missing (or writes it too: re-seeds merge).
    assert reseeds >= 1, "the new master lacked writes"
