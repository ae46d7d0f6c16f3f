"""Writing a registry's rooms to its store: batched off the hot path (or
right after the event-loop turn when the store is shared by nodes), with
compaction past a bound, the rooms' records and the audit log.

:class:`RoomPersistence` is the part of :class:`rooms.registry.RoomRegistry`
that talks to the store on the write side; it uses the registry's rooms and
settings, declared below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from crdt.types import RoomId, UserId
from rooms.audit import AuditAction, AuditRecord
from rooms.document import Document
from rooms.identity import Identity
from rooms.room import Room, RoomState
from rooms.store import RoomInfo, Store
from rooms.tasks import stop_if_cancelled

if TYPE_CHECKING:
    from rooms.replication import Replicator

__all__ = ["RoomPersistence"]

log = logging.getLogger("collab.rooms")

#: Changes of a room's last activity smaller than this are not written back.
_ACTIVITY_GRANULARITY_MS = 10_000.0


class RoomPersistence:
    """Flushing, compaction, room records and the audit log of a registry."""

    # Provided by RoomRegistry.
    rooms: dict[RoomId, Room]
    store: Store
    replicator: Replicator | None
    clock_ms: Callable[[], float]
    flush_interval_s: float
    compact_after_updates: int
    _audit: list[AuditRecord]
    _flush_lock: asyncio.Lock
    _eager: asyncio.Task[None] | None
    _eager_again: bool
    _closing: bool

    # -- audit -------------------------------------------------------------

    def audit(
        self,
        action: AuditAction,
        *,
        room: RoomId | None = None,
        identity: Identity | None = None,
        outcome: str = "ok",
        detail: str = "",
        user_id: UserId | None = None,
        role: str | None = None,
    ) -> None:
        """Queue an audit record (written with the next flush)."""
        self._audit.append(
            AuditRecord(
                ts=self.clock_ms(),
                room=room,
                user_id=identity.user_id if identity is not None else user_id,
                role=identity.role.value if identity is not None else role,
                action=action,
                outcome=outcome,
                detail=detail,
            )
        )

    async def flush_audit(self) -> None:
        if not self._audit:
            return
        batch, self._audit = self._audit, []
        try:
            await self.store.append_audit(batch)
        except OSError:
            self._audit[:0] = batch
            raise

    # -- persistence -------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush_all()
            except OSError as exc:
                stop_if_cancelled()
                log.error("flush failed: %s; will retry", exc)

    def schedule_flush(self) -> None:
        """Flush soon (after this event-loop turn): a replicated store's other
        nodes are waiting. Coalesces: one flush in flight, one more queued."""
        if self._closing:
            return
        if self._eager is not None and not self._eager.done():
            self._eager_again = True
            return
        self._eager = asyncio.get_running_loop().create_task(self._eager_flush())

    async def _eager_flush(self) -> None:
        await asyncio.sleep(0)  # let this turn's updates join the batch
        while True:
            self._eager_again = False
            try:
                await self.flush_all(audit=False)
            except OSError as exc:
                log.warning("eager flush failed: %s; the periodic flush retries", exc)
                return
            if not self._eager_again:
                return

    async def flush_all(self, *, audit: bool = True) -> None:
        """Write every pending update (and audit record); raise OSError at the
        end if anything failed (the rest is written)."""
        async with self._flush_lock:
            await self._flush_all(audit=audit)

    async def _flush_all(self, *, audit: bool) -> None:
        failure: OSError | None = None
        if self.replicator is not None:
            try:
                await self._flush_replicated()
            except OSError as exc:
                failure = exc
        else:
            for room in list(self.rooms.values()):
                try:
                    await self._flush_room(room)
                except OSError as exc:
                    failure = exc
        if not audit:
            if failure is not None:
                raise failure
            return
        try:
            await self.flush_audit()
        except OSError as exc:
            failure = exc
        if failure is not None:
            raise failure

    async def _flush_replicated(self) -> None:
        """One pipeline for every pending update of every room (each appended
        to its stream and published), then compactions that are due."""
        dirty = [
            (room, doc)
            for room in list(self.rooms.values())
            if room.state is not RoomState.UNLOADED
            for doc in list(room.docs.values())
            if doc.pending
        ]
        if dirty:
            batch = [(room.id, doc.name, doc.pending) for room, doc in dirty]
            for _, doc in dirty:
                doc.pending = []
                doc.pending_bytes = 0
            try:
                await self.store.append_batch(batch)
            except OSError:
                for (_, doc), (_, _, updates) in zip(dirty, batch, strict=True):
                    doc.pending[:0] = updates
                    doc.pending_bytes = sum(len(u) for u in doc.pending)
                raise
            now = self.clock_ms()
            for room, _ in dirty:
                room.last_activity_ms = now
                room.recorded = True
        for room in list(self.rooms.values()):
            for doc in list(room.docs.values()):
                if doc.compact_due:  # a facilitator deleted: forget it now
                    await self._compact_replicated(room, doc, force=True)
                    doc.compact_due = False
                elif doc.seq - doc.snapshot_seq >= self.compact_after_updates:
                    await self._compact_replicated(room, doc)
                doc.purge_memory()
            await self._save_info(room)

    async def _compact_replicated(self, room: Room, doc: Document, *, force: bool = False) -> None:
        """Snapshot and trim a shared log, under a short lock so one node does it.

        The store refuses a snapshot covering less than the stored one, so
        even two nodes compacting at once never trim an update away."""
        replicator = self.replicator
        assert replicator is not None
        if force:
            # A redaction: the snapshot must cover every entry this node wrote,
            # also those whose echo has not come back yet, or the rebuilt
            # stream would keep them (and what they held).
            await replicator.settle(doc)
        seq, position = doc.seq, doc.position
        doc.snapshot_seq = seq  # whoever compacts, this node waits another bound
        locked = await replicator.store.try_lock(room.id, doc.name)
        if not locked and not force:
            return
        try:
            snapshot = doc.engine.full_state()
            await replicator.store.compact(room.id, doc.name, snapshot, position, seq)
            log.info(
                "compacted room=%s doc=%s seq=%d snapshot_bytes=%d",
                room.id,
                doc.name,
                seq,
                len(snapshot),
            )
        finally:
            if locked:
                await replicator.store.unlock(room.id, doc.name)

    async def _flush_room(self, room: Room) -> None:
        for doc in list(room.docs.values()):
            compact = doc.compact_due
            if await self.flush_document(room, doc, force_compact=compact):
                room.last_activity_ms = self.clock_ms()
            if compact:
                doc.compact_due = False
            doc.purge_memory()
        await self._save_info(room)

    async def _save_info(self, room: Room) -> None:
        """Write the room's record, if it has one to keep: a room that was
        only joined (never written to, never created) leaves no record."""
        info = room.info
        if info is None or room.state is RoomState.UNLOADED or not room.recorded:
            return
        activity = max(info.last_activity_ms, room.last_activity_ms)
        changed = room.policy.title != info.title or not room.info_saved
        if not changed and activity - info.last_activity_ms < _ACTIVITY_GRANULARITY_MS:
            return  # only a little newer activity: not worth a write
        current = RoomInfo(
            room.id,
            title=room.policy.title,
            retention_days=info.retention_days,
            created_ms=info.created_ms,
            last_activity_ms=activity,
        )
        await self.store.save_room_info(current)
        room.info = current
        room.info_saved = True

    async def set_retention(self, room: Room, days: float | None) -> None:
        """Change a loaded room's retention period and save it."""
        if room.info is not None:
            info = room.info
            room.info = RoomInfo(
                info.room, info.title, days, info.created_ms, info.last_activity_ms
            )
            room.info_saved = False
            room.recorded = True
            await self._save_info(room)

    async def flush_document(
        self, room: Room, doc: Document, *, force_compact: bool = False
    ) -> bool:
        """Append ``doc``'s pending updates; compact past the log bound (or when
        forced, e.g. after a redaction). Return whether anything was appended.

        On a store error the batch goes back to the front of ``pending`` and
        OSError propagates.
        """
        if self.replicator is not None:
            await self.flush_all(audit=False)
            if force_compact:
                await self._compact_replicated(room, doc, force=True)
            return False
        async with room.flush_lock(doc.name):
            if room.state is RoomState.UNLOADED:
                return False
            appended = False
            if doc.pending:
                batch = doc.pending
                doc.pending = []
                doc.pending_bytes = 0
                try:
                    doc.position = await self.store.append(room.id, doc.name, batch)
                except OSError:
                    doc.pending[:0] = batch
                    doc.pending_bytes = sum(len(u) for u in doc.pending)
                    raise
                doc.log_length += len(batch)
                appended = True
                room.recorded = True
            if doc.log_length >= self.compact_after_updates or (force_compact and doc.log_length):
                snapshot = doc.engine.full_state()
                await self.store.compact(room.id, doc.name, snapshot, doc.position)
                log.info(
                    "compacted room=%s doc=%s log=%d snapshot_bytes=%d",
                    room.id,
                    doc.name,
                    doc.log_length,
                    len(snapshot),
                )
                doc.log_length = 0
            return appended
