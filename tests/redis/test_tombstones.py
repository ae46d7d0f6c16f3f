"""A deleted room stays deleted (issue 13, finding 3): deleting or purging a
room leaves a tombstone in Redis that the append script, compaction, room
records and the re-seed path check; a node that missed the deletion finds it
and closes the room's connections with ``room_deleted``."""

from __future__ import annotations

import aiohttp
import pytest
from pycrdt import Array, Doc, Map

from crdt.types import DocName, RoomId
from rooms.store import RoomInfo
from rooms.store_redis import RedisStore, RoomDeletedElsewhere
from tests.boards import shapes
from tests.conftest import ADMIN_KEY
from tests.redis.conftest import CLUSTER_KEY, metrics
from tests.waiting import until

pytestmark = pytest.mark.slow

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
MARKER = b"words-that-must-not-come-back"


async def kill_subscriber(rc, node_id: str) -> None:
    for client in await rc.client_list():
        if client["name"] == f"collab:sub:{node_id}":
            await rc.client_kill_filter(_id=client["id"])


async def dumps_with(rc, needle: bytes) -> list[str]:
    """Keys whose serialized value (DUMP) holds ``needle``."""
    found = []
    async for key in rc.scan_iter():
        value = await rc.dump(key)
        if value is not None and needle in value:
            found.append(key.decode())
    return found


async def room_ids(url: str) -> list[str]:
    async with (
        aiohttp.ClientSession(headers=HEADERS) as http,
        http.get(url + "/api/rooms") as resp,
    ):
        assert resp.status == 200, await resp.text()
        return [r["id"] for r in (await resp.json())["rooms"]]


async def test_a_node_that_missed_the_delete_does_not_bring_the_room_back(
    redis_server, node_factory, clients
):
    await redis_server.client().config_set("rdbcompression", "no")  # DUMP shows bytes as they are
    a = await node_factory(redis_server.url, "A")
    b = await node_factory(redis_server.url, "B")
    on_a = await clients(a.url, "gone", reconnection=False)
    on_b = await clients(b.url, "gone", reconnection=False)
    chat_b = await clients(b.url, "gone", "chat", reconnection=False)
    on_a.doc.get("shapes", type=Map)["x"] = {"type": "rect", "label": MARKER.decode()}
    await chat_b.send_chat(MARKER.decode())
    await on_b.wait_for(lambda: "x" in shapes(on_b), timeout_s=10)
    rc = redis_server.client()
    try:
        assert await dumps_with(rc, MARKER)  # the test can see the bytes
        # Node B stops; Redis drops its subscription; the delete happens then.
        b.pause()
        try:
            await kill_subscriber(rc, "B")
            async with (
                aiohttp.ClientSession(headers=HEADERS) as http,
                http.delete(a.url + "/api/rooms/gone") as resp,
            ):
                assert resp.status == 200, await resp.text()
        finally:
            b.resume()
        # B reconnects, catches up, finds the tombstone: its members are closed.
        for client in (on_b, chat_b):
            await client.wait_for(lambda c=client: not c.connected, timeout_s=15)
            assert any(e["code"] == "room_deleted" for e in client.errors), client.errors
        stats = await metrics(b.url)
        assert stats["collab_envelopes_reconnects_total"] >= 1
        assert stats["collab_envelopes_reseeds_total"] == 0
        assert "re-seeding room=gone" not in b.log()
        # Nothing of the room is in Redis but its tombstone; it is listed nowhere.
        assert [k async for k in rc.scan_iter(match="collab:{gone}*")] == [b"collab:{gone}:deleted"]
        assert await dumps_with(rc, MARKER) == []
        assert b"gone" not in await rc.smembers("collab:rooms")
        assert "gone" not in await room_ids(a.url)
        assert "gone" not in await room_ids(b.url)
        ttl = await rc.ttl("collab:{gone}:deleted")
        assert 29 * 86400 < ttl <= 30 * 86400
    finally:
        await rc.aclose()

    # A room made again with that id (by the admin API) works on both nodes,
    # and holds nothing of the old one.
    async with (
        aiohttp.ClientSession(headers=HEADERS) as http,
        http.post(a.url + "/api/rooms", json={"id": "gone", "title": "Again"}) as resp,
    ):
        assert resp.status == 201, await resp.text()
    again_a = await clients(a.url, "gone")
    again_b = await clients(b.url, "gone")
    chat_again = await clients(b.url, "gone", "chat")
    assert shapes(again_a) == {} and shapes(again_b) == {}
    assert chat_again.doc.get("messages", type=Array).to_py() in (None, [])
    again_a.doc.get("shapes", type=Map)["new"] = {"type": "rect"}
    await again_b.wait_for(lambda: "new" in shapes(again_b), timeout_s=10)
    assert "gone" in await room_ids(b.url)


