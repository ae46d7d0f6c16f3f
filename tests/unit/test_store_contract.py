"""Every store passes the same contract: memory, SQLite, Redis, PostgreSQL,
and Redis with PostgreSQL as the system of record (real redis-server and
PostgreSQL servers, started by the tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pycrdt import Doc, Map

from crdt.types import DocName, RoomId
from rooms.private_line import thread_doc
from rooms.store import BlobStore, Store
from rooms.store_memory import MemoryStore
from rooms.store_redis import RedisStore
from rooms.store_sqlite import SqliteStore
from tests.postgres.fixtures import postgres_server  # noqa: F401

R1, R2 = RoomId("clinic-7/group-a"), RoomId("clinic-7/group-b")
BOARD, CHAT = DocName("board"), DocName("chat")


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres", "redis+postgres"])
async def store(request, tmp_path) -> AsyncIterator[Store]:
    database = None
    if request.param == "memory":
        s: Store = MemoryStore()
    elif request.param == "sqlite":
        s = await SqliteStore.open(tmp_path / "nested" / "collab.sqlite3")
    elif request.param == "redis":
        server = await request.getfixturevalue("redis_server_async")()
        s = await RedisStore.open(server.url, node_id="contract")
    else:
        from rooms.postgres_conn import postgres_options
        from rooms.store_postgres import PostgresStore
        from rooms.store_tiered import TieredStore

        pg = request.getfixturevalue("postgres_server")
        database = await pg.create_database()
        s = await PostgresStore.open(postgres_options(pg.url(database)))
        if request.param == "redis+postgres":
            server = await request.getfixturevalue("redis_server_async")()
            s = TieredStore(await RedisStore.open(server.url, node_id="contract"), s)
    yield s
    await s.close()
    if database is not None:
        await pg.drop_database(database)


@pytest.fixture
def redis_server_async(redis_binary, tmp_path):
    """The redis-server fixture, started lazily from the parametrized store."""
    from tests.procs import RedisProcess

    servers = []

    async def start():
        server = RedisProcess(tmp_path)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc is not None:
            server.proc.kill()


def updates(n: int) -> tuple[Doc, list[bytes]]:
    doc = Doc()
    out: list[bytes] = []
    doc.observe(lambda e: out.append(bytes(e.update)))
    shapes = doc.get("shapes", type=Map)
    for i in range(n):
        shapes[f"s{i}"] = {"i": i}
    return doc, out


def rebuild(stored) -> dict:
    doc = Doc()
    if stored.snapshot is not None:
        doc.apply_update(stored.snapshot)
    for u in stored.updates:
        doc.apply_update(u)
    return doc.get("shapes", type=Map).to_py() or {}


async def test_empty_document(store):
    stored = await store.load(R1, BOARD)
    assert stored.snapshot is None and stored.updates == () and stored.log_length == 0
    assert await store.list_rooms() == []


async def test_append_then_load_in_order(store):
    _, ups = updates(5)
    pos1 = await store.append(R1, BOARD, ups[:2])
    pos2 = await store.append(R1, BOARD, ups[2:])
    assert pos2 > pos1
    stored = await store.load(R1, BOARD)
    assert list(stored.updates) == ups
    assert stored.position == pos2
    assert rebuild(stored) == {f"s{i}": {"i": i} for i in range(5)}


async def test_documents_and_rooms_are_separate(store):
    _, ups = updates(3)
    await store.append(R1, BOARD, ups[:1])
    await store.append(R1, CHAT, ups[1:2])
    await store.append(R2, BOARD, ups[2:])
    assert list((await store.load(R1, BOARD)).updates) == ups[:1]
    assert list((await store.load(R1, CHAT)).updates) == ups[1:2]
    assert list((await store.load(R2, BOARD)).updates) == ups[2:]
    assert await store.list_rooms() == [R1, R2]


async def test_compact_replaces_log_up_to_position(store):
    doc, ups = updates(6)
    pos = await store.append(R1, BOARD, ups[:4])
    snapshot_doc = Doc()
    for u in ups[:4]:
        snapshot_doc.apply_update(u)
    later = await store.append(R1, BOARD, ups[4:])  # appended after the snapshot was taken
    await store.compact(R1, BOARD, bytes(snapshot_doc.get_update()), pos)
    stored = await store.load(R1, BOARD)
    assert stored.snapshot is not None
    assert list(stored.updates) == ups[4:], "entries after the snapshot position are kept"
    assert stored.position == later
    assert rebuild(stored) == doc.get("shapes", type=Map).to_py()


async def test_compact_twice_keeps_latest_snapshot(store):
    doc, ups = updates(4)
    pos = await store.append(R1, BOARD, ups)
    await store.compact(R1, BOARD, b"\x00\x00", pos)
    await store.compact(R1, BOARD, bytes(doc.get_update()), pos)
    stored = await store.load(R1, BOARD)
    assert stored.updates == ()
    assert rebuild(stored) == doc.get("shapes", type=Map).to_py()


async def test_delete_room_removes_everything(store):
    doc, ups = updates(3)
    pos = await store.append(R1, BOARD, ups)
    await store.compact(R1, BOARD, bytes(doc.get_update()), pos)
    await store.append(R1, CHAT, ups[:1])
    await store.append(R2, BOARD, ups[:1])
    await store.delete_room(R1)
    for name in (BOARD, CHAT):
        stored = await store.load(R1, name)
        assert stored.snapshot is None and stored.updates == ()
    assert await store.list_rooms() == [R2]
    assert list((await store.load(R2, BOARD)).updates) == ups[:1]


async def test_delete_room_removes_private_threads(store):
    """A private thread (protocol.md §6.8) is a document like any other: listed,
    and deleted with its room, on every store."""
    thread = thread_doc(R1, "ann@example.org")
    _, ups = updates(2)
    await store.append(R1, thread, ups)
    await store.append(R1, CHAT, ups[:1])
    if isinstance(store, BlobStore):
        assert thread in await store.list_documents(R1)
    assert list((await store.load(R1, thread)).updates) == ups
    await store.delete_room(R1)
    stored = await store.load(R1, thread)
    assert stored.snapshot is None and stored.updates == ()
    if isinstance(store, BlobStore):
        assert await store.list_documents(R1) == []


async def test_sqlite_survives_reopen(tmp_path):
    path = tmp_path / "db.sqlite3"
    _, ups = updates(3)
    store = await SqliteStore.open(path)
    await store.append(R1, BOARD, ups)
    await store.close()
    again = await SqliteStore.open(path)
    try:
        assert list((await again.load(R1, BOARD)).updates) == ups
    finally:
        await again.close()


async def test_sqlite_closed_store_raises_oserror(tmp_path):
    store = await SqliteStore.open(tmp_path / "db.sqlite3")
    await store.close()
    with pytest.raises(OSError):
        await store.load(R1, BOARD)
