"""The tiered store's own promises (rooms/store_tiered.py), on a real
redis-server and a real PostgreSQL: archives merge instead of replacing one
another, a deletion stays final in PostgreSQL also after Redis lost its
tombstone, and an outage of PostgreSQL fails fast."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pycrdt import Doc, Map

from crdt.types import DocName, RoomId
from rooms.postgres_conn import postgres_options
from rooms.store import RoomInfo
from rooms.store_postgres import PostgresStore
from rooms.store_redis import RedisStore
from rooms.store_tiered import TieredStore
from tests.procs import RedisProcess
from tests.redis.conftest import CLUSTER_KEY
from tests.waiting import until

ROOM, BOARD = RoomId("clinic-3/tiered"), DocName("board")


@pytest.fixture
async def redis(redis_binary, tmp_path) -> AsyncIterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def opener(redis, postgres_server, postgres_database):
    opened: list[TieredStore] = []

    async def open_store(node: str) -> TieredStore:
        live = await RedisStore.open(redis.url, node_id=node, cluster_key=CLUSTER_KEY)
        records = await PostgresStore.open(postgres_options(postgres_server.url(postgres_database)))
        store = TieredStore(live, records)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


def state(*keys: str) -> bytes:
    doc = Doc()
    shapes = doc.get("shapes", type=Map)
    for key in keys:
        shapes[key] = {"type": "rect"}
    return bytes(doc.get_update())


def keys_of(*updates: bytes | None) -> set[str]:
    doc = Doc()
    for update in updates:
        if update:
            doc.apply_update(update)
    return set(doc.get("shapes", type=Map).to_py() or {})


async def test_two_nodes_archiving_at_once_keep_both(opener):
    """Two copies that each hold what the other lacks (a compaction lock
    that expired): PostgreSQL ends with the union, not the last writer's."""
    one, two = await opener("one"), await opener("two")
    for store in (one, two):
        await store.load(ROOM, BOARD)
    pos = await one.append(ROOM, BOARD, [state("a")])
    await one.compact(ROOM, BOARD, state("a", "from-one"), pos, 1)
    await two.compact(ROOM, BOARD, state("a", "from-two"), pos, 1)
    archived = await one.load_archive(ROOM, BOARD)
    assert keys_of(archived) == {"a", "from-one", "from-two"}
    assert keys_of((await (await opener("three")).load(ROOM, BOARD)).snapshot) >= {"from-two"}


async def test_two_nodes_archiving_a_new_document_at_once_keep_both(opener):
    """The same with no archive yet (nothing to lock with ``FOR UPDATE``):
    the first archives of a document, written at once, merge in turn."""
    one, two = await opener("one"), await opener("two")
    for n in range(5):
        room = RoomId(f"clinic-3/first-{n}")
        for store in (one, two):
            await store.load(room, BOARD)
        pos = await one.append(room, BOARD, [state("a")])
        await asyncio.gather(
            one.compact(room, BOARD, state("a", "from-one"), pos, 1),
            two.compact(room, BOARD, state("a", "from-two"), pos, 1),
        )
        assert keys_of(await one.load_archive(room, BOARD)) == {"a", "from-one", "from-two"}


async def test_a_deletion_stays_final_after_redis_loses_its_tombstone(opener, redis, tmp_path):
    """A copy loaded before the room was deleted cannot archive it or write
    its record back, even once Redis restarted empty (no tombstone there):
    PostgreSQL's tombstone refuses it, and the copy's room is dropped."""
    stale = await opener("stale")
    await stale.load(ROOM, BOARD)
    await stale.load(ROOM, DocName("meta"))
    dropped: list[str] = []
    stale.live.on_deleted = dropped.append
    admin = await opener("admin")
    await admin.delete_room(ROOM)

    await redis.stop()
    await redis.start()  # empty: Redis's tombstone is gone
    await stale.compact(ROOM, BOARD, state("resurrected"), "0-1", 1)
    await stale.save_room_info(RoomInfo(ROOM, title="back", created_ms=1.0, last_activity_ms=2.0))
    assert dropped == [ROOM, ROOM]
    assert await stale.load_archive(ROOM, BOARD) is None
    assert await stale.records.load_room_info(ROOM) is None

    # A copy loaded after the deletion may write the room again.
    fresh = await opener("fresh")
    await fresh.load(ROOM, BOARD)
    await fresh.compact(ROOM, BOARD, state("new life"), "0-1", 1)
    assert keys_of(await fresh.load_archive(ROOM, BOARD)) == {"new life"}


async def test_a_deletion_racing_an_archive_or_a_record_stays_final(opener):
    """A copy loaded before the deletion archives, or saves its record, while
    the room is deleted: whichever goes first, the room stays deleted in
    PostgreSQL (the deletion and the writes take the room's lock in turn)."""
    stale, admin = await opener("stale"), await opener("admin")
    for n in range(5):
        room = RoomId(f"clinic-3/racing-{n}")
        await stale.load(room, BOARD)
        await stale.load(room, DocName("meta"))
        info = RoomInfo(room, title="back", created_ms=1.0, last_activity_ms=2.0)
        await asyncio.gather(
            stale.compact(room, BOARD, state("resurrected"), "0-1", 1),
            stale.save_room_info(info),
            admin.delete_room(room),
        )
        assert await admin.load_archive(room, BOARD) is None
        assert await admin.records.load_room_info(room) is None


async def test_postgres_failing_fails_fast_for_a_while(opener, postgres_server):
    """After a call to PostgreSQL failed (here: no answer in time), the next
    ones fail at once (they say so) instead of each waiting for the
    timeout; Redis takes edits meanwhile; then PostgreSQL is asked again."""
    store = await opener("n")
    store.records_retry_s = 0.5
    await store.load(ROOM, BOARD)
    postgres_server.freeze()
    try:
        with pytest.raises(OSError) as first:
            await store.load_room_info(ROOM)
        assert "retrying" not in str(first.value)
        with pytest.raises(OSError, match="retrying"):
            await store.load_room_info(ROOM)
        assert await store.append(ROOM, BOARD, [state("while down")])
        # Rounds go on (PostgreSQL is not asked); a probe must reach both.
        await store.check_writable()
        with pytest.raises(OSError, match="retrying"):
            await store.check_writable(probe=True)
    finally:
        postgres_server.thaw()

    async def answers() -> bool:
        try:
            return await store.load_room_info(ROOM) is None
        except OSError:
            return False

    await until(answers, timeout_s=10, what="PostgreSQL asked again")
    await store.check_writable(probe=True)
