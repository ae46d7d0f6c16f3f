"""A room's images in Redis (rooms.store.BlobStore, for rooms.store_redis).

Two hashes per room, inside the room's hash tag so the room's deletion
script removes them with everything else (rooms.redis_scripts ``DELETE``)
and Redis Cluster keeps them on the room's slot (rooms.redis_keys):
``collab:{<room>}:blobs`` maps a digest to ``<media type>\\n<bytes>``,
``collab:{<room>}:blob-index`` maps it to ``<size> <created ms>``, so a
listing (the room's quota, collection) never reads the bytes.

Nothing here is signed with the cluster key: a blob is named by the
SHA-256 of its bytes, so what is read back is checked against its name,
and a blob that fails (someone wrote to Redis who is no node) is not
served: logged with its room and digest, and counted as forged.

Only commands README's ACL line grants (``HGET``, ``HGETALL``, ``SMEMBERS``
and ``EVALSHA`` of the scripts, which use ``HGET``, ``HSET`` and ``HDEL``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import RedisError

from crdt.types import DocName, RoomId
from rooms import redis_scripts
from rooms.redis_keys import RedisKeys
from rooms.redis_keys import text as _text
from rooms.store import BLOB_MEDIA_TYPES, StoredBlob

__all__ = ["RedisBlobs"]

log = logging.getLogger("collab.redis")


class RedisBlobs:
    """The blob half of :class:`rooms.store_redis.RedisStore`, which
    delegates to it. ``on_forged`` is called for a blob that fails its digest."""

    def __init__(self, client: Any, *, on_forged: Callable[[], None]) -> None:
        self.client = client
        self.on_forged = on_forged
        self._put = client.register_script(redis_scripts.PUT_BLOB)
        self._delete = client.register_script(redis_scripts.DELETE_BLOBS)

    async def put(
        self, room: RoomId, digest: str, data: bytes, media_type: str, *, tombstone: str
    ) -> bool | None:
        """Store the blob (True), or find it there (False); None when the room
        was deleted since this node loaded it in deletion epoch ``tombstone``."""
        keys = RedisKeys(room, "")
        value = media_type.encode() + b"\n" + bytes(data)
        entry = f"{len(data)} {time.time() * 1000.0:.0f}"
        try:
            result = int(
                await self._put(
                    keys=[keys.blobs, keys.blob_index, keys.tombstone],
                    args=[digest, value, entry, tombstone],
                )
            )
        except RedisError as exc:
            raise OSError(f"Redis blob write failed: {exc}") from exc
        return None if result < 0 else result == 1

    async def get(self, room: RoomId, digest: str) -> tuple[bytes, str] | None:
        """The blob's bytes and media type; None if absent or if it fails its digest."""
        try:
            value = await self.client.hget(RedisKeys(room, "").blobs, digest)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        if value is None:
            return None
        media_type, _, data = bytes(value).partition(b"\n")
        kind = media_type.decode("ascii", "replace")
        if kind not in BLOB_MEDIA_TYPES or hashlib.sha256(data).hexdigest() != digest:
            log.error(
                "a stored blob fails verification room=%s digest=%s; not served", room, digest
            )
            self.on_forged()
            return None
        return data, kind

    async def index(self, room: RoomId) -> list[StoredBlob]:
        try:
            raw = await self.client.hgetall(RedisKeys(room, "").blob_index)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        out = []
        for digest, entry in raw.items():
            size, _, created = _text(entry).partition(" ")
            try:
                out.append(StoredBlob(_text(digest), int(size), float(created)))
            except ValueError:
                log.error("unreadable image index entry room=%s; skipped", room)
        return sorted(out)

    async def delete(self, room: RoomId, digests: Sequence[str]) -> int:
        wanted = sorted(set(digests))
        if not wanted:
            return 0
        keys = RedisKeys(room, "")
        try:
            return int(await self._delete(keys=[keys.blobs, keys.blob_index], args=wanted))
        except RedisError as exc:
            raise OSError(f"Redis blob delete failed: {exc}") from exc

    async def documents(self, room: RoomId) -> list[DocName]:
        try:
            members = await self.client.smembers(RedisKeys(room, "").docs)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return sorted(DocName(_text(m)) for m in members)
