"""The PostgreSQL store on a real server: its schema migrations, what it
keeps that the contract tests do not look at, and how its failures surface
(always OSError, never with the password; protocol.md §11).

The contract every store passes is tests/unit/test_store_contract.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from crdt.types import DocName, RoomId
from rooms.audit import AuditAction, AuditRecord
from rooms.postgres_conn import postgres_options
from rooms.postgres_migrations import Migration, migrate, migrations
from rooms.store import RoomInfo
from rooms.store_postgres import PostgresStore
from tests.procs import PostgresProcess

pytestmark = pytest.mark.slow

R1, R2 = RoomId("clinic-7/group-a"), RoomId("clinic-7/group-b")
BOARD, CHAT = DocName("board"), DocName("chat")


async def open_store(server: PostgresProcess, database: str, **kwargs: float) -> PostgresStore:
    return await PostgresStore.open(postgres_options(server.url(database)), **kwargs)


async def fetch(server: PostgresProcess, database: str, sql: str, *args: object) -> list[tuple]:
    conn = await asyncpg.connect(server.url(database))
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


# -- migrations -------------------------------------------------------------------------


async def test_nodes_opening_a_new_database_at_once_apply_each_migration_once(
    postgres_server, postgres_database
):
    stores = await asyncio.gather(
        *(open_store(postgres_server, postgres_database) for _ in range(4))
    )
    try:
        rows = await fetch(
            postgres_server,
            postgres_database,
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
        )
        assert rows == [(m.version, m.name, m.checksum) for m in migrations()]
        # Every node works on the one schema.
        positions = await asyncio.gather(
            *(s.append(R1, BOARD, [bytes([i])]) for i, s in enumerate(stores))
        )
        assert len(set(positions)) == 4
        assert len((await stores[0].load(R1, BOARD)).updates) == 4
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    again = await open_store(postgres_server, postgres_database)
    await again.close()
    (count,) = await fetch(
        postgres_server, postgres_database, "SELECT count(*) FROM schema_migrations"
    )
    assert count == (len(migrations()),), "a reopen applies nothing"


async def test_a_failing_migration_leaves_nothing_behind(postgres_server, postgres_database):
    good = Migration(1, "good", "CREATE TABLE made_by_good (x integer)")
    bad = Migration(2, "bad", "CREATE TABLE made_by_bad (x integer); SELECT no_such_column")
    conn = await asyncpg.connect(postgres_server.url(postgres_database))
    try:
        with pytest.raises(asyncpg.PostgresError):
            await migrate(conn, (good, bad))
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        assert tables == [], "one transaction: neither migration, nor their record"
        assert await migrate(conn, (good,)) == [good]
        assert await migrate(conn, (good,)) == []
    finally:
        await conn.close()


async def test_a_database_migrated_by_another_collab_stops_the_open(
    postgres_server, postgres_database
):
    store = await open_store(postgres_server, postgres_database)
    await store.close()
    conn = await asyncpg.connect(postgres_server.url(postgres_database))
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')"
        )
        with pytest.raises(OSError, match="999_future, which this collab does not know"):
            await open_store(postgres_server, postgres_database)
        await conn.execute("DELETE FROM schema_migrations WHERE version = 999")
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
        with pytest.raises(OSError, match="must not change once released") as refused:
            await open_store(postgres_server, postgres_database)
        assert postgres_server.PASSWORD not in str(refused.value)
    finally:
        await conn.close()


async def test_once_migrated_a_user_with_only_reads_and_writes_runs_collab(
    postgres_server, postgres_database
):
    """README: CREATE is needed for the migrations only; then collab runs as a
    user who may read and write its tables and nothing else."""
    store = await open_store(postgres_server, postgres_database)
    await store.close()
    user = f"app_{postgres_database}"
    await postgres_server.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'app-password-1'")
    for grant in (
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {user}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {user}",
    ):
        await postgres_server.execute(grant, database=postgres_database)
    url = f"postgresql://{user}:app-password-1@127.0.0.1:{postgres_server.port}/{postgres_database}"
    store = await PostgresStore.open(postgres_options(url))
    try:
        await store.append(R1, BOARD, [b"x"])
        await store.compact(R1, BOARD, b"snap", 1)
        await store.append_audit(
            [AuditRecord(1.0, R1, "u", "participant", AuditAction.CONNECT, "ok")]
        )
        await store.check_writable(probe=True)
        await store.delete_room(R1)
    finally:
        await store.close()


async def test_the_tables_may_live_in_a_schema_of_their_own(postgres_server, postgres_database):
    await postgres_server.execute("CREATE SCHEMA collab", database=postgres_database)
    url = postgres_server.url(postgres_database) + "?search_path=collab"
    store = await PostgresStore.open(postgres_options(url))
    try:
        await store.append(R1, BOARD, [b"x"])
    finally:
        await store.close()
    tables = await fetch(
        postgres_server,
        postgres_database,
        "SELECT DISTINCT schemaname FROM pg_tables WHERE tablename IN ('updates', 'audit')",
    )
    assert tables == [("collab",)]


def test_the_migrations_are_numbered_and_ship_in_the_package():
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert found[0].name == "initial" and "CREATE TABLE updates" in found[0].sql


# -- what the store keeps ---------------------------------------------------------------


async def test_positions_follow_the_order_of_a_batch(postgres_server, postgres_database):
    store = await open_store(postgres_server, postgres_database)
    try:
        updates = [f"u{i}".encode() for i in range(200)]
        first = await store.append(R1, BOARD, updates[:100])
        assert await store.append(R1, BOARD, []) == first, "an empty append moves nothing"
        last = await store.append(R1, BOARD, updates[100:])
        stored = await store.load(R1, BOARD)
        assert list(stored.updates) == updates and stored.position == last
        rows = await fetch(
            postgres_server, postgres_database, "SELECT data FROM updates ORDER BY seq"
        )
        assert [r[0] for r in rows] == updates
    finally:
        await store.close()


async def test_deleting_a_room_keeps_its_audit_and_other_rooms(postgres_server, postgres_database):
    store = await open_store(postgres_server, postgres_database)
    try:
        await store.append(R1, BOARD, [b"a"])
        await store.compact(R1, CHAT, b"snap", 0)
        await store.save_room_info(RoomInfo(R1, "One", 7.0, 1.0, 2.0))
        await store.save_room_info(RoomInfo(R2, "Two", None, 3.0, 4.0))
        records = [
            AuditRecord(
                float(i), R1 if i % 2 else None, "u", "participant", AuditAction.CONNECT, "ok"
            )
            for i in range(5)
        ]
        await store.append_audit(records)
        await store.delete_room(R1)
        for table in ("snapshots", "updates", "rooms"):
            rows = await fetch(
                postgres_server,
                postgres_database,
                f"SELECT count(*) FROM {table} WHERE room = $1",
                R1,
            )
            assert rows == [(0,)], table
        assert await store.list_room_infos() == [RoomInfo(R2, "Two", None, 3.0, 4.0)]
        assert await store.read_audit(R1) == [r for r in records if r.room == R1]
        assert await store.read_audit(None) == records, "None: every record"
        assert await store.read_audit(None, limit=2) == records[-2:]
        assert await store.read_audit(None, limit=0) == []
    finally:
        await store.close()


async def test_room_names_sort_as_python_sorts_them(postgres_server, postgres_database):
    """COLLATE "C": byte order, as SQLite and sorted() (a locale would put
    'a-b' and 'a/b', or 'B' and 'a', the other way round)."""
    store = await open_store(postgres_server, postgres_database)
    try:
        rooms = [RoomId(r) for r in ("a/b", "a-b", "B", "a", "a.b", "Z~", "a_b")]
        for room in rooms:
            await store.append(room, BOARD, [b"x"])
            await store.save_room_info(RoomInfo(room))
        assert await store.list_rooms() == sorted(rooms)
        assert [i.room for i in await store.list_room_infos()] == sorted(rooms)
    finally:
        await store.close()


async def test_a_closed_store_raises_oserror(postgres_server, postgres_database):
    store = await open_store(postgres_server, postgres_database)
    await store.close()
    await store.close()
    with pytest.raises(OSError):
        await store.load(R1, BOARD)


# -- failures: always OSError, never the password -------------------------------------------


async def test_a_wrong_password_or_database_stops_the_open_with_the_reason(
    postgres_server, postgres_database
):
    url = postgres_server.url(postgres_database).replace(postgres_server.PASSWORD, "wrong-pw-42")
    with pytest.raises(OSError, match="refused the credentials") as refused:
        await PostgresStore.open(postgres_options(url))
    assert "wrong-pw-42" not in str(refused.value)
    assert "postgresql://collab@127.0.0.1" in str(refused.value)
    with pytest.raises(OSError, match="no such database"):
        await PostgresStore.open(postgres_options(postgres_server.url("nope")))


async def test_the_password_from_a_file(postgres_server, postgres_database, tmp_path: Path):
    secret = tmp_path / "pg-password"
    secret.write_text(postgres_server.PASSWORD + "\n")
    options = postgres_options(
        postgres_server.url(postgres_database, password=False), password_file=secret
    )
    assert postgres_server.PASSWORD not in repr(options)
    store = await PostgresStore.open(options)
    try:
        await store.append(R1, BOARD, [b"x"])
    finally:
        await store.close()


async def test_a_held_lock_fails_writes_in_about_a_second_and_reads_go_on(
    postgres_server, postgres_database
):
    """Another session's lock (a long migration, an operator's LOCK TABLE):
    writes fail after the lock timeout, like SQLite's busy timeout, so a chat
    ack is answered; reads are not held up; afterwards writes work."""
    store = await open_store(postgres_server, postgres_database)
    await store.append(R1, BOARD, [b"before"])
    holder = await asyncpg.connect(postgres_server.url(postgres_database))
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE updates, health IN EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(OSError, match="lock timeout"):
            await store.append(R1, BOARD, [b"during"])
        assert time.monotonic() - started < 3.0
        with pytest.raises(OSError):
            await store.check_writable(probe=True)
        await store.check_writable()  # the server answers
        assert list((await store.load(R1, BOARD)).updates) == [b"before"]
        await transaction.rollback()
        await store.append(R1, BOARD, [b"after"])
        await store.check_writable(probe=True)
        assert list((await store.load(R1, BOARD)).updates) == [b"before", b"after"]
    finally:
        await holder.close()
        await store.close()


async def test_a_server_that_stops_is_an_outage_and_writes_resume_when_it_is_back():
    """Over the unix socket, whose file goes with the server: an OSError, but
    never FileNotFoundError (which would tell StoreHealth the store's files
    are lost for good); the pool reconnects when the server is back."""
    from tests.postgres.fixtures import require_postgres

    require_postgres()
    server = PostgresProcess()
    try:
        await server.astart()
        database = await server.create_database()
        store = await PostgresStore.open(postgres_options(server.socket_url(database)))
        try:
            await store.append(R1, BOARD, [b"before"])
            await server.astop()
            for attempt in (
                store.append(R1, BOARD, [b"during"]),
                store.load(R1, BOARD),
                store.check_writable(),
                store.check_writable(probe=True),
            ):
                started = time.monotonic()
                with pytest.raises(OSError) as failed:
                    await attempt
                assert not isinstance(failed.value, FileNotFoundError), failed.value
                assert "PostgreSQL at postgresql://collab@" in str(failed.value)
                assert time.monotonic() - started < 2.0, "a stopped server fails at once"
            await server.astart()
            await store.check_writable(probe=True)
            await store.append(R1, BOARD, [b"after"])
            assert list((await store.load(R1, BOARD)).updates) == [b"before", b"after"]
        finally:
            await store.close()
    finally:
        server.remove()


async def test_a_server_that_stops_answering_fails_each_call_within_its_timeout():
    """A hung server (or a network dropping everything): connections stay
    open and nothing answers. Each call fails within the command timeout,
    not twice that (asyncpg's wait for the cancellation happens in the
    background), and calls work again once the server answers.

    A call that timed out may still have been committed once the server
    went on (the statement was on its way): the retry writes it again,
    which Yjs applies once (the store's docstring)."""
    from tests.postgres.fixtures import require_postgres

    require_postgres()
    server = PostgresProcess()
    try:
        await server.astart()
        database = await server.create_database()
        store = await PostgresStore.open(
            postgres_options(server.url(database)), command_timeout_s=2.0, connect_timeout_s=2.0
        )
        try:
            await store.append(R1, BOARD, [b"before"])
            server.freeze()
            try:
                for attempt in (
                    store.append(R1, BOARD, [b"during"]),
                    store.check_writable(),
                    store.load(R1, BOARD),
                ):
                    started = time.monotonic()
                    with pytest.raises(OSError, match="no answer in time"):
                        await attempt
                    # Not twice the timeout (asyncpg's wait for the cancellation).
                    assert time.monotonic() - started < 3.5
            finally:
                server.thaw()
            await store.append(R1, BOARD, [b"after"])
            stored = (await store.load(R1, BOARD)).updates
            assert stored[0] == b"before" and stored[-1] == b"after"
            assert set(stored) <= {b"before", b"during", b"after"}
        finally:
            await store.close()
    finally:
        server.remove()
