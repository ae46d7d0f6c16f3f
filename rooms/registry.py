"""The rooms of one process: loading, membership, persistence, unloading,
deletion and retention.

``join`` loads a room on first use (its ``meta`` document first, so the
room's policy is known before anyone is admitted; one load however many joins
race for it), ``leave`` starts the unload grace period when the room empties,
and a background task writes accepted updates and audit records to the store
in batches, off the hot path. ``close`` flushes everything, within a grace
period. A load that does not finish within ``join_timeout_s`` is answered
``room_unavailable`` (it goes on; a later join finds the room loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from typing import Any

from crdt.engine import EngineFactory
from crdt.types import DocName, RoomId
from rooms.audit import AuditAction
from rooms.blobs import collect_unreferenced
from rooms.chat import ChatLog
from rooms.document import Document
from rooms.errors import RoomUnavailable
from rooms.identity import Identity
from rooms.limits import Limits
from rooms.names import CHAT, META, is_private
from rooms.nodes import Replication, SingleNode
from rooms.outage import StoreHealth
from rooms.persistence import Persistence
from rooms.private_line import PrivateLog, check_private_join
from rooms.room import Room, RoomState
from rooms.store import BlobStore, RoomInfo, Store
from rooms.tasks import stop_if_cancelled

__all__ = ["RoomRegistry"]

log = logging.getLogger("collab.rooms")

_DAY_MS = 86_400_000.0


def _now_ms() -> float:
    return time.time() * 1000.0


def _ignore(doc: Document, data: bytes) -> None:
    return None


def _ignore_room(room: Room) -> None:
    return None


def _ignore_id(room_id: RoomId) -> None:
    return None


def _ignore_event(room: Room, event: str, data: dict[str, Any]) -> None:
    return None


def _ignore_loaded(doc: Document, nbytes: int) -> None:
    return None


def _ignore_stored(doc: Document, updates: int, nbytes: int) -> None:
    return None


class RoomRegistry:
    """Every loaded room of this process. Writing them is its
    :attr:`persistence`'s (rooms.persistence), keeping them in step with
    other nodes its :attr:`replication`'s (rooms.nodes)."""

    def __init__(
        self,
        *,
        store: Store,
        engine_factory: EngineFactory,
        limits: Limits,
        unload_after_s: float = 30.0,
        flush_interval_s: float = 0.5,
        compact_after_updates: int = 500,
        retention_days: float | None = None,
        retention_check_interval_s: float = 3600.0,
        store_delay_window_s: float = 30.0,
        join_timeout_s: float = 10.0,
        clock_ms: Callable[[], float] = _now_ms,
        replication: Replication | None = None,
    ) -> None:
        self.store = store
        self.engine_factory = engine_factory
        self.limits = limits
        self.unload_after_s = unload_after_s
        self.flush_interval_s = flush_interval_s
        self.compact_after_updates = compact_after_updates
        self.retention_days = retention_days
        self.retention_check_interval_s = retention_check_interval_s
        self.store_delay_window_s = store_delay_window_s
        self.join_timeout_s = join_timeout_s
        self.clock_ms = clock_ms
        self.rooms: dict[RoomId, Room] = {}
        self._retention: asyncio.Task[None] | None = None
        self._closing = False
        #: Whether the store takes writes (rooms.outage; protocol.md §11).
        self.health = StoreHealth()
        #: How the rooms stay in step with other nodes sharing the store
        #: (rooms.nodes; one node, nothing shared, by default).
        self.replication = replication if replication is not None else SingleNode(store)
        self.persistence = Persistence(
            store=store,
            replication=self.replication,
            rooms=self.rooms,
            health=self.health,
            clock_ms=clock_ms,
            flush_interval_s=flush_interval_s,
            compact_after_updates=compact_after_updates,
            store_delay_window_s=store_delay_window_s,
            on_saving_change=lambda room: self.on_saving_change(room),
            on_document_stored=lambda doc, n, nbytes: self.on_document_stored(doc, n, nbytes),
        )
        self._unloads = self.persistence.unloads
        # The write side is the persistence's (its docstrings say what each does).
        persistence = self.persistence
        self.audit = persistence.audit
        self.flush_audit = persistence.flush_audit
        self.restore_audit = persistence.restore_audit
        self.flush_all = persistence.flush_all
        self.flush_document = persistence.flush_document
        self.store_acknowledged = persistence.store_acknowledged
        self.schedule_flush = persistence.schedule_flush
        self.set_retention = persistence.set_retention
        self.unsaved_state = persistence.unsaved_state
        # What the server does when another node changed something (set by it).
        self.on_remote_update: Callable[[Document, bytes], None] = _ignore
        self.on_remote_awareness: Callable[[Document, bytes], None] = _ignore
        self.on_policy_change: Callable[[Room], None] = _ignore_room
        self.on_remote_delete: Callable[[RoomId], None] = _ignore_id
        #: Another node sent an event to the room's connections (a reaction).
        self.on_remote_event: Callable[[Room, str, dict[str, Any]], None] = _ignore_event
        #: A room's saving state changed (protocol.md §11): tell its members.
        self.on_saving_change: Callable[[Room], None] = _ignore_room
        #: A document was loaded (its stored bytes), or the store took a batch
        #: of its updates (how many, their bytes): for extensions' hooks.
        self.on_document_loaded: Callable[[Document, int], None] = _ignore_loaded
        self.on_document_stored: Callable[[Document, int, int], None] = _ignore_stored
        #: A room was deleted by retention (protocol.md §10.4).
        self.on_room_purged: Callable[[RoomId], None] = _ignore_id

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the background flusher and retention tasks (needs a running loop)."""
        self.persistence.start()
        if self._retention is None and self.retention_check_interval_s > 0:
            self._retention = asyncio.get_running_loop().create_task(self._retention_loop())

    async def close(self, *, grace_s: float = 10.0) -> bool:
        """Refuse joins, stop the background work and write everything within
        ``grace_s``: whether the store took it all (rooms.persistence; if
        not, :meth:`unsaved_state` is what it lacks)."""
        self._closing = True
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
            self._retention = None
        return await self.persistence.close(grace_s=grace_s)

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` has begun (joins are refused from then on)."""
        return self._closing

    # -- membership -------------------------------------------------------------

    async def join(
        self, room_id: RoomId, doc_name: DocName, member: Hashable, identity: Identity
    ) -> Document:
        """Attach ``member`` to a room's document, loading it if needed.

        Raises Removed if a facilitator removed ``identity`` from the room,
        RoomUnavailable if the store cannot load it or the registry is closing;
        nothing is attached then.
        """
        with self._pinned(room_id) as room:
            await self._document(room, META)
            room.policy.check_join(identity)
            if is_private(doc_name):  # before it is loaded: a refusal loads nothing
                check_private_join(room.policy, room_id, doc_name, identity)
            doc = await self._document(room, doc_name)
            room.policy.check_join(identity)  # a removal may have landed meanwhile
            if is_private(doc_name):
                check_private_join(room.policy, room_id, doc_name, identity)
            doc.attach(member)
            room.last_activity_ms = self.clock_ms()
            return doc

    async def document(self, room_id: RoomId, doc_name: DocName) -> Document:
        """A room's document without attaching anyone (for server writes such
        as chat sent from another document's namespace)."""
        with self._pinned(room_id) as room:
            await self._document(room, META)
            return await self._document(room, doc_name)

    @contextlib.asynccontextmanager
    async def use(self, room_id: RoomId) -> AsyncIterator[Room]:
        """The room, loaded (meta first) and kept loaded while the block runs."""
        with self._pinned(room_id) as room:
            await self._document(room, META)
            yield room

    def leave(self, doc: Document, member: Hashable) -> bytes | None:
        """Detach ``member``; return the awareness update removing its clients.

        Starts the unload grace period if the room is now empty.
        """
        removal = doc.detach(member)
        room = self.rooms.get(doc.room_id)
        if room is not None and room.docs.get(doc.name) is doc:
            room.last_activity_ms = self.clock_ms()
            self._release_subscriptions(room)
            if not room.in_use:
                self._schedule_unload(room)
        return removal

    # -- subscriptions (replicated stores) -------------------------------------------

    def _wants_subscription(self, room: Room, doc: Document) -> bool:
        """A node follows a document's channel only while it has local members
        of it; the room's meta and chat while it has local members in the room
        (policy and chat are used from every namespace)."""
        if doc.members:
            return True
        return doc.name in (META, CHAT) and room.member_count > 0

    def _release_subscriptions(self, room: Room) -> None:
        for doc in list(room.docs.values()):
            if doc.subscribed and not self._wants_subscription(room, doc):
                self.replication.detach(doc)

    async def _resubscribe(self, room: Room, doc: Document) -> None:
        """Follow a loaded document again: subscribe, then catch up from the
        store (what this replica missed while unsubscribed). One at a time."""
        task = room.refreshing.get(doc.name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self.replication.refresh(doc))
            room.refreshing[doc.name] = task
            task.add_done_callback(lambda _: room.refreshing.pop(doc.name, None))
        await asyncio.shield(task)

    def chat(self, room_id: RoomId) -> ChatLog:
        """The room's chat (its chat document must be loaded: see :meth:`document`)."""
        room = self.rooms[room_id]
        if room.chat is None:
            room.chat = ChatLog(room.docs[CHAT], limits=self.limits, clock_ms=self.clock_ms)
        return room.chat

    def private_log(self, room_id: RoomId, doc_name: DocName) -> PrivateLog:
        """A private thread's log (its document must be loaded: :meth:`document`)."""
        room = self.rooms[room_id]
        thread = room.private_logs.get(doc_name)
        if thread is None:
            thread = room.private_logs[doc_name] = PrivateLog(
                room.docs[doc_name], limits=self.limits, clock_ms=self.clock_ms
            )
        return thread

    @contextlib.contextmanager
    def _pinned(self, room_id: RoomId) -> Iterator[Room]:
        if self._closing:
            raise RoomUnavailable("the server is shutting down")
        room = self.rooms.get(room_id)
        if room is None or room.state is RoomState.UNLOADING:
            room = self._fresh_room(room_id, room)
        room.cancel_unload()
        if room.state is RoomState.IDLE:
            room.transition(RoomState.ACTIVE)
        room.pins += 1
        try:
            yield room
        finally:
            room.pins -= 1
            if room.pins == 0:
                self._release_subscriptions(room)
            if not room.in_use:
                self._schedule_unload(room)

    def _fresh_room(self, room_id: RoomId, unloading: Room | None) -> Room:
        """A new Room for ``room_id``. If the old one is still unloading, the new
        one's document loads wait for the old flush (see :meth:`_load`)."""
        room = Room(room_id)
        room.predecessor = unloading
        self.rooms[room_id] = room
        return room

    async def _document(self, room: Room, doc_name: DocName) -> Document:
        doc = room.docs.get(doc_name)
        if doc is not None:
            if not doc.subscribed:
                await self._resubscribe(room, doc)
            return doc
        pending = room.loading.get(doc_name)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self._load(room, doc_name))
            room.loading[doc_name] = pending

            def loaded(task: asyncio.Future[Document]) -> None:
                if room.loading.get(doc_name) is task:
                    del room.loading[doc_name]
                if not task.cancelled():
                    task.exception()  # seen: whoever awaited it got it, or nobody is left

            pending.add_done_callback(loaded)
        try:
            # The load goes on past the timeout: a later join finds it done.
            async with asyncio.timeout(self.join_timeout_s):
                return await asyncio.shield(pending)
        except TimeoutError:
            log.warning(
                "room load slower than %g s room=%s doc=%s: join refused",
                self.join_timeout_s,
                room.id,
                doc_name,
            )
            raise RoomUnavailable("the room could not be loaded in time; try again") from None

    async def _load(self, room: Room, doc_name: DocName) -> Document:
        predecessor = room.predecessor
        if predecessor is not None:
            await predecessor.unloaded.wait()
            room.predecessor = None
        try:
            await self.replication.before_load(room.id, doc_name)
            stored = await self.store.load(room.id, doc_name)
            info = await self.store.load_room_info(room.id) if doc_name == META else None
        except OSError as exc:
            log.error("store load failed room=%s doc=%s: %s", room.id, doc_name, exc)
            self.replication.load_failed(room.id, doc_name)
            raise RoomUnavailable("the room could not be loaded; try again") from None
        doc = Document(
            room.id,
            doc_name,
            self.engine_factory(),
            self.limits,
            room.policy,
            clock=self.health.clock,
        )
        doc.restore(stored)
        self.replication.loaded(doc, stored, self.persistence.schedule_flush)
        if doc_name == META:
            room.policy.load(doc.engine)
            now = self.clock_ms()
            room.info = info or RoomInfo(room.id, created_ms=now, last_activity_ms=now)
            room.recorded = room.recorded or info is not None or stored.log_length > 0
            room.last_activity_ms = max(room.info.last_activity_ms, now)
        room.docs[doc_name] = doc
        stored_bytes = len(stored.snapshot or b"") + sum(len(u) for u in stored.updates)
        log.info(
            "document loaded room=%s doc=%s log=%d snapshot_bytes=%d",
            room.id,
            doc_name,
            stored.log_length,
            len(stored.snapshot or b""),
        )
        self.on_document_loaded(doc, stored_bytes)
        return doc

    # -- unloading -------------------------------------------------------------

    def _schedule_unload(self, room: Room, delay_s: float | None = None) -> None:
        if self._closing or room.state in (RoomState.UNLOADING, RoomState.UNLOADED):
            return
        if room.state is RoomState.ACTIVE:
            room.transition(RoomState.IDLE)
        room.cancel_unload()
        loop = asyncio.get_running_loop()
        delay_s = self.unload_after_s if delay_s is None else delay_s
        room.unload_timer = loop.call_later(delay_s, self._start_unload, room)

    def _start_unload(self, room: Room) -> None:
        room.unload_timer = None
        if room.in_use or room.state is not RoomState.IDLE:
            return
        if room.loading or (not self.health.ok and room.unsaved_since is not None):
            # A load still running (a join that timed out), or changes the
            # store cannot take now: keep the room, try again later.
            self._schedule_unload(room, max(self.unload_after_s, self.flush_interval_s))
            return
        room.transition(RoomState.UNLOADING)
        task = asyncio.get_running_loop().create_task(self._unload(room))
        self._unloads[task] = room
        task.add_done_callback(self._unload_done)

    def _unload_done(self, task: asyncio.Task[None]) -> None:
        # A cancelled unload (a stop) still holds its room's changes: kept,
        # for RoomPersistence.unsaved_state.
        if not task.cancelled():
            self._unloads.pop(task, None)

    async def _unload(self, room: Room) -> None:
        try:
            await self.persistence.flush_rooms([room], compact=True)
        except OSError as exc:
            # Keep the room (and its unsaved updates) in memory; retry later.
            log.error("unload flush failed room=%s: %s; retrying", room.id, exc)
            if self.rooms.get(room.id) is room:
                room.transition(RoomState.IDLE)
                if not room.in_use:
                    self._schedule_unload(room)
                return
            # A newer room replaced this one and waits on us: hand over the
            # unsaved updates by flushing again until the store answers.
            while True:
                await asyncio.sleep(self.flush_interval_s)
                try:
                    await self.persistence.flush_rooms([room], compact=True)
                    break
                except OSError:
                    stop_if_cancelled()
                    continue
        if self.rooms.get(room.id) is room:  # not replaced: no upload of a new copy under way
            await self._collect_images(room)
        self._drop(room)
        log.info("room unloaded room=%s", room.id)

    async def _collect_images(self, room: Room) -> None:
        """Delete the room's images no shape names (rooms.blobs), best effort:
        on one node only, and a failure is logged (the room goes anyway)."""
        store = self.store
        if self.replication.shared or not isinstance(store, BlobStore):
            return
        try:
            removed = await collect_unreferenced(store, room, now_ms=self.clock_ms())
        except OSError as exc:
            log.warning("image collection failed room=%s: %s", room.id, exc)
            return
        if removed is None:
            log.info("image collection skipped room=%s: a stored board is not loaded", room.id)
        elif removed:
            log.info("images collected room=%s removed=%d", room.id, removed)

    def _drop(self, room: Room) -> None:
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            self.replication.forget(room.id, list(room.docs))
        room.docs.clear()
        room.chat = None
        room.private_logs.clear()
        room.transition(RoomState.UNLOADED)

    # -- deletion and retention -----------------------------------------------------

    async def delete_room(self, room_id: RoomId) -> None:
        """Purge a room everywhere: memory (unsaved updates discarded) and store.

        The caller closes the room's connections first. Joins that race with
        the deletion wait for it and find an empty room. With Redis, the store
        leaves a tombstone, so a node that misses the delete envelope still
        finds out (and never writes the room back): rooms.replication.
        """
        room = self.rooms.get(room_id)
        if room is not None:
            if room.state is RoomState.UNLOADING:
                await room.unloaded.wait()
            else:
                room.cancel_unload()
                room.transition(RoomState.UNLOADING)
                room.deleted = True
                for doc in room.docs.values():
                    doc.pending.clear()
                    doc.pending_bytes = 0
                    doc.unsaved_since = None
                for lock in list(room.flush_locks.values()):
                    async with lock:  # let a flush in flight finish before deleting
                        pass
        try:
            await self.store.delete_room(room_id)
        finally:
            if room is not None and room.state is RoomState.UNLOADING:
                self._drop(room)
        self.replication.publish_delete(room_id)

    def drop_deleted(self, room_id: RoomId) -> None:
        """Forget a room another node deleted: no flush, its updates are gone."""
        room = self.rooms.get(room_id)
        if room is None or room.state in (RoomState.UNLOADING, RoomState.UNLOADED):
            return
        room.cancel_unload()
        room.transition(RoomState.UNLOADING)
        room.deleted = True
        for doc in room.docs.values():
            doc.pending.clear()
            doc.unsaved_since = None
        self._drop(room)

    async def settle(self, doc: Document) -> None:
        """Bring a replicated document up to date with the shared log before a
        server write (no-op on a single node)."""
        await self.replication.settle(doc)

    def reseeding(self, doc: Document) -> bool:
        """Whether ``doc`` must be written whole before a new server write
        (Redis lost what this replica holds: rooms.redis_flush)."""
        return self.replication.reseeding(doc)

    def publish_awareness(self, doc: Document, data: bytes) -> None:
        """Tell the other nodes (if any) about a local awareness change."""
        self.replication.publish_awareness(doc, data)

    def publish_event(self, room_id: RoomId, event: str, data: dict[str, Any]) -> None:
        """Tell the other nodes (if any) to send ``event`` to their
        connections of the room (session activities: nothing is stored)."""
        self.replication.publish_event(room_id, event, data)

    async def purge_expired(self) -> list[RoomId]:
        """Delete rooms whose last activity is older than their retention; return them."""
        now = self.clock_ms()
        purged = []
        for info in await self.store.list_room_infos():
            days = info.retention_days if info.retention_days is not None else self.retention_days
            if days is None:
                continue
            room = self.rooms.get(info.room)
            last = info.last_activity_ms
            if room is not None:
                if room.in_use:
                    continue
                last = max(last, room.last_activity_ms)
            if last + days * _DAY_MS > now:
                continue
            await self.delete_room(info.room)
            self.audit(AuditAction.PURGE, room=info.room, detail=f"retention_days={days:g}")
            log.info("room purged by retention room=%s days=%g", info.room, days)
            self.on_room_purged(info.room)
            purged.append(info.room)
        return purged

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(self.retention_check_interval_s)
            try:
                await self.purge_expired()
            except OSError as exc:
                stop_if_cancelled()
                log.error("retention check failed: %s; will retry", exc)

    # -- introspection -------------------------------------------------------------

    @property
    def document_count(self) -> int:
        return sum(len(room.docs) for room in self.rooms.values())

    @property
    def oldest_unsaved_s(self) -> float:
        """Age in seconds of the oldest change the store does not have (0: none)."""
        return self.persistence.oldest_unsaved_s

    @property
    def unsaved_updates(self) -> int:
        """Updates held in memory that the store does not have yet."""
        return self.persistence.unsaved_updates
