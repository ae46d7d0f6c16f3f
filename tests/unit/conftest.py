"""Fixtures that open every store a contract runs on: memory, SQLite and
Redis (a real redis-server each test starts), PostgreSQL (the server
tests/postgres starts) and Redis with PostgreSQL behind it: ``opener``
(parametrized) and ``store``, used by the outbox, blob and template tests
(a module's own ``store`` fixture takes precedence)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from rooms.store_memory import MemoryStore
from rooms.store_redis import RedisStore
from rooms.store_sqlite import SqliteStore
from tests.postgres.fixtures import postgres_server  # noqa: F401 (a fixture)

__all__ = ["CLUSTER_KEY", "Opener", "opener", "redis_server_async", "store"]

CLUSTER_KEY = "k" * 40

Opener = Callable[[], Awaitable[Any]]


@pytest.fixture
def redis_server_async(redis_binary, tmp_path):
    """redis-server processes started on demand by the parametrized fixture."""
    from tests.procs import RedisProcess

    servers: list[RedisProcess] = []

    async def start() -> RedisProcess:
        server = RedisProcess(tmp_path)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc is not None:
            server.proc.kill()


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres", "redis+postgres"])
async def opener(request, tmp_path) -> AsyncIterator[Opener]:
    """Opens the parametrized store (again, on the same data, for the
    reopening tests); every store opened is closed after the test."""
    opened: list[Any] = []
    cleanup: list[Callable[[], Awaitable[None]]] = []
    if request.param == "memory":
        memory = MemoryStore()

        async def open_store() -> Any:
            return memory

    elif request.param == "sqlite":
        path = tmp_path / "data" / "collab.sqlite3"

        async def open_store() -> Any:
            return await SqliteStore.open(path)

    elif request.param == "redis":
        server = await request.getfixturevalue("redis_server_async")()

        async def open_store() -> Any:
            return await RedisStore.open(server.url, node_id="tests", cluster_key=CLUSTER_KEY)

    else:
        from rooms.postgres_conn import postgres_options
        from rooms.store_postgres import PostgresStore
        from rooms.store_tiered import TieredStore

        pg = request.getfixturevalue("postgres_server")
        database = await pg.create_database()
        redis = None
        if request.param == "redis+postgres":
            redis = await request.getfixturevalue("redis_server_async")()

        async def open_store() -> Any:
            records = await PostgresStore.open(postgres_options(pg.url(database)))
            if redis is None:
                return records
            live = await RedisStore.open(redis.url, node_id="tests", cluster_key=CLUSTER_KEY)
            return TieredStore(live, records)

        async def drop() -> None:
            await pg.drop_database(database)

        cleanup.append(drop)

    async def tracked() -> Any:
        store = await open_store()
        opened.append(store)
        return store

    tracked.kind = request.param  # type: ignore[attr-defined]
    yield tracked
    for store in opened:
        if request.param != "memory":
            await store.close()
    for step in cleanup:
        await step()


@pytest.fixture
async def store(opener: Opener) -> Any:
    return await opener()
