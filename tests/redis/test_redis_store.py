"""Redis-specific store behaviour: the compaction race, keys and envelopes."""

from __future__ import annotations

import asyncio

import msgpack
import pytest
from pycrdt import Doc, Map

from crdt.types import DocName, RoomId
from rooms.envelope import Envelope, EnvelopeKind, MalformedEnvelope
from rooms.store_redis import RedisKeys, RedisStore
from tests.procs import RedisProcess

ROOM, BOARD = RoomId("clinic-7/group-a"), DocName("board")


def updates(n: int) -> tuple[Doc, list[bytes]]:
    doc = Doc()
    out: list[bytes] = []
    doc.observe(lambda e: out.append(bytes(e.update)))
    for i in range(n):
        doc.get("shapes", type=Map)[f"s{i}"] = {"i": i}
    return doc, out


def rebuild(stored) -> set[str]:
    doc = Doc()
    for u in ([stored.snapshot] if stored.snapshot else []) + list(stored.updates):
        doc.apply_update(u)
    return set(doc.get("shapes", type=Map).to_py() or {})


async def test_two_nodes_compacting_at_once_lose_nothing(redis_server):
    one = await RedisStore.open(redis_server.url, node_id="one")
    two = await RedisStore.open(redis_server.url, node_id="two")
    try:
        _, ups = updates(12)
        positions = [await one.append(ROOM, BOARD, [u]) for u in ups[:8]]
        # Node "one" has seen 5 entries, node "two" all 8; both snapshot their replica.
        replica_one, replica_two = Doc(), Doc()
        for u in ups[:5]:
            replica_one.apply_update(u)
        for u in ups[:8]:
            replica_two.apply_update(u)
        await two.append(ROOM, BOARD, ups[8:])  # written while they compact
        await asyncio.gather(
            two.compact(ROOM, BOARD, bytes(replica_two.get_update()), positions[7], 8),
            one.compact(ROOM, BOARD, bytes(replica_one.get_update()), positions[4], 5),
        )
        stored = await one.load(ROOM, BOARD)
        assert rebuild(stored) == {f"s{i}" for i in range(12)}
        assert len(stored.updates) == 4, "trimmed up to the best snapshot, later entries kept"
        # In the other order too: the older snapshot after the newer is refused.
        await one.compact(ROOM, BOARD, bytes(replica_one.get_update()), positions[4], 5)
        assert rebuild(await two.load(ROOM, BOARD)) == {f"s{i}" for i in range(12)}
    finally:
        await one.close()
        await two.close()


async def test_keys_carry_the_room_verbatim_and_hash_tag(redis_server):
    store = await RedisStore.open(redis_server.url, node_id="n")
    try:
        _, ups = updates(2)
        await store.append(ROOM, BOARD, ups)
        keys = await store.room_keys(ROOM)
        assert keys == sorted(
            [
                "collab:{clinic-7/group-a}:doc:board:log",
                "collab:{clinic-7/group-a}:doc:board:seq",
                "collab:{clinic-7/group-a}:docs",
                "collab:{clinic-7/group-a}:epoch",
            ]
        )
        assert RedisKeys(ROOM, BOARD).channel == "collab:{clinic-7/group-a}:doc:board:ch"
        await store.delete_room(ROOM)
        assert await store.room_keys(ROOM) == ["collab:{clinic-7/group-a}:deleted"]
    finally:
        await store.close()


async def test_append_publishes_a_versioned_envelope(redis_server):
    store = await RedisStore.open(redis_server.url, node_id="n1")
    rc = redis_server.client()
    pubsub = rc.pubsub()
    try:
        await pubsub.subscribe(RedisKeys(ROOM, BOARD).channel)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        _, ups = updates(1)
        position = await store.append(ROOM, BOARD, ups)
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message:
                break
        envelope = Envelope.parse(message["data"])
        assert envelope == Envelope(EnvelopeKind.UPDATE, "n1", ROOM, BOARD, 1, position, ups[0])
    finally:
        await pubsub.aclose()
        await rc.aclose()
        await store.close()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        msgpack.packb([2, 1, "n", "r", "d", 1, None, b""]),
        msgpack.packb([1, 9, "n", "r", "d", 1, None, b""]),
        msgpack.packb([1, 1, "n", "r", "d", -1, None, b""]),
        msgpack.packb([1, 1, "n", "r", "d", 1, None, 42]),
        msgpack.packb({"v": 1}),
        msgpack.packb([1, 1, 5, "r", "d", 1, None, b""]),
    ],
)
def test_malformed_envelopes(data):
    with pytest.raises(MalformedEnvelope):
        Envelope.parse(data)


async def test_a_probe_is_a_write_that_must_go_through(redis_binary, tmp_path):
    """``check_writable(probe=True)`` (asked while writes fail, to notice
    the end of an outage) fails for a server that answers but refuses
    writes, and for one that is down; without ``probe`` nothing is asked."""
    server = RedisProcess(tmp_path)
    await server.start()
    store = await RedisStore.open(server.url, node_id="prober")
    try:
        await store.check_writable(probe=True)
        admin = server.client()
        try:
            await admin.config_set("min-replicas-to-write", 1)  # writes: NOREPLICAS
            with pytest.raises(OSError, match="probe write failed"):
                await store.check_writable(probe=True)
            await admin.config_set("min-replicas-to-write", 0)
        finally:
            await admin.aclose()
        await store.check_writable(probe=True)
        await server.stop()
        await store.check_writable()
        with pytest.raises(OSError, match="probe write failed"):
            await store.check_writable(probe=True)
    finally:
        await store.close()
        await server.stop()
