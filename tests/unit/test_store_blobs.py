"""A room's images in the store (rooms.store.BlobStore), on every store:
memory, SQLite and Redis (a real redis-server each test starts), PostgreSQL
and Redis with PostgreSQL behind it (the server tests/postgres starts).

A put is idempotent per digest, rooms are apart, deletions say how many
went, deleting a room takes its blobs, the durable stores keep them across
a reopen, and Redis does not serve a blob whose bytes are not its digest's.
"""

from __future__ import annotations

import hashlib

import pytest

from crdt.types import DocName, RoomId
from rooms.redis_keys import RedisKeys
from rooms.store import BlobStore

R1, R2 = RoomId("clinic-7/group-a"), RoomId("clinic-7/group-b")
META, BOARD = DocName("meta"), DocName("board")


def blob(seed: str, size: int = 2000) -> tuple[str, bytes]:
    """A digest and bytes (not an image: the store does not care)."""
    data = (seed.encode() * (size // len(seed) + 1))[:size]
    return hashlib.sha256(data).hexdigest(), data


A, A_BYTES = blob("a")
B, B_BYTES = blob("b", 70_000)


async def test_the_store_is_a_blob_store(store):
    assert isinstance(store, BlobStore)


async def test_put_get_list(store):
    assert await store.get_blob(R1, A) is None
    assert await store.list_blobs(R1) == []
    assert await store.put_blob(R1, A, A_BYTES, "image/png") is True
    assert await store.put_blob(R1, B, B_BYTES, "image/jpeg") is True
    assert await store.get_blob(R1, A) == (A_BYTES, "image/png")
    assert await store.get_blob(R1, B) == (B_BYTES, "image/jpeg")
    listed = await store.list_blobs(R1)
    assert [(b.digest, b.size) for b in listed] == sorted([(A, len(A_BYTES)), (B, len(B_BYTES))])
    assert all(b.created_ms > 1.6e12 for b in listed)


async def test_a_second_put_of_a_digest_is_the_same_blob(store):
    assert await store.put_blob(R1, A, A_BYTES, "image/png") is True
    (first,) = await store.list_blobs(R1)
    assert await store.put_blob(R1, A, A_BYTES, "image/png") is False
    assert await store.list_blobs(R1) == [first], "one blob, its first creation time"
    assert await store.get_blob(R1, A) == (A_BYTES, "image/png")


async def test_rooms_are_apart(store):
    await store.put_blob(R1, A, A_BYTES, "image/png")
    assert await store.get_blob(R2, A) is None
    assert await store.list_blobs(R2) == []
    assert await store.put_blob(R2, A, A_BYTES, "image/png") is True, "its own copy"
    assert await store.delete_blobs(R2, [A]) == 1
    assert await store.get_blob(R1, A) == (A_BYTES, "image/png")


async def test_delete_blobs_counts_what_went(store):
    await store.put_blob(R1, A, A_BYTES, "image/png")
    await store.put_blob(R1, B, B_BYTES, "image/webp")
    unknown = "f" * 64
    assert await store.delete_blobs(R1, [A, unknown, A]) == 1
    assert await store.get_blob(R1, A) is None
    assert [b.digest for b in await store.list_blobs(R1)] == [B]
    assert await store.delete_blobs(R1, []) == 0
    assert await store.delete_blobs(R1, [A]) == 0
    assert await store.put_blob(R1, A, A_BYTES, "image/png") is True, "back after a delete"


async def test_deleting_the_room_deletes_its_blobs(store):
    await store.load(R1, META)  # as the server does before a write
    await store.put_blob(R1, A, A_BYTES, "image/png")
    await store.put_blob(R2, B, B_BYTES, "image/png")
    await store.delete_room(R1)
    assert await store.get_blob(R1, A) is None
    assert await store.list_blobs(R1) == []
    assert await store.get_blob(R2, B) == (B_BYTES, "image/png"), "another room's stay"
    await store.load(R1, META)  # the room made again, loaded in the deletion's epoch
    assert await store.put_blob(R1, A, A_BYTES, "image/png") is True


async def test_documents_of_a_room(store):
    await store.append(R1, BOARD, [b"\x00\x00"])
    await store.append(R1, DocName("board:page-2"), [b"\x00\x00"])
    await store.append(R2, DocName("chat"), [b"\x00\x00"])
    assert await store.list_documents(R1) == [BOARD, DocName("board:page-2")]
    assert await store.list_documents(RoomId("nobody")) == []


async def test_blobs_outlive_a_reopen(opener):
    if opener.kind == "memory":
        pytest.skip("memory keeps nothing across a process")
    store = await opener()
    await store.put_blob(R1, A, A_BYTES, "image/webp")
    await store.close()
    reopened = await opener()
    assert await reopened.get_blob(R1, A) == (A_BYTES, "image/webp")


async def test_redis_keeps_blobs_in_the_room_tag_and_serves_no_forged_one(opener):
    if opener.kind != "redis":
        pytest.skip("Redis only")
    store = await opener()
    forged: list[int] = []
    store.on_forged = lambda: forged.append(1)
    await store.load(R1, META)
    await store.put_blob(R1, A, A_BYTES, "image/png")
    keys = RedisKeys(R1, "")
    assert {keys.blobs, keys.blob_index} <= set(await store.room_keys(R1))
    # Someone with write access to Redis, but not a node, swaps the bytes.
    await store.client.hset(keys.blobs, A, b"image/png\n" + B_BYTES)
    assert await store.get_blob(R1, A) is None
    assert forged == [1]
    await store.client.hset(keys.blobs, A, b"text/html\n" + A_BYTES)
    assert await store.get_blob(R1, A) is None, "a media type no node writes"
    await store.delete_room(R1)
    assert not {keys.blobs, keys.blob_index} & set(await store.room_keys(R1))
