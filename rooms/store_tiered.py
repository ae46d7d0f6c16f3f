"""Redis for the live path, PostgreSQL as the system of record
(``--store redis`` with ``--postgres-url``; docs/architecture.md §6).

Redis stays what nodes share while a room is in use: every update is
appended to the document's stream and published (rooms.replication), with
its epochs, re-seeds and tombstones. PostgreSQL holds what must outlive
Redis:

- **Documents.** A compaction first archives the full state in PostgreSQL,
  merged into the archive already there (a CRDT union, deletions included,
  so no node's archive replaces another's and a redaction's deletions
  reach it), and only then trims the Redis stream. A load reads the
  archive and Redis's snapshot and entries; applying them in any order
  rebuilds the document. So Redis holds at most the entries since the
  last compaction that PostgreSQL lacks, and a replica that outlives a
  Redis restart writes those back (a re-seed).
- **Everything Redis cannot re-seed:** room records, the audit log,
  revocations, the webhook outbox, images (rooms.store.BlobStore), and
  tombstones (a deletion leaves one in both; an archive or a record from a
  copy loaded before a deletion is refused by PostgreSQL too, also after
  Redis lost its tombstone).

Outages. Redis down: appends fail, so edits stay pending in memory and chat
is refused ``store_unavailable`` until it is back (rooms.persistence), as
with Redis alone. PostgreSQL down: edits and chat go on through Redis (its
stream grows untrimmed: compactions wait), and records and audit stay
queued; after a failure, calls to PostgreSQL fail at once for
``records_retry_s`` instead of each waiting for its timeout, so a server
write (a chat message's) is not held up by them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from crdt.engine import contained, engine_factory
from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditRecord
from rooms.names import META
from rooms.nodes import Replication
from rooms.outbox import OutboxEntry, OutboxStats
from rooms.store import LogPosition, Revocation, RoomInfo, StoredBlob, StoredDoc
from rooms.store_postgres import (
    Connection,
    PostgresStore,
    delete_room_rows,
    put_blob_row,
    upsert_room,
)
from rooms.store_redis import RedisStore, RoomDeletedElsewhere, new_tombstone_epoch

__all__ = ["RECORDS_RETRY_S", "TieredStore", "merge_states"]

T = TypeVar("T")

#: After PostgreSQL failed, how long calls to it fail at once.
RECORDS_RETRY_S = 1.0

#: The first key of the rooms' advisory locks in PostgreSQL (``_lock_room``).
_ROOM_LOCK = 0x636F6C6C  # "coll"


def merge_states(old: Update | None, new: Update) -> Update:
    """One full state holding both (their union; an item deleted in either
    is deleted, its content dropped). CPU-bound: run it in a thread."""
    if old is None:
        return new
    engine = engine_factory("pycrdt")()
    with contained("archive merge"):
        engine.apply_update(old)
        engine.apply_update(new)
        return engine.full_state()


class TieredStore:
    """A :class:`rooms.store.Store`: :class:`RedisStore` for the live path,
    :class:`PostgresStore` as the system of record. Both are closed with it."""

    def __init__(
        self,
        live: RedisStore,
        records: PostgresStore,
        *,
        records_retry_s: float = RECORDS_RETRY_S,
    ) -> None:
        self.live = live
        self.records = records
        self.records_retry_s = records_retry_s
        #: Until when (monotonic) calls to PostgreSQL fail at once.
        self._records_down_until = 0.0
        self._records_error = ""

    async def _pg(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` to PostgreSQL, or OSError at once while it is failing."""
        now = time.monotonic()
        if now < self._records_down_until:
            raise OSError(f"{self._records_error} (retrying)")
        try:
            return await call()
        except OSError as exc:
            self._records_down_until = time.monotonic() + self.records_retry_s
            self._records_error = str(exc)
            raise

    # -- documents -------------------------------------------------------------

    async def load(self, room: RoomId, doc: DocName) -> StoredDoc:
        """The archive merged with Redis's snapshot, then Redis's entries.
        OSError if either cannot be read: a copy loaded without the archive
        would archive less than it holds."""
        stored = await self.live.load(room, doc)
        archived = await self.load_archive(room, doc)
        tombstone = await self._pg(lambda: self.records.run(lambda c: _tombstone(c, room)))
        if tombstone is not None:
            self.live.adopt_tombstone(room, doc, tombstone)
        if archived is None:
            return stored
        snapshot = archived
        if stored.snapshot is not None:
            snapshot = await asyncio.to_thread(merge_states, archived, stored.snapshot)
        return StoredDoc(snapshot, stored.updates, stored.position, stored.seq)

    async def append(self, room: RoomId, doc: DocName, updates: Sequence[Update]) -> LogPosition:
        return await self.live.append(room, doc, updates)

    async def append_batch(
        self, items: Sequence[tuple[RoomId, DocName, Sequence[Update]]]
    ) -> list[LogPosition]:
        return await self.live.append_batch(items)

    async def compact(
        self, room: RoomId, doc: DocName, snapshot: Update, upto: LogPosition, seq: int = 0
    ) -> None:
        """Archive ``snapshot`` in PostgreSQL, then compact Redis. OSError if
        PostgreSQL fails (Redis keeps every entry meanwhile). A copy older
        than a deletion archives nothing (its room goes: the store's
        ``on_deleted``)."""
        data = bytes(snapshot)

        async def merge(old: Update | None) -> Update:
            return await asyncio.to_thread(merge_states, old, data)

        row = _ArchiveRow(
            room,
            doc,
            tombstone=self.live.tombstone_epoch(room, doc),
            epoch=self.live.redis_epoch(room, doc),
            seq=seq,
            stream_id=str(upto),
        )
        archived = await self._pg(lambda: self.records.run(lambda c: _archive(c, row, merge)))
        if not archived:
            self.live.on_deleted(room)
            return
        await self.live.compact(room, doc, snapshot, upto, seq)

    async def delete_room(self, room: RoomId) -> None:
        """Delete the room in Redis (its tombstone refuses stale copies' writes
        at once), then in PostgreSQL with a tombstone in the same epoch."""
        epoch = new_tombstone_epoch()
        await self.live.delete_room(room, epoch=epoch)
        ttl_s = self.live.tombstone_ttl_s
        await self._pg(lambda: self.records.run(lambda c: _bury(c, room, epoch, ttl_s)))

    async def load_archive(self, room: RoomId, doc: DocName) -> Update | None:
        """The document's archived full state in PostgreSQL (None: none)."""
        return await self._pg(lambda: self.records.run(lambda c: _load_archive(c, room, doc)))

    async def list_rooms(self) -> list[RoomId]:
        live = await self.live.list_rooms()
        recorded = await self._pg(self.records.list_rooms)
        return sorted({*live, *recorded})

    # -- records -------------------------------------------------------------

    async def save_room_info(self, info: RoomInfo) -> None:
        """The record in PostgreSQL; refused (the room goes, as in Redis) for
        a copy older than the room's deletion."""
        tombstone = self.live.tombstone_epoch(info.room, META)
        saved = await self._pg(lambda: self.records.run(lambda c: _save_record(c, info, tombstone)))
        if not saved:
            self.live.on_deleted(info.room)

    async def load_room_info(self, room: RoomId) -> RoomInfo | None:
        return await self._pg(lambda: self.records.load_room_info(room))

    async def list_room_infos(self) -> list[RoomInfo]:
        return await self._pg(self.records.list_room_infos)

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        await self._pg(lambda: self.records.append_audit(records))

    async def read_audit(self, room: RoomId | None, *, limit: int = 1000) -> list[AuditRecord]:
        return await self._pg(lambda: self.records.read_audit(room, limit=limit))

    async def add_revocation(self, revocation: Revocation) -> None:
        await self._pg(lambda: self.records.add_revocation(revocation))

    async def delete_revocation(self, revocation_id: str) -> bool:
        return await self._pg(lambda: self.records.delete_revocation(revocation_id))

    async def load_revocations(self) -> tuple[int, list[Revocation]]:
        return await self._pg(self.records.load_revocations)

    async def revocation_version(self) -> int:
        return await self._pg(self.records.revocation_version)

    async def purge_revocations(self, now_ms: float) -> int:
        return await self._pg(lambda: self.records.purge_revocations(now_ms))

    # -- images: records, PostgreSQL's ------------------------------------------

    async def put_blob(self, room: RoomId, digest: str, data: bytes, media_type: str) -> bool:
        """The blob in PostgreSQL; RoomDeletedElsewhere (the room goes, as in
        Redis) for a copy older than the room's deletion."""
        tombstone = self.live.tombstone_epoch(room, META)
        added = await self._pg(
            lambda: self.records.run(
                lambda c: _put_blob(c, room, tombstone, digest, data, media_type)
            )
        )
        if added is None:
            self.live.on_deleted(room)
            raise RoomDeletedElsewhere(room)
        return added

    async def get_blob(self, room: RoomId, digest: str) -> tuple[bytes, str] | None:
        return await self._pg(lambda: self.records.get_blob(room, digest))

    async def list_blobs(self, room: RoomId) -> list[StoredBlob]:
        return await self._pg(lambda: self.records.list_blobs(room))

    async def delete_blobs(self, room: RoomId, digests: Sequence[str]) -> int:
        return await self._pg(lambda: self.records.delete_blobs(room, digests))

    async def list_documents(self, room: RoomId) -> list[DocName]:
        """Redis's documents and PostgreSQL's archived ones (Redis may have lost some)."""
        live = await self.live.list_documents(room)
        archived = await self._pg(lambda: self.records.list_documents(room))
        return sorted({*live, *archived})

    async def outbox_add(self, entries: Sequence[OutboxEntry]) -> None:
        await self._pg(lambda: self.records.outbox_add(entries))

    async def outbox_claim(self, now_ms: float, limit: int, lease_ms: float) -> list[OutboxEntry]:
        return await self._pg(lambda: self.records.outbox_claim(now_ms, limit, lease_ms))

    async def outbox_done(self, entry_id: str) -> None:
        await self._pg(lambda: self.records.outbox_done(entry_id))

    async def outbox_retry(self, entry_id: str, next_ms: float, attempts: int) -> None:
        await self._pg(lambda: self.records.outbox_retry(entry_id, next_ms, attempts))

    async def outbox_stats(self) -> OutboxStats:
        return await self._pg(self.records.outbox_stats)

    # -- the rest -------------------------------------------------------------

    async def check_writable(self, *, probe: bool = False) -> None:
        """Nothing to check before a round: an outage of either shows in the
        writes that need it (appends need Redis; compactions, records and
        the audit PostgreSQL), and a PostgreSQL outage must not hold up the
        edits Redis can take. With ``probe`` (writes failed, and nothing
        waits to be written), OSError unless a small write goes through to
        each: the store is not reported writable again while either fails."""
        if not probe:
            return
        await self.live.check_writable(probe=True)
        await self._pg(lambda: self.records.check_writable(probe=True))

    def replication(self, *, node_id: str, awareness_timeout_s: float) -> Replication:
        """Redis's: nodes share the live path (rooms.replication)."""
        return self.live.replication(node_id=node_id, awareness_timeout_s=awareness_timeout_s)

    async def close(self) -> None:
        try:
            await self.live.close()
        finally:
            await self.records.close()


