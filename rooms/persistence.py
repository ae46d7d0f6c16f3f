"""Writing a registry's rooms to its store: batched off the hot path (or
right after the event-loop turn when the store is shared by nodes), with
compaction past a bound, the rooms' records and the audit log.

:class:`Persistence` is composed into :class:`rooms.registry.RoomRegistry`
and given what it uses: the store, the replication strategy (rooms.nodes:
it appends; this object marks what was stored, compacts and writes the
records), the registry's rooms and the store's health. One write path
(:meth:`Persistence.flush_rooms`) and one compaction path, whichever store.

Outages (protocol.md §11). Every write's outcome goes to the registry's
:class:`rooms.outage.StoreHealth`. After each flush round every room's saving
state follows (:func:`rooms.outage.next_saving`; ``on_saving_change`` tells
the server, which tells the room): edits stay in memory while the store
fails, for ``store_delay_window_s``, then the room is read-only until the
store has everything. A round stops at the first failed write (the store is
down: trying each room would only queue more waits behind a lock). Before
each round the store checks its files (``check_writable``),
and while writes fail it probes with a small write (also after a batch went
in: it may have needed only part of the store), so the end of an outage is
noticed, and only then. :meth:`Persistence.unsaved_state` is
what a stop could not store (rooms.recovery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence

from crdt.types import RoomId, UserId
from rooms.audit import AuditAction, AuditRecord
from rooms.document import Document
from rooms.identity import Identity
from rooms.nodes import Replication
from rooms.outage import StoreHealth, next_saving
from rooms.recovery import Recovery
from rooms.room import Room, RoomState, SavingState
from rooms.store import RoomInfo, Store
from rooms.tasks import stop_if_cancelled

__all__ = ["Persistence"]

log = logging.getLogger("collab.rooms")

#: Changes of a room's last activity smaller than this are not written back.
_ACTIVITY_GRANULARITY_MS = 10_000.0


class Persistence:
    """Flushing, compaction, room records and the audit log of a registry's
    rooms. Every write goes through :meth:`flush_rooms` (the replication
    strategy appends, this object compacts and writes the records), every
    compaction through :meth:`_compact`."""

    def __init__(
        self,
        *,
        store: Store,
        replication: Replication,
        rooms: dict[RoomId, Room],
        health: StoreHealth,
        clock_ms: Callable[[], float],
        flush_interval_s: float,
        compact_after_updates: int,
        store_delay_window_s: float,
        on_saving_change: Callable[[Room], None],
        on_document_stored: Callable[[Document, int, int], None],
    ) -> None:
        self.store = store
        self.replication = replication
        #: The registry's loaded rooms (the same dict: read, never changed here).
        self.rooms = rooms
        #: Rooms being unloaded, by their unload task (the registry adds them;
        #: not in ``rooms`` once replaced, but their changes are still held).
        self.unloads: dict[asyncio.Task[None], Room] = {}
        self.health = health
        self.clock_ms = clock_ms
        self.flush_interval_s = flush_interval_s
        self.compact_after_updates = compact_after_updates
        self.store_delay_window_s = store_delay_window_s
        self.on_saving_change = on_saving_change
        self.on_document_stored = on_document_stored
        self._audit: list[AuditRecord] = []
        self._flush_lock = asyncio.Lock()
        self._eager: asyncio.Task[None] | None = None
        self._eager_again = False
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        #: Rooms whose saving state is not OK (the only ones a good round changes).
        self._unsaved_rooms: set[Room] = set()

    def start(self) -> None:
        """Start the periodic flush (needs a running loop)."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

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
        except BaseException as exc:
            self._audit[:0] = batch
            if isinstance(exc, OSError):
                self.health.failed(exc, delayed=True)
            raise

    def restore_audit(self, records: Sequence[AuditRecord]) -> None:
        """Queue records made by an earlier run (a recovery file), as they were."""
        self._audit[:0] = records

    # -- persistence -------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush_all()
            except OSError:
                # Logged by self.health: once when writes start failing, then
                # once a minute, not at every retry.
                stop_if_cancelled()

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
            except OSError:
                return  # logged by self.health; the periodic flush retries
            if not self._eager_again:
                return

    async def flush_all(self, *, audit: bool = True) -> None:
        """Write every pending update (and audit record) of every loaded room;
        raise OSError at the end if anything failed (the rest is written)."""
        async with self._flush_lock:
            failure: OSError | None = None
            try:
                await self._check_store()
                # Only the rooms with something to do: thousands of idle rooms
                # (1:1 sessions) cost a few checks each, not a round each.
                due = [r for r in list(self.rooms.values()) if self._flush_due(r)]
                await self._flush_rooms(due)
                if audit:
                    await self.flush_audit()
            except OSError as exc:
                failure = exc
            self._update_saving(failed=failure is not None)
            if failure is not None:
                raise failure

    def _flush_due(self, room: Room) -> bool:
        """Whether a flush round has anything to do for a loaded ``room``
        (what :meth:`_flush_rooms` would write, mark, compact or purge, or
        a record :meth:`_save_info` would save)."""
        if room.state is RoomState.UNLOADED:
            return False
        for doc in room.docs.values():
            if (
                doc.pending
                or doc.unsaved_since is not None
                or doc.compact_due
                or doc.log_length >= self.compact_after_updates
                or doc.checkpoint_stale
                or self.replication.reseeding(doc)
            ):
                return True
        return self._info_due(room)

    async def flush_rooms(self, rooms: Sequence[Room], *, compact: bool = False) -> None:
        """Write ``rooms``' pending updates, then the compactions that are due
        (with ``compact``, of every document with a log: a room unloading
        leaves one snapshot, and behind Redis, PostgreSQL has all of it) and
        the rooms' records. OSError if the store failed (what was not written
        stays pending)."""
        async with self._flush_lock:
            await self._flush_rooms(rooms, compact=compact)

    async def flush_document(
        self, room: Room, doc: Document, *, force_compact: bool = False
    ) -> None:
        """Write ``doc``'s room now (a server write waits for it: chat is
        stored before it is acknowledged); with ``force_compact`` also compact
        ``doc`` (a redaction: the snapshot replaces the log that held it)."""
        if force_compact:
            doc.compact_due = True
        await self.flush_rooms([room])

    async def store_acknowledged(self, room: Room) -> bool:
        """Write ``room``'s changes before one of them is acknowledged
        (protocol.md §11.1: a facilitator's moderation, a raised hand):
        True once the store has them. Not tried while the room's saving is
        not ok: moderation goes on without waiting for a failing store
        (§11.2), its ack's ``saving`` says the change is kept, and a flush
        writes it once the store is back. A failure here makes the room
        ``delayed`` at once, so the ack says that too."""
        if room.saving is not SavingState.OK:
            return False
        try:
            await self.flush_rooms([room])
        except OSError as exc:
            log.warning("acknowledged change kept, not stored yet room=%s: %s", room.id, exc)
            if self.rooms.get(room.id) is room:
                self._move_saving(room, failed=True, now=self.health.clock())
            return False
        return True

    async def _flush_rooms(self, rooms: Sequence[Room], *, compact: bool = False) -> None:
        """The one write path: the strategy appends (rooms.nodes), then each
        written document is marked stored, its room's activity noted, due
        compactions run and records are saved. Called under the flush lock."""
        batches = {
            doc: (len(doc.pending), doc.pending_bytes)
            for room in rooms
            for doc in room.docs.values()
            if doc.pending
        }
        failure: OSError | None = None
        written: list[Room] = []
        try:
            written = await self.replication.write(rooms)
        except OSError as exc:
            self.health.failed(exc, delayed=bool(batches))
            failure = exc
        # A document with nothing pending now is stored (its batch went in,
        # or it had none and a compaction or a record failed after it).
        for room in rooms:
            for doc in room.docs.values():
                if doc.unsaved_since is not None and (failure is None or not doc.pending):
                    doc.stored()
                    if doc in batches:
                        self.on_document_stored(doc, *batches[doc])
        now = self.clock_ms()
        for room in written:
            room.last_activity_ms = now
            room.recorded = True
        if failure is not None:
            raise failure
        if batches:
            await self._confirm_writable()
        for room in rooms:
            for doc in list(room.docs.values()):
                if doc.compact_due:  # a facilitator deleted: forget it now
                    doc.compact_due = not await self._compact(room, doc, force=True)
                elif doc.log_length >= self.compact_after_updates or (compact and doc.log_length):
                    await self._compact(room, doc)
                doc.purge_memory()
            await self._save_info(room)

    async def _compact(self, room: Room, doc: Document, *, force: bool = False) -> bool:
        """The one compaction path: snapshot the document and drop the log it
        covers. False if it was not tried: the document waits for its re-seed
        (a forced compaction then stays due: ``compact_due``), or its room was
        deleted meanwhile. Without ``force``, a node that does not get the
        compaction lock leaves it to the one that has it.

        The store refuses a snapshot covering less than the stored one, so
        even two nodes compacting at once never trim an update away."""
        if force and not self.replication.reseeding(doc):
            # A redaction: the snapshot must cover every entry this node wrote,
            # also those whose echo has not come back yet, or the rebuilt log
            # would keep them (and what they held).
            await self.replication.settle(doc)
        if self.replication.reseeding(doc):
            return False  # what the store lost of this replica goes in first
        async with room.flush_lock(doc.name):
            if room.deleted:
                return False
            seq, position, length = doc.seq, doc.position, doc.log_length
            doc.log_length = 0  # whoever compacts, this node waits another bound
            try:
                async with self.replication.compaction_lock(room.id, doc.name) as locked:
                    if not locked and not force:
                        return True
                    snapshot = doc.engine.full_state()
                    await self.store.compact(room.id, doc.name, snapshot, position, seq)
            except BaseException as exc:
                doc.log_length += length
                if isinstance(exc, OSError):
                    self.health.failed(exc)
                raise
        log.info(
            "compacted room=%s doc=%s log=%d snapshot_bytes=%d",
            room.id,
            doc.name,
            length,
            len(snapshot),
        )
        return True

    async def _check_store(self) -> None:
        """OSError if the store says it cannot take writes (its files are
        gone). While writes fail with nothing to write, a probe instead
        (:meth:`_confirm_writable`), so the end of an outage is noticed."""
        try:
            await self.store.check_writable()
        except OSError as exc:
            self.health.failed(exc)
            raise
        if not self.health.ok and not any(
            doc.pending for room in self.rooms.values() for doc in room.docs.values()
        ):
            await self._confirm_writable()

    async def _confirm_writable(self) -> None:
        """While writes fail, the store is writable again only once a probe
        write goes through to all of it: a write that did go in may have
        needed only part of it (behind Redis, PostgreSQL can be down while
        edits go on), and /healthz must not flap between rounds. A failed
        probe keeps the health failing, not the round."""
        if self.health.ok:
            return
        try:
            await self.store.check_writable(probe=True)
        except OSError as exc:
            self.health.failed(exc)
            return
        self.health.succeeded()

    def _update_saving(self, *, failed: bool) -> None:
        """Move each room's saving state after a flush round, and tell it."""
        if not failed and not self._unsaved_rooms:
            return  # the common case: every room saved, and it still is
        now = self.health.clock()
        # After a good round only a room that is not OK can change (to OK).
        rooms = self.rooms.values() if failed else self._unsaved_rooms
        for room in list(rooms):
            if self.rooms.get(room.id) is not room:
                self._unsaved_rooms.discard(room)  # unloaded or replaced since
                continue
            self._move_saving(room, failed=failed, now=now)

    def _move_saving(self, room: Room, *, failed: bool, now: float) -> None:
        """Move ``room``'s saving state after a write of it failed
        (``failed``) or not, and tell it."""
        new = next_saving(room, failed=failed, now=now, window_s=self.store_delay_window_s)
        if new is None:
            return
        room.set_saving(new, now)
        if new is SavingState.OK:
            self._unsaved_rooms.discard(room)
        else:
            self._unsaved_rooms.add(room)
        if new is SavingState.DELAYED:
            log.warning("saving delayed room=%s: changes kept in memory", room.id)
        elif new is SavingState.READ_ONLY:
            log.error(
                "room read-only room=%s: the store has not taken its changes for %g s",
                room.id,
                self.store_delay_window_s,
            )
        else:
            log.warning("saving resumed room=%s: the store has every change", room.id)
        self.on_saving_change(room)

    # -- what a stop could not store ------------------------------------------------

    async def close(self, *, grace_s: float = 10.0) -> bool:
        """Stop the background work and write everything: return whether the
        store took it all within ``grace_s``. If not, :meth:`unsaved_state`
        is what it lacks (for a recovery file).

        A flush in flight finishes first (it holds a batch); unloads in
        flight get until the deadline, then are cancelled (their rooms' changes
        stay in memory); the final flush is retried until the store takes it
        or the deadline passes (an attempt still running then is left to
        finish). Rooms stay in memory (members may still be attached); the
        store is left open for the caller to close.
        """
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s

        def remaining() -> float:
            return max(0.0, deadline - loop.time())

        with contextlib.suppress(TimeoutError):
            # The flush loop is cancelled between rounds, never mid-write.
            async with asyncio.timeout(remaining()):
                await self._flush_lock.acquire()
        try:
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
                self._flusher = None
        finally:
            if self._flush_lock.locked():
                self._flush_lock.release()
        if self.unloads:
            _, late = await asyncio.wait(set(self.unloads), timeout=remaining())
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for room in list(self.rooms.values()):
            room.cancel_unload()
        while True:
            attempt = loop.create_task(self.flush_all())
            done, _ = await asyncio.wait({attempt}, timeout=remaining())
            if attempt in done and not attempt.cancelled() and attempt.exception() is None:
                await self._leave_snapshots(remaining())
                return True
            if remaining() <= 0:
                if attempt in done and not attempt.cancelled():
                    attempt.exception()  # retrieved: it is reported by the caller
                else:
                    attempt.add_done_callback(_seen)
                return False
            await asyncio.sleep(min(self.flush_interval_s, remaining()))

    async def _leave_snapshots(self, timeout_s: float) -> None:
        """Everything is stored: compact what has a log, as an unload does
        (behind Redis, PostgreSQL then has all of it), within ``timeout_s``.
        Best effort: the log already holds it all, so a failure is logged,
        not reported as unsaved."""
        try:
            async with asyncio.timeout(timeout_s), self._flush_lock:
                for room in list(self._held_rooms()):
                    for doc in list(room.docs.values()):
                        if doc.log_length and not room.deleted:
                            await self._compact(room, doc)
        except (OSError, TimeoutError) as exc:
            log.warning("stop: documents left uncompacted (their log has everything): %s", exc)

    def _held_rooms(self) -> Iterator[Room]:
        """Every room whose documents this process holds: loaded, or being
        unloaded (a replaced room keeps its changes until its flush)."""
        seen: set[int] = set()
        for room in [*self.rooms.values(), *self.unloads.values()]:
            if id(room) not in seen and room.state is not RoomState.UNLOADED:
                seen.add(id(room))
                yield room

    @property
    def oldest_unsaved_s(self) -> float:
        """Age in seconds of the oldest change the store does not have (0: none)."""
        times = [t for room in self._held_rooms() if (t := room.unsaved_since) is not None]
        return self.health.clock() - min(times) if times else 0.0

    @property
    def unsaved_updates(self) -> int:
        """Updates held in memory that the store does not have yet."""
        return sum(len(d.pending) for room in self._held_rooms() for d in room.docs.values())

    def unsaved_state(self, node: str) -> Recovery | None:
        """What the store does not have, for a recovery file (None: nothing)."""
        return Recovery.collect(node, self._held_rooms(), self._audit, everything=self.health.lost)

    async def _save_info(self, room: Room) -> None:
        """Write the room's record, if it has one to keep: a room that was
        only joined (never written to, never created) leaves no record."""
        info = room.info
        if info is None or not self._info_due(room):
            return
        activity = max(info.last_activity_ms, room.last_activity_ms)
        current = RoomInfo(
            room.id,
            title=room.policy.title,
            retention_days=info.retention_days,
            created_ms=info.created_ms,
            last_activity_ms=activity,
        )
        try:
            await self.store.save_room_info(current)
        except OSError as exc:
            self.health.failed(exc)
            raise
        room.info = current
        room.info_saved = True

    def _info_due(self, room: Room) -> bool:
        """Whether the room's record is to be saved: it has one to keep, and
        its title changed, it was never saved, or its activity moved on by
        more than a little (not worth a write)."""
        info = room.info
        if info is None or room.deleted or room.state is RoomState.UNLOADED or not room.recorded:
            return False
        if room.policy.title != info.title or not room.info_saved:
            return True
        return room.last_activity_ms - info.last_activity_ms >= _ACTIVITY_GRANULARITY_MS

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


def _seen(task: asyncio.Task[None]) -> None:
    """Mark an abandoned write's outcome as seen (the stop reports it)."""
    if not task.cancelled():
        task.exception()
