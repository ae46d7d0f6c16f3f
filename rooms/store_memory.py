"""A store in process memory: for tests and throwaway servers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditRecord
from rooms.nodes import Replication, SingleNode
from rooms.outbox import OutboxEntry, OutboxStats
from rooms.store import LogPosition, Revocation, RoomInfo, StoredBlob, StoredDoc

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Entry:
    snapshot: Update | None = None
    log: list[tuple[int, Update]] = field(default_factory=list)


class MemoryStore:
    """A :class:`rooms.store.Store` in dictionaries; lost when the process ends."""

    def __init__(self) -> None:
        self._docs: dict[tuple[RoomId, DocName], _Entry] = {}
        self._seq = 0
        self._infos: dict[RoomId, RoomInfo] = {}
        self._audit: list[AuditRecord] = []
        self._revocations: dict[str, Revocation] = {}
        self._revocation_version = 0
        self._outbox: dict[str, OutboxEntry] = {}
        #: Per room: digest → (bytes, media type, created ms).
        self._blobs: dict[RoomId, dict[str, tuple[bytes, str, float]]] = {}

    async def load(self, room: RoomId, doc: DocName) -> StoredDoc:
        entry = self._docs.get((room, doc))
        if entry is None:
            return StoredDoc(None, (), 0)
        position = entry.log[-1][0] if entry.log else 0
        return StoredDoc(entry.snapshot, tuple(u for _, u in entry.log), position)

    async def append(self, room: RoomId, doc: DocName, updates: Sequence[Update]) -> LogPosition:
        entry = self._docs.setdefault((room, doc), _Entry())
        for update in updates:
            self._seq += 1
            entry.log.append((self._seq, bytes(update)))
        return entry.log[-1][0] if entry.log else 0

    async def append_batch(
        self, items: Sequence[tuple[RoomId, DocName, Sequence[Update]]]
    ) -> list[LogPosition]:
        return [await self.append(room, doc, updates) for room, doc, updates in items]

    async def compact(
        self, room: RoomId, doc: DocName, snapshot: Update, upto: LogPosition, seq: int = 0
    ) -> None:
        entry = self._docs.setdefault((room, doc), _Entry())
        entry.snapshot = bytes(snapshot)
        entry.log = [(seq, u) for seq, u in entry.log if seq > int(upto)]

    async def delete_room(self, room: RoomId) -> None:
        for key in [k for k in self._docs if k[0] == room]:
            del self._docs[key]
        self._infos.pop(room, None)
        self._blobs.pop(room, None)

    async def list_rooms(self) -> list[RoomId]:
        return sorted({room for room, _ in self._docs} | set(self._infos))

    async def save_room_info(self, info: RoomInfo) -> None:
        self._infos[info.room] = info

    async def load_room_info(self, room: RoomId) -> RoomInfo | None:
        return self._infos.get(room)

    async def list_room_infos(self) -> list[RoomInfo]:
        return [self._infos[r] for r in sorted(self._infos)]

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        self._audit.extend(records)

    async def read_audit(self, room: RoomId | None, *, limit: int = 1000) -> list[AuditRecord]:
        matching = [r for r in self._audit if room is None or r.room == room]
        return matching[-limit:] if limit > 0 else []

    async def add_revocation(self, revocation: Revocation) -> None:
        self._revocations[revocation.id] = revocation
        self._revocation_version += 1

    async def delete_revocation(self, revocation_id: str) -> bool:
        if self._revocations.pop(revocation_id, None) is None:
            return False
        self._revocation_version += 1
        return True

    async def load_revocations(self) -> tuple[int, list[Revocation]]:
        return self._revocation_version, list(self._revocations.values())

    async def revocation_version(self) -> int:
        return self._revocation_version

    async def purge_revocations(self, now_ms: float) -> int:
        expired = [r.id for r in self._revocations.values() if r.until_ms <= now_ms]
        for revocation_id in expired:
            del self._revocations[revocation_id]
        return len(expired)

    # -- images (rooms.store.BlobStore) ----------------------------------------------

    async def put_blob(self, room: RoomId, digest: str, data: bytes, media_type: str) -> bool:
        blobs = self._blobs.setdefault(room, {})
        if digest in blobs:
            return False
        blobs[digest] = (bytes(data), media_type, time.time() * 1000.0)
        return True

    async def get_blob(self, room: RoomId, digest: str) -> tuple[bytes, str] | None:
        found = self._blobs.get(room, {}).get(digest)
        return None if found is None else (found[0], found[1])

    async def list_blobs(self, room: RoomId) -> list[StoredBlob]:
        blobs = self._blobs.get(room, {})
        return [StoredBlob(d, len(blobs[d][0]), blobs[d][2]) for d in sorted(blobs)]

    async def delete_blobs(self, room: RoomId, digests: Sequence[str]) -> int:
        blobs = self._blobs.get(room, {})
        gone = sum(blobs.pop(d, None) is not None for d in set(digests))
        if not blobs:
            self._blobs.pop(room, None)
        return gone

    async def list_documents(self, room: RoomId) -> list[DocName]:
        return sorted(doc for r, doc in self._docs if r == room)

    # -- the webhook outbox (rooms.store.OutboxStore) ----------------------------------

    async def outbox_add(self, entries: Sequence[OutboxEntry]) -> None:
        for entry in entries:
            self._outbox.setdefault(entry.id, entry)

    async def outbox_claim(self, now_ms: float, limit: int, lease_ms: float) -> list[OutboxEntry]:
        due = sorted(
            (e for e in self._outbox.values() if e.next_ms <= now_ms),
            key=lambda e: (e.next_ms, e.created_ms, e.id),
        )[: max(limit, 0)]
        claimed = [dataclasses.replace(e, next_ms=now_ms + lease_ms) for e in due]
        for entry in claimed:
            self._outbox[entry.id] = entry
        return claimed

    async def outbox_done(self, entry_id: str) -> None:
        self._outbox.pop(entry_id, None)

    async def outbox_retry(self, entry_id: str, next_ms: float, attempts: int) -> None:
        entry = self._outbox.get(entry_id)
        if entry is not None:
            self._outbox[entry_id] = dataclasses.replace(entry, next_ms=next_ms, attempts=attempts)

    async def outbox_stats(self) -> OutboxStats:
        oldest = min((e.created_ms for e in self._outbox.values()), default=None)
        return OutboxStats(len(self._outbox), oldest)

    async def check_writable(self, *, probe: bool = False) -> None:
        """Nothing to check: memory takes every write."""
        return None

    def replication(self, *, node_id: str, awareness_timeout_s: float) -> Replication:
        """One process owns this store: :class:`~rooms.nodes.SingleNode`."""
        return SingleNode(self)

    async def close(self) -> None:
        self._docs.clear()
        self._blobs.clear()