# -- the archive and the tombstones in PostgreSQL (rooms/migrations/postgres/0003) -----


@dataclass(frozen=True, slots=True)
class _ArchiveRow:
    """Where an archive is written, and from which copy."""

    room: RoomId
    doc: DocName
    #: The deletion epoch the copy was loaded in ('' for none).
    tombstone: str
    #: The Redis position of the compaction.
    epoch: str
    seq: int
    stream_id: str


async def _load_archive(conn: Connection, room: RoomId, doc: DocName) -> Update | None:
    data = await conn.fetchval("SELECT data FROM archive WHERE room = $1 AND doc = $2", room, doc)
    return bytes(data) if data is not None else None


async def _archive(
    conn: Connection, row: _ArchiveRow, merge: Callable[[Update | None], Awaitable[Update]]
) -> bool:
    """Replace the archive by ``merge(stored archive)``, the room locked
    meanwhile (two nodes archiving at once merge in turn). False, and
    nothing written, for a copy older than the room's deletion."""
    async with conn.transaction():
        await _lock_room(conn, row.room)
        if not await _alive(conn, row.room, row.tombstone):
            return False
        old = await conn.fetchval(
            "SELECT data FROM archive WHERE room = $1 AND doc = $2", row.room, row.doc
        )
        data = await merge(bytes(old) if old is not None else None)
        await conn.execute(
            "INSERT INTO archive (room, doc, data, epoch, seq, stream_id, archived_ms) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (room, doc) DO UPDATE SET "
            "data = excluded.data, epoch = excluded.epoch, seq = excluded.seq, "
            "stream_id = excluded.stream_id, archived_ms = excluded.archived_ms",
            row.room,
            row.doc,
            data,
            row.epoch,
            row.seq,
            row.stream_id,
            time.time() * 1000.0,
        )
        return True