def _update(key: str) -> bytes:
    doc = Doc()
    doc.get("shapes", type=Map)[key] = {"type": "rect"}
    return doc.get_update()


async def test_stale_copies_are_refused_by_the_store(redis_server):
    """At the store: a node whose copy predates the tombstone can neither
    append, compact nor save the room's record; a node that loads the room
    after the deletion (re-created) can."""
    room, board = RoomId("phoenix"), DocName("board")
    stale = await RedisStore.open(redis_server.url, node_id="stale", cluster_key=CLUSTER_KEY)
    deleter = await RedisStore.open(redis_server.url, node_id="del", cluster_key=CLUSTER_KEY)
    fresh = await RedisStore.open(redis_server.url, node_id="fresh", cluster_key=CLUSTER_KEY)
    rc = redis_server.client()
    told: list[RoomId] = []
    stale.on_deleted = told.append
    try:
        await stale.load(room, board)
        await stale.append(room, board, [_update("old")])
        await deleter.load(room, board)
        await deleter.delete_room(room)
        with pytest.raises(RoomDeletedElsewhere):
            await stale.append(room, board, [_update("stale")])
        assert await stale.append_batch([(room, board, [_update("stale")])]) == ["0-0"]
        await stale.compact(room, board, _update("stale"), "1-0", 1)  # refused
        await stale.save_room_info(RoomInfo(room, "stale title"))  # refused
        assert told == [room, room, room, room]
        assert [k async for k in rc.scan_iter(match="collab:{phoenix}*")] == [
            b"collab:{phoenix}:deleted"
        ]
        assert await stale.stale_rooms([room]) == {room}
        # Re-created: a node loading it now writes; the stale one still cannot.
        loaded = await fresh.load(room, board)
        assert loaded.snapshot is None and loaded.updates == ()
        await fresh.append(room, board, [_update("new")])
        with pytest.raises(RoomDeletedElsewhere):
            await stale.append(room, board, [_update("stale")])
        assert await fresh.stale_rooms([room]) == set()
        assert len((await fresh.load(room, board)).updates) == 1
        assert await rc.smembers("collab:rooms") == {b"phoenix"}
    finally:
        await rc.aclose()
        for store in (stale, deleter, fresh):
            await store.close()


async def test_a_reseeded_room_is_indexed_again(redis_server, node_factory, clients):
    """After Redis comes back empty, the node re-seeds the room and puts it
    back in the room index with its record: the room list and retention see
    it again."""
    a = await node_factory(redis_server.url, "A")
    board = await clients(a.url, "phoenix")
    board.doc.get("shapes", type=Map)["x"] = {"type": "rect"}
    chat = await clients(a.url, "phoenix", "chat")
    await chat.send_chat("before the restart")
    rc = redis_server.client()

    async def indexed_with_record() -> bool:
        return b"phoenix" in await rc.smembers("collab:rooms") and bool(
            await rc.hgetall("collab:{phoenix}:info")
        )

    try:
        await until(indexed_with_record, timeout_s=10, what="the room indexed")
        await redis_server.stop()
        await redis_server.start()  # same port, empty
        await until(indexed_with_record, timeout_s=20, what="the re-seeded room indexed")
        assert await rc.xlen("collab:{phoenix}:doc:board:log") >= 1
    finally:
        await rc.aclose()
    assert (await metrics(a.url))["collab_envelopes_reseeds_total"] >= 1
