"""collab on a local 3-master Redis Cluster: sharded pub/sub, one slot per room."""

from __future__ import annotations

import pytest
from pycrdt import Map

from tests.prereqs import unavailable
from tests.procs import REDIS_CLI, RedisClusterProcesses

pytestmark = pytest.mark.slow


@pytest.fixture
async def redis_cluster(redis_binary, tmp_path):
    if REDIS_CLI is None:
        unavailable("redis-cli is not installed (needed to create the cluster)")
    cluster = RedisClusterProcesses(tmp_path)
    await cluster.start()
    yield cluster
    await cluster.stop()


async def test_nodes_share_rooms_over_a_cluster(redis_cluster, node_factory, clients):
    a = await node_factory(redis_cluster.url, "A")
    b = await node_factory(redis_cluster.nodes[1].url, "B")
    rooms = [f"room-{i}" for i in range(6)]  # spread over the cluster's slots
    pairs = [(await clients(a.url, r), await clients(b.url, r)) for r in rooms]
    for i, (on_a, _) in enumerate(pairs):
        on_a.doc.get("shapes", type=Map)[f"from-a-{i}"] = {"type": "rect"}
    for i, (on_a, on_b) in enumerate(pairs):
        on_b.doc.get("shapes", type=Map)[f"from-b-{i}"] = {"type": "ellipse"}
        await on_b.wait_for(
            lambda c=on_b, i=i: f"from-a-{i}" in (c.doc.get("shapes", type=Map).to_py() or {}),
            timeout_s=15,
        )
        await on_a.wait_for(
            lambda c=on_a, i=i: f"from-b-{i}" in (c.doc.get("shapes", type=Map).to_py() or {}),
            timeout_s=15,
        )

    late = await clients(b.url, "room-3")
    assert set(late.doc.get("shapes", type=Map).to_py()) == {"from-a-3", "from-b-3"}

    # Sharded pub/sub: both nodes hold a shard subscription on the channel's owner,
    # and every key of a room hashes to one slot.
    owners = set()
    for room in rooms:
        channel = f"collab:{{{room}}}:doc:board:ch"
        counts = []
        slots = set()
        for node in redis_cluster.nodes:
            rc = node.client()
            try:
                reply = await rc.execute_command("PUBSUB", "SHARDNUMSUB", channel)
                counts.append(int(reply[1]))
                for key in ("log", "seq"):
                    slots.add(
                        await rc.execute_command(
                            "CLUSTER", "KEYSLOT", f"collab:{{{room}}}:doc:board:{key}"
                        )
                    )
                slots.add(await rc.execute_command("CLUSTER", "KEYSLOT", channel))
            finally:
                await rc.aclose()
        assert sorted(counts) == [0, 0, 2], (room, counts)
        owners.add(counts.index(2))
        assert len(slots) == 1
    assert len(owners) >= 2, "the rooms live on more than one master"