async def _lock_room(conn: Connection, room: RoomId) -> None:
    """Hold the room's lock until the transaction ends: archives, records
    and the deletion of one room take it in turn. An advisory lock, not
    ``SELECT … FOR UPDATE``: a document's first archive has no row to lock
    (two nodes inserting it at once would each write over the other's
    state), and a deletion must not slip between a write's tombstone check
    and the write. Keys are (a constant, hash of the room): two rooms
    sharing a hash only wait for each other."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _ROOM_LOCK, room)


async def _tombstone(conn: Connection, room: RoomId) -> str | None:
    """The epoch the room was last deleted in (None: never, or long ago)."""
    epoch = await conn.fetchval("SELECT epoch FROM tombstones WHERE room = $1", room)
    return str(epoch) if epoch is not None else None


async def _alive(conn: Connection, room: RoomId, tombstone: str) -> bool:
    """Whether a copy loaded in deletion epoch ``tombstone`` may still write:
    the room has no tombstone, or that one."""
    epoch = await _tombstone(conn, room)
    return epoch is None or epoch == tombstone


async def _bury(conn: Connection, room: RoomId, epoch: str, ttl_s: float) -> None:
    """Delete the room's rows and leave a tombstone in ``epoch``; tombstones
    older than ``ttl_s`` go."""
    now_ms = time.time() * 1000.0
    async with conn.transaction():
        await _lock_room(conn, room)
        await delete_room_rows(conn, room)
        await conn.execute(
            "INSERT INTO tombstones (room, epoch, deleted_ms) VALUES ($1, $2, $3) "
            "ON CONFLICT (room) DO UPDATE SET epoch = excluded.epoch, "
            "deleted_ms = excluded.deleted_ms",
            room,
            epoch,
            now_ms,
        )
        await conn.execute("DELETE FROM tombstones WHERE deleted_ms < $1", now_ms - ttl_s * 1000.0)


async def _save_record(conn: Connection, info: RoomInfo, tombstone: str) -> bool:
    """The room's record, refused (False) for a copy older than its deletion."""
    async with conn.transaction():
        await _lock_room(conn, info.room)
        if not await _alive(conn, info.room, tombstone):
            return False
        await upsert_room(conn, info)
        return True


async def _put_blob(
    conn: Connection, room: RoomId, tombstone: str, digest: str, data: bytes, media_type: str
) -> bool | None:
    """The blob (True: new, False: held already); None, and nothing written,
    for a copy older than the room's deletion."""
    async with conn.transaction():
        await _lock_room(conn, room)
        if not await _alive(conn, room, tombstone):
            return None
        return await put_blob_row(conn, room, digest, data, media_type)
