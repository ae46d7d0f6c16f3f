"""How a registry keeps its documents in step with other nodes: the
:class:`Replication` strategy, and :class:`SingleNode`, the version for a
store no other process writes to (memory, SQLite, PostgreSQL on one node).

The registry and its persistence call every method unconditionally; the
Redis version (rooms.replication.Replicator) subscribes, publishes, writes
every room's pending updates in one pipeline and reconciles replicas; this
one writes each document's batch with ``Store.append`` and does nothing
else. A store names its strategy (``Store.replication``), so nothing above
it asks which store it is (docs/architecture.md §6).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from crdt.types import DocName, RoomId
from rooms.document import Document
from rooms.room import Room, RoomState
from rooms.store import StoredDoc

if TYPE_CHECKING:
    from rooms.registry import RoomRegistry
    from rooms.store import Store

__all__ = ["Replication", "SingleNode"]


class Replication(Protocol):
    """What a registry needs from replication, called in this order for a
    document: ``before_load`` → (store load) → ``loaded`` (or
    ``load_failed``); then ``write``/``settle``/``publish_*`` while it is
    used, ``detach``/``refresh`` as local members come and go, ``forget``
    when it unloads."""

    #: Whether other nodes share the store (reporting only: /healthz, metrics).
    shared: bool

    @property
    def healthy(self) -> bool:
        """Whether this node currently hears the other nodes."""

    def counters(self) -> dict[str, int]:
        """What replication counted (received, applied, gaps, …): /metrics."""

    async def start(self, registry: RoomRegistry) -> None:
        """Begin following the other nodes; OSError if they cannot be reached."""

    async def close(self) -> None: ...

    async def before_load(self, room: RoomId, doc: DocName) -> None:
        """Called before a document is read from the store."""

    def loaded(self, doc: Document, stored: StoredDoc, on_pending: Callable[[], None]) -> None:
        """``doc`` holds what the store had; ``on_pending`` flushes soon."""

    def load_failed(self, room: RoomId, doc: DocName) -> None: ...

    def detach(self, doc: Document) -> None:
        """``doc`` has no local members left: stop following it."""

    async def refresh(self, doc: Document) -> None:
        """Follow a detached document again (``doc.subscribed`` False) and
        catch it up; RoomUnavailable if its room was deleted meanwhile."""

    def forget(self, room: RoomId, docs: Sequence[DocName]) -> None:
        """A room's documents unloaded or were deleted."""

    async def write(self, rooms: Sequence[Room]) -> list[Room]:
        """Append every pending update of ``rooms`` to the store; return the
        rooms written to. On OSError what was not written is back in front
        of ``pending`` and what was written is out of it."""

    def reseeding(self, doc: Document) -> bool:
        """Whether ``doc`` must be written whole before anything else of it
        (no compaction, no chat message meanwhile)."""

    def compaction_lock(
        self, room: RoomId, doc: DocName
    ) -> contextlib.AbstractAsyncContextManager[bool]:
        """Held around a compaction: yields whether this node holds the lock."""

    async def settle(self, doc: Document) -> None:
        """Bring ``doc`` up to date with the shared log before a server write."""

    def publish_awareness(self, doc: Document, data: bytes) -> None: ...

    def publish_delete(self, room: RoomId) -> None: ...

    def publish_event(self, room: RoomId, event: str, data: dict[str, Any]) -> None:
        """Tell the other nodes holding ``room`` to send ``event`` with
        ``data`` to their connections of it (session activities)."""


class SingleNode:
    """Replication when no other process shares the store: every write is
    the store's ``append``, everything else does nothing."""

    shared = False

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def healthy(self) -> bool:
        return True

    def counters(self) -> dict[str, int]:
        return {}

    async def start(self, registry: RoomRegistry) -> None:
        return None

    async def close(self) -> None:
        return None

    async def before_load(self, room: RoomId, doc: DocName) -> None:
        return None

    def loaded(self, doc: Document, stored: StoredDoc, on_pending: Callable[[], None]) -> None:
        return None

    def load_failed(self, room: RoomId, doc: DocName) -> None:
        return None

    def detach(self, doc: Document) -> None:
        return None  # doc.subscribed stays True: nothing to refresh

    async def refresh(self, doc: Document) -> None:
        doc.subscribed = True

    def forget(self, room: RoomId, docs: Sequence[DocName]) -> None:
        return None

    async def write(self, rooms: Sequence[Room]) -> list[Room]:
        """One ``append`` per document, under its room's flush lock (a
        deletion waits for it); stops at the first failure (the store is
        down, and each attempt may wait for a lock)."""
        written: list[Room] = []
        for room in rooms:
            for doc in list(room.docs.values()):
                if not doc.pending:
                    continue
                async with room.flush_lock(doc.name):
                    if room.state is RoomState.UNLOADED or not doc.pending:
                        continue  # deleted meanwhile: its updates are gone
                    batch = doc.pending
                    doc.pending, doc.pending_bytes = [], 0
                    try:
                        doc.position = await self.store.append(room.id, doc.name, batch)
                    except BaseException:
                        doc.pending[:0] = batch
                        doc.pending_bytes = sum(len(u) for u in doc.pending)
                        raise
                    doc.log_length += len(batch)
                if room not in written:
                    written.append(room)
        return written

    def reseeding(self, doc: Document) -> bool:
        return False

    @contextlib.asynccontextmanager
    async def compaction_lock(self, room: RoomId, doc: DocName) -> AsyncIterator[bool]:
        yield True

    async def settle(self, doc: Document) -> None:
        return None

    def publish_awareness(self, doc: Document, data: bytes) -> None:
        return None

    def publish_delete(self, room: RoomId) -> None:
        return None

    def publish_event(self, room: RoomId, event: str, data: dict[str, Any]) -> None:
        return None
