"""The append script's Redis epoch and chat message keys, against a real
redis-server (issue 14): writes under another epoch are refused, claims are
checked and set with the append, records never overwrite."""

from __future__ import annotations

import asyncio

import pytest
from pycrdt import Doc, Map

from crdt.engine import engine_factory
from crdt.types import DocName, RoomId
from rooms.limits import Limits
from rooms.redis_keys import RedisKeys
from rooms.registry import RoomRegistry
from rooms.store_redis import AppendItem, AppendStatus, RedisStore
from tests.redis.conftest import CLUSTER_KEY
from tests.unit.test_registry import ANN

ROOM, BOARD, CHAT = RoomId("ward/3"), DocName("board"), DocName("chat")

pytestmark = pytest.mark.slow


def _updates(n: int, prefix: str = "s") -> list[bytes]:
    doc: Doc = Doc()
    out: list[bytes] = []
    doc.observe(lambda e: out.append(bytes(e.update)))
    for i in range(n):
        doc.get("shapes", type=Map)[f"{prefix}{i}"] = {"i": i}
    return out


@pytest.fixture
async def stores(redis_server):
    made = [
        await RedisStore.open(redis_server.url, node_id=name, cluster_key=CLUSTER_KEY)
        for name in ("one", "two")
    ]
    yield made
    for store in made:
        await store.close()


async def test_first_append_sets_the_epoch_and_others_must_reconcile(stores, redis_server):
    one, two = stores
    await one.load(ROOM, BOARD)
    await two.load(ROOM, BOARD)  # both loaded before the room's first append
    ups = _updates(3)
    (first,) = await one.append_items([AppendItem(ROOM, BOARD, ups[:1])])
    assert first.status is AppendStatus.APPENDED
    epoch = one.redis_epoch(ROOM, BOARD)
    assert len(epoch) == 16
    rc = redis_server.client()
    try:
        assert (await rc.get(RedisKeys(ROOM, BOARD).epoch)).decode() == epoch
        # The other node knows of no epoch: refused, told which one Redis has.
        (second,) = await two.append_items([AppendItem(ROOM, BOARD, ups[1:2])])
        assert (second.status, second.epoch) == (AppendStatus.NEW_EPOCH, epoch)
        assert await rc.xlen(RedisKeys(ROOM, BOARD).log) == 1
        # Reconciled (here: told), it appends.
        two.adopt_epoch(ROOM, BOARD, epoch)
        (third,) = await two.append_items([AppendItem(ROOM, BOARD, ups[1:2])])
        assert third.status is AppendStatus.APPENDED
        _, stored_epoch = await two.reload(ROOM, BOARD)
        assert stored_epoch == epoch

        # Redis loses everything (a restart without persistence).
        await rc.flushall()
        (lost,) = await one.append_items([AppendItem(ROOM, BOARD, ups[2:])])
        assert (lost.status, lost.epoch) == (AppendStatus.NEW_EPOCH, "")
        assert await rc.xlen(RedisKeys(ROOM, BOARD).log) == 0, "nothing written"
        assert (await one.read_log(ROOM, BOARD, "0"))[0] == ""
        refused: list[tuple[str, str]] = []
        one.on_new_epoch = lambda room, doc: refused.append((room, doc))
        await one.compact(ROOM, BOARD, ups[0], "1-0", 1)
        assert refused == [(ROOM, BOARD)]
        assert not await rc.exists(RedisKeys(ROOM, BOARD).snap)
        # A re-seed names the epoch it found (none): it sets a fresh one.
        (reseed,) = await one.append_items([AppendItem(ROOM, BOARD, ups, epoch="")])
        assert reseed.status is AppendStatus.APPENDED
        assert one.redis_epoch(ROOM, BOARD) not in ("", epoch)
    finally:
        await rc.aclose()


