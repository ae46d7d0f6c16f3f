"""The rooms of one process: loading, membership, persistence and unloading.

``join`` loads a room's document on first use (one load however many joins
race for it), ``leave`` starts the unload grace period when the room empties,
and a background task writes accepted updates to the store in batches,
off the hot path. ``close`` flushes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable, Iterator

from crdt.engine import EngineFactory
from crdt.errors import RoomUnavailable
from crdt.types import DocName, RoomId
from rooms.chat import ChatLog
from rooms.document import Document
from rooms.limits import Limits
from rooms.names import CHAT
from rooms.room import Room, RoomState
from rooms.store import Store

__all__ = ["RoomRegistry"]

log = logging.getLogger("collab.rooms")


def _now_ms() -> float:
    return time.time() * 1000.0


class RoomRegistry:
    """Every loaded room of this process."""

    def __init__(
        self,
        *,
        store: Store,
        engine_factory: EngineFactory,
        limits: Limits,
        unload_after_s: float = 30.0,
        flush_interval_s: float = 0.5,
        compact_after_updates: int = 500,
        clock_ms: Callable[[], float] = _now_ms,
    ) -> None:
        self.store = store
        self.engine_factory = engine_factory
        self.limits = limits
        self.unload_after_s = unload_after_s
        self.flush_interval_s = flush_interval_s
        self.compact_after_updates = compact_after_updates
        self.clock_ms = clock_ms
        self.rooms: dict[RoomId, Room] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._unloads: set[asyncio.Task[None]] = set()
        self._closing = False

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the background flusher (needs a running event loop)."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def close(self) -> None:
        """Stop unload timers and the flusher, then flush every room.

        Rooms stay in memory (members may still be attached); the store is
        left open for the caller to close.
        """
        self._closing = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        if self._unloads:
            await asyncio.gather(*self._unloads, return_exceptions=True)
        for room in list(self.rooms.values()):
            room.cancel_unload()
        await self.flush_all()

    # -- membership -------------------------------------------------------------

    async def join(self, room_id: RoomId, doc_name: DocName, member: Hashable) -> Document:
        """Attach ``member`` to a room's document, loading it if needed.

        Raises RoomUnavailable if the store cannot load it or the registry is
        closing; nothing is attached then.
        """
        with self._pinned(room_id) as room:
            doc = await self._document(room, doc_name)
            doc.attach(member)
            return doc

    async def document(self, room_id: RoomId, doc_name: DocName) -> Document:
        """A room's document without attaching anyone (for server writes such
        as chat sent from another document's namespace)."""
        with self._pinned(room_id) as room:
            return await self._document(room, doc_name)

    def leave(self, doc: Document, member: Hashable) -> bytes | None:
        """Detach ``member``; return the awareness update removing its clients.

        Starts the unload grace period if the room is now empty.
        """
        removal = doc.detach(member)
        room = self.rooms.get(doc.room_id)
        if room is not None and not room.in_use:
            self._schedule_unload(room)
        return removal

    def chat(self, room_id: RoomId) -> ChatLog:
        """The room's chat (its chat document must be loaded: see :meth:`document`)."""
        room = self.rooms[room_id]
        if room.chat is None:
            room.chat = ChatLog(room.docs[CHAT], limits=self.limits, clock_ms=self.clock_ms)
        return room.chat

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
            return doc
        pending = room.loading.get(doc_name)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self._load(room, doc_name))
            room.loading[doc_name] = pending
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done():
                room.loading.pop(doc_name, None)

    async def _load(self, room: Room, doc_name: DocName) -> Document:
        predecessor = room.predecessor
        if predecessor is not None:
            await predecessor.unloaded.wait()
            room.predecessor = None
        try:
            stored = await self.store.load(room.id, doc_name)
        except OSError as exc:
            log.error("store load failed room=%s doc=%s: %s", room.id, doc_name, exc)
            raise RoomUnavailable("the room could not be loaded; try again") from None
        doc = Document(room.id, doc_name, self.engine_factory(), self.limits)
        doc.restore(stored)
        room.docs[doc_name] = doc
        log.info(
            "document loaded room=%s doc=%s log=%d snapshot_bytes=%d",
            room.id,
            doc_name,
            stored.log_length,
            len(stored.snapshot or b""),
        )
        return doc

    # -- unloading -------------------------------------------------------------

    def _schedule_unload(self, room: Room) -> None:
        if self._closing or room.state in (RoomState.UNLOADING, RoomState.UNLOADED):
            return
        if room.state is RoomState.ACTIVE:
            room.transition(RoomState.IDLE)
        room.cancel_unload()
        loop = asyncio.get_running_loop()
        room.unload_timer = loop.call_later(self.unload_after_s, self._start_unload, room)

    def _start_unload(self, room: Room) -> None:
        room.unload_timer = None
        if room.in_use or room.state is not RoomState.IDLE:
            return
        room.transition(RoomState.UNLOADING)
        task = asyncio.get_running_loop().create_task(self._unload(room))
        self._unloads.add(task)
        task.add_done_callback(self._unloads.discard)

    async def _unload(self, room: Room) -> None:
        try:
            await self._flush_room(room)
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
                    await self._flush_room(room)
                    break
                except OSError:
                    continue
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]
        room.docs.clear()
        room.chat = None
        room.transition(RoomState.UNLOADED)
        log.info("room unloaded room=%s", room.id)

    # -- persistence -------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush_all()
            except OSError as exc:
                log.error("flush failed: %s; will retry", exc)

    async def flush_all(self) -> None:
        """Write every pending update of every room; raise OSError at the end
        if any room failed (the others are written)."""
        failure: OSError | None = None
        for room in list(self.rooms.values()):
            try:
                await self._flush_room(room)
            except OSError as exc:
                failure = exc
        if failure is not None:
            raise failure

    async def _flush_room(self, room: Room) -> None:
        for doc in list(room.docs.values()):
            await self.flush_document(room, doc)

    async def flush_document(self, room: Room, doc: Document) -> None:
        """Append ``doc``'s pending updates; compact past the log bound.

        On a store error the batch goes back to the front of ``pending`` and
        OSError propagates.
        """
        async with room.flush_lock(doc.name):
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
            if doc.log_length >= self.compact_after_updates:
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

    # -- introspection -------------------------------------------------------------

    @property
    def document_count(self) -> int:
        return sum(len(room.docs) for room in self.rooms.values())
