"""PostgreSQL as the system of record behind Redis (``--store redis
--postgres-url``; rooms/store_tiered.py, issue 15): real ``collab serve``
nodes, a real redis-server (no persistence: a restart comes back empty) and
a real PostgreSQL server, stopped and started by the tests.

- Redis loses everything: what the nodes archived (a room's state when it
  unloads, and at every compaction) is served from PostgreSQL, with the
  room's record and audit log.
- Redis down for a while: chat is refused ``store_unavailable`` (never
  acknowledged unstored), board edits wait in memory, the audit log and
  the admin API go on (PostgreSQL); when Redis is back, empty, every edit
  and every acknowledged message is there, and PostgreSQL gets them.
- PostgreSQL down for a while: edits and chat go on through Redis
  (acknowledged: stored in the stream), compactions wait (the stream grows
  past the bound), the audit log queues and /healthz says the store is
  failing; when PostgreSQL is back, it gets every record, and a cold start
  on an emptied Redis finds everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from pycrdt import Array

from collab.client import CollabClient
from crdt.types import DocName, RoomId
from rooms.redis_keys import RedisKeys
from tests.conftest import ADMIN_KEY, mint
from tests.faults.test_store_outages import chat_code, draw, has_shapes, shapes, wait_store
from tests.postgres.test_serve_postgres import rows
from tests.procs import CollabNode, RedisProcess
from tests.redis.conftest import node_factory  # noqa: F401 (a fixture)
from tests.redis.outages import exactly_once, restart, send_until_stored, until_status
from tests.waiting import until

pytestmark = pytest.mark.slow

ROOM = "clinic-9/record"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def redis(redis_binary, tmp_path) -> AsyncIterator[dict[str, RedisProcess]]:
    server = RedisProcess(tmp_path)
    await server.start()
    holder = {"server": server}
    yield holder
    await holder["server"].stop()


@pytest.fixture
async def nodes(node_factory) -> Callable[..., Awaitable[CollabNode]]:  # noqa: F811
    """tests/redis/conftest.py's nodes, with PostgreSQL behind Redis."""

    async def make(redis_url: str, postgres_url: str, node_id: str, *extra: str) -> CollabNode:
        return await node_factory(
            redis_url,
            node_id,
            "--postgres-url",
            postgres_url,
            "--flush-interval-s",
            "0.1",
            "--compact-after-updates",
            "5",
            "--unload-after-s",
            "0.3",
            *extra,
        )

    return make


class People:
    """The test's clients, all closed at the end."""

    def __init__(self) -> None:
        self.all: list[CollabClient] = []

    async def join(self, url: str, name: str, doc: str = "board", role: str = "participant"):
        token = mint(ROOM, role=role, name=name, sub=name.lower())
        client = CollabClient(url, ROOM, doc, auth={"token": token})
        self.all.append(client)
        await client.connect()
        return client

    async def leave(self, client: CollabClient) -> None:
        await client.close(drain_timeout_s=1)

    async def close(self) -> None:
        await asyncio.gather(
            *(c.close(drain_timeout_s=1) for c in self.all), return_exceptions=True
        )


@pytest.fixture
async def people() -> AsyncIterator[People]:
    group = People()
    yield group
    await group.close()


def chat_of(client: CollabClient) -> list[dict[str, Any]]:
    return client.doc.get("messages", type=Array).to_py() or []


