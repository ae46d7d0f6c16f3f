"""Which stored images a room keeps (rooms.blobs): at an unload, images no
shape names go once older than the grace period; nothing goes while a
stored board is not loaded; a redaction's image goes unless another board
names it, unloaded boards included."""

from __future__ import annotations

import zlib

from pycrdt import Doc, Map

from crdt.engine import engine_factory
from crdt.types import DocName, RoomId
from rooms.blobs import COLLECT_GRACE_MS, collect_unreferenced, release_images
from rooms.limits import Limits
from rooms.registry import RoomRegistry
from rooms.store_memory import MemoryStore

ROOM = RoomId("clinic/g")
BOARD, PAGE_2 = DocName("board"), DocName("board:page-2")
SHOWN, UNUSED, ELSEWHERE = "a" * 64, "b" * 64, "c" * 64


def image_update(shape_id: str, digest: str) -> bytes:
    doc = Doc(client_id=zlib.crc32(shape_id.encode()))
    doc.get("shapes", type=Map)[shape_id] = {
        "type": "image",
        "x": 0,
        "y": 0,
        "w": 10,
        "h": 10,
        "src": digest,
    }
    return bytes(doc.get_update())


async def room_with_images() -> tuple[MemoryStore, RoomRegistry]:
    store = MemoryStore()
    await store.append(ROOM, BOARD, [image_update("s1", SHOWN)])
    await store.append(ROOM, PAGE_2, [image_update("s2", ELSEWHERE)])
    for digest in (SHOWN, UNUSED, ELSEWHERE):
        await store.put_blob(ROOM, digest, digest.encode(), "image/png")
    registry = RoomRegistry(store=store, engine_factory=engine_factory("pycrdt"), limits=Limits())
    return store, registry


async def digests(store: MemoryStore) -> set[str]:
    return {b.digest for b in await store.list_blobs(ROOM)}


async def test_an_unload_collects_only_old_images_no_board_names():
    store, registry = await room_with_images()
    (blob,) = [b for b in await store.list_blobs(ROOM) if b.digest == UNUSED]
    async with registry.use(ROOM) as room:
        await registry.document(ROOM, BOARD)
        await registry.document(ROOM, PAGE_2)
        fresh = blob.created_ms + COLLECT_GRACE_MS - 1
        assert await collect_unreferenced(store, room, now_ms=fresh) == 0, "too recent"
        later = blob.created_ms + COLLECT_GRACE_MS
        assert await collect_unreferenced(store, room, now_ms=later) == 1
    assert await digests(store) == {SHOWN, ELSEWHERE}


async def test_an_unload_collects_nothing_while_a_stored_board_is_not_loaded():
    store, registry = await room_with_images()
    async with registry.use(ROOM) as room:
        await registry.document(ROOM, BOARD)  # page 2, which names ELSEWHERE, is not
        late = 2 * COLLECT_GRACE_MS + max(b.created_ms for b in await store.list_blobs(ROOM))
        assert await collect_unreferenced(store, room, now_ms=late) is None
    assert await digests(store) == {SHOWN, UNUSED, ELSEWHERE}


async def test_a_redaction_releases_what_no_board_names_unloaded_ones_included():
    store, registry = await room_with_images()
    async with registry.use(ROOM):
        await registry.document(ROOM, BOARD)
        deleted = await release_images(registry, ROOM, [UNUSED, ELSEWHERE, SHOWN])
        assert PAGE_2 in registry.rooms[ROOM].docs, "the other board was read"
    assert deleted == 1
    assert await digests(store) == {SHOWN, ELSEWHERE}