async def test_claims_are_checked_and_set_with_the_append(stores, redis_server):
    one, two = stores
    for store in stores:
        await store.load(ROOM, CHAT)
    ids = RedisKeys(ROOM, CHAT).ids
    mine, theirs = _updates(2, "m"), _updates(1, "t")
    key = '["ann","c-1"]'
    # Both nodes claim the same key at once, each with its own message.
    results = await asyncio.gather(
        one.append_items([AppendItem(ROOM, CHAT, [mine[0]], {0: (key, "id-one|1")})]),
        two.append_items([AppendItem(ROOM, CHAT, theirs, {0: (key, "id-two|2")})]),
        return_exceptions=True,
    )
    outcomes = []
    for store, result in zip(stores, results, strict=True):
        if isinstance(result, BaseException):
            raise result
        if result[0].status is AppendStatus.NEW_EPOCH:  # lost the race to set the epoch
            store.adopt_epoch(ROOM, CHAT, result[0].epoch)
            value = "id-one|1" if store is one else "id-two|2"
            update = mine[0] if store is one else theirs[0]
            result = await store.append_items([AppendItem(ROOM, CHAT, [update], {0: (key, value)})])
        outcomes.append(result[0])
    rc = redis_server.client()
    try:
        stored = (await rc.hget(ids, key)).decode()
        assert stored in ("id-one|1", "id-two|2")
        assert sorted(bool(o.duplicates) for o in outcomes) == [False, True]
        assert [d for o in outcomes for d in o.duplicates.values()] == [stored]
        assert await rc.xlen(RedisKeys(ROOM, CHAT).log) == 1, "one message stored"
        # A batch with a taken claim appends the rest.
        winner = one if stored == "id-one|1" else two
        (batch,) = await winner.append_items(
            [AppendItem(ROOM, CHAT, [mine[1], mine[0]], {1: (key, "id-three|3")})]
        )
        assert batch.status is AppendStatus.APPENDED and batch.duplicates == {1: stored}
        assert await rc.xlen(RedisKeys(ROOM, CHAT).log) == 2
        # Records are set where absent, never over a claim.
        (again,) = await winner.append_items(
            [AppendItem(ROOM, CHAT, [mine[1]], records={key: "other|9", '["bo","x"]': "b|5"})]
        )
        assert again.status is AppendStatus.APPENDED
        assert (await rc.hget(ids, key)).decode() == stored
        assert (await rc.hget(ids, '["bo","x"]')).decode() == "b|5"
        await winner.delete_room(ROOM)
        assert not await rc.exists(ids, RedisKeys(ROOM, CHAT).epoch)
    finally:
        await rc.aclose()


async def test_a_catch_up_racing_a_flush_does_not_take_the_flushed_update_for_lost(redis_server):
    """The catch-up after a reconnect reads the document back; meanwhile a
    client's update is accepted and a flush appends it, and the flush's answer
    comes first. The update is in Redis (after the read) and no longer
    unsaved: it is not lost, and nothing is re-seeded
    (tests/faults/test_redis_restart.py saw it once in CI)."""
    store = await RedisStore.open(redis_server.url, node_id="one", cluster_key=CLUSTER_KEY)
    replication = store.replication(node_id="one", awareness_timeout_s=30.0)
    registry = RoomRegistry(
        store=store,
        engine_factory=engine_factory("pycrdt"),
        limits=Limits(),
        flush_interval_s=60.0,
        replication=replication,
    )
    await replication.start(registry)
    try:
        doc = await registry.join(ROOM, BOARD, "m1", ANN)
        doc.receive_update(_updates(1, "first")[0], ANN)
        await registry.flush_all()  # the room's first append: its epoch is known
        read = store.reload

        async def read_then_flush(room: RoomId, name: DocName):
            answer = await read(room, name)
            # Accepted and appended after the read, answered before it.
            doc.receive_update(_updates(1, "raced")[0], ANN)
            await registry.flush_all()
            return answer

        store.reload = read_then_flush  # type: ignore[method-assign]
        assert await replication.reconcile(doc, check_lost=True)
        assert replication.writer.due(doc) is None, "taken for lost"
        assert replication.stats.reseeds == 0
    finally:
        await registry.close(grace_s=1)
        await replication.close()
        await store.close()