async def read_back(people: People, url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The board and the chat as a new reader finds them on ``url``."""
    board = await people.join(url, "Reader")
    chat = await people.join(url, "Reader", "chat")
    result = shapes(board), chat_of(chat)
    await people.leave(board)
    await people.leave(chat)
    return result


async def archived_shapes(url: str) -> set[str]:
    """The board as PostgreSQL's archive holds it."""
    from pycrdt import Doc, Map

    found = await rows(url, "SELECT data FROM archive WHERE room = $1 AND doc = 'board'", ROOM)
    doc = Doc()
    for (data,) in found:
        doc.apply_update(bytes(data))
    return set(doc.get("shapes", type=Map).to_py() or {})


async def create_room(url: str, title: str) -> None:
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        body = {"id": ROOM, "title": title, "retentionDays": 30}
        async with http.post(url + "/api/rooms", json=body) as resp:
            assert resp.status == 201, await resp.text()


async def audit_actions(url: str) -> set[str]:
    audit = url + "/api/rooms/clinic-9%2Frecord/audit"
    async with aiohttp.ClientSession(headers=ADMIN) as http, http.get(audit) as resp:
        assert resp.status == 200, await resp.text()
        return {r["action"] for r in (await resp.json())["records"]}


# -- Redis loses everything --------------------------------------------------------------


async def test_postgres_keeps_what_redis_loses(
    redis, tmp_path, nodes, people, postgres_server, postgres_database
):
    """Two nodes edit and chat (compacting past a bound of 5), everyone
    leaves (the room unloads: its state is archived), the nodes stop and
    Redis comes back empty: a new node serves the whole board, every
    acknowledged message once, the room's record and its audit log."""
    pg_url = postgres_server.url(postgres_database)
    a = await nodes(redis["server"].url, pg_url, "A")
    b = await nodes(redis["server"].url, pg_url, "B")
    await create_room(a.url, "Kept in PostgreSQL")
    ann = await people.join(a.url, "Ann", role="facilitator")
    bob = await people.join(b.url, "Bob")
    ann_chat = await people.join(a.url, "Ann", "chat", role="facilitator")
    for i in range(14):
        draw(ann if i % 2 else bob, f"shape-{i}")
    await has_shapes(ann, {f"shape-{i}" for i in range(14)})
    await has_shapes(bob, {f"shape-{i}" for i in range(14)})
    acked = [
        (await ann_chat.send_chat(f"note {i}", client_message_id=f"n-{i}"))["id"] for i in range(4)
    ]
    board = shapes(ann)

    async def compacted() -> bool:
        return len(await archived_shapes(pg_url)) >= 5

    await until(compacted, timeout_s=10, what="a compaction archived the board")
    for client in (ann, bob, ann_chat):
        await people.leave(client)

    async def archived_all() -> bool:
        return await archived_shapes(pg_url) == set(board)

    await until(archived_all, timeout_s=10, what="the unloaded room archived whole")
    # A stop leaves snapshots too (the chat may not have unloaded yet).
    assert await a.stop() == 0 and await b.stop() == 0
    redis["server"] = await restart(redis["server"], tmp_path)  # empty

    c = await nodes(redis["server"].url, pg_url, "C")
    got_board, got_chat = await read_back(people, c.url)
    assert got_board == board
    exactly_once(got_chat, acked)
    async with aiohttp.ClientSession(headers=ADMIN) as http, http.get(c.url + "/api/rooms") as resp:
        listed = {r["id"]: r for r in (await resp.json())["rooms"]}
    assert listed[ROOM]["title"] == "Kept in PostgreSQL"
    assert {"create", "connect", "disconnect"} <= await audit_actions(c.url)


# -- Redis down for a while ----------------------------------------------------------------


async def test_while_redis_is_down_chat_is_refused_records_go_on_and_nothing_is_lost(
    redis, tmp_path, nodes, people, postgres_server, postgres_database
):
    pg_url = postgres_server.url(postgres_database)
    a = await nodes(redis["server"].url, pg_url, "A", "--store-delay-window-s", "60")
    b = await nodes(redis["server"].url, pg_url, "B", "--store-delay-window-s", "60")
    ann = await people.join(a.url, "Ann", role="facilitator")
    bob = await people.join(b.url, "Bob")
    chat = await people.join(a.url, "Ann", "chat", role="facilitator")
    acked = [(await chat.send_chat("before", client_message_id="m-before"))["id"]]
    draw(ann, "before")
    await has_shapes(bob, {"before"})

    await redis["server"].stop()
    await until_status(a.url, "degraded")
    assert await chat_code(chat.send_chat("during", client_message_id="m-during")) == (
        "store_unavailable"
    )
    for i in range(4):
        draw(ann, f"during-{i}")
    # The audit log and the admin API are PostgreSQL's: they go on.
    assert "connect" in await audit_actions(a.url)

    redis["server"] = await restart(redis["server"], tmp_path)  # back, empty
    await until_status(a.url, "ok")
    acked.append((await send_until_stored(chat, "during", "m-during"))["id"])
    await has_shapes(bob, {"before"} | {f"during-{i}" for i in range(4)})
    expected = shapes(ann)

    got_board, got_chat = await read_back(people, b.url)
    assert got_board == expected
    exactly_once(got_chat, acked)
    for client in (ann, bob, chat):
        await people.leave(client)

    async def archived_all() -> bool:
        return await archived_shapes(pg_url) == set(expected)

    await until(archived_all, timeout_s=15, what="PostgreSQL has every edit")


# -- PostgreSQL down for a while --------------------------------------------------------------


async def test_while_postgres_is_down_edits_and_chat_go_on_through_redis(
    redis, tmp_path, nodes, people, own_postgres
):
    pg = own_postgres
    database = await pg.create_database()
    pg_url = pg.url(database)
    a = await nodes(redis["server"].url, pg_url, "A")
    b = await nodes(redis["server"].url, pg_url, "B")
    ann = await people.join(a.url, "Ann", role="facilitator")
    bob = await people.join(b.url, "Bob")
    chat = await people.join(b.url, "Bob", "chat")
    acked = [(await chat.send_chat("before", client_message_id="m-0"))["id"]]
    draw(ann, "before")
    await has_shapes(bob, {"before"})

    await pg.astop()
    for i in range(12):  # past the compaction bound of 5: compactions wait
        draw(ann if i % 2 else bob, f"during-{i}")
    during = {f"during-{i}" for i in range(12)}
    await has_shapes(ann, during)
    await has_shapes(bob, during)
    for i in range(1, 4):  # stored in Redis's stream: acknowledged
        acked.append((await chat.send_chat(f"during {i}", client_message_id=f"m-{i}"))["id"])
    await wait_store(a, "failing", timeout_s=15)  # its audit records wait
    stream = redis["server"].client()
    try:
        length = await stream.xlen(RedisKeys(RoomId(ROOM), DocName("board")).log)
    finally:
        await stream.aclose()
    assert length >= 12, "nothing was trimmed while PostgreSQL could not archive"
    # Edits went into Redis all along, but the store was never reported
    # writable again (/healthz did not flap to "ok" between rounds).
    assert "store writes again" not in a.log()

    await pg.astart()
    await wait_store(a, "ok", timeout_s=20)
    expected = shapes(ann)
    for client in (ann, bob, chat):
        await people.leave(client)

    async def archived_all() -> bool:
        return await archived_shapes(pg_url) == set(expected)

    await until(archived_all, timeout_s=20, what="PostgreSQL has every edit")
    assert {"connect", "disconnect"} <= await audit_actions(a.url)
    assert await a.stop() == 0 and await b.stop() == 0

    redis["server"] = await restart(redis["server"], tmp_path)  # empty
    c = await nodes(redis["server"].url, pg_url, "C")
    got_board, got_chat = await read_back(people, c.url)
    assert got_board == expected
    exactly_once(got_chat, acked)
