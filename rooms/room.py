"""A room: its documents and its lifecycle state machine.

::

    ACTIVE ──last member leaves──▶ IDLE ──unload_after_s──▶ UNLOADING ──▶ UNLOADED
       ▲                            │
       └──────── a member joins ────┘

A join that finds a room UNLOADING waits until it is UNLOADED and then
loads the room afresh from the store, so no update is ever applied to a
replica that is being thrown away.

Saving (protocol.md §11), a second machine beside the lifecycle::

    OK ──a write failed──▶ DELAYED ──store_delay_window_s──▶ READ_ONLY
     ▲                        │                                  │
     └──everything written────┴──────────everything written──────┘

While DELAYED the room's edits are kept in memory; READ_ONLY refuses
board edits and chat (``store_unavailable``) until the store takes writes.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import TYPE_CHECKING

from crdt.types import DocName, RoomId, UserId
from rooms.chat import ChatLog
from rooms.document import Document
from rooms.errors import InternalError
from rooms.policy import RoomPolicy
from rooms.ratelimit import TokenBucket
from rooms.store import RoomInfo

if TYPE_CHECKING:
    from rooms.private_line import PrivateLog

__all__ = ["Room", "RoomState", "SavingState"]


class RoomState(Enum):
    ACTIVE = "active"
    IDLE = "idle"
    UNLOADING = "unloading"
    UNLOADED = "unloaded"


_TRANSITIONS: dict[RoomState, frozenset[RoomState]] = {
    RoomState.ACTIVE: frozenset({RoomState.IDLE, RoomState.UNLOADING}),
    RoomState.IDLE: frozenset({RoomState.ACTIVE, RoomState.UNLOADING}),
    RoomState.UNLOADING: frozenset({RoomState.UNLOADED, RoomState.IDLE}),
    RoomState.UNLOADED: frozenset(),
}


class SavingState(Enum):
    """Whether the store has the room's changes (``room:state.saving``)."""

    OK = "ok"
    DELAYED = "delayed"
    READ_ONLY = "read_only"


_SAVING_TRANSITIONS: dict[SavingState, frozenset[SavingState]] = {
    SavingState.OK: frozenset({SavingState.DELAYED}),
    SavingState.DELAYED: frozenset({SavingState.OK, SavingState.READ_ONLY}),
    SavingState.READ_ONLY: frozenset({SavingState.OK}),
}


class Room:
    """One room's documents, loaded lazily, and its state."""

    def __init__(self, room_id: RoomId) -> None:
        self.id = room_id
        self.state = RoomState.ACTIVE
        self.docs: dict[DocName, Document] = {}
        #: Loads in flight, so concurrent joins of one document load it once.
        self.loading: dict[DocName, asyncio.Future[Document]] = {}
        #: Replicated stores: documents being resubscribed and caught up.
        self.refreshing: dict[DocName, asyncio.Task[None]] = {}
        #: Serializes store writes per document (append, then maybe compact).
        self.flush_locks: dict[DocName, asyncio.Lock] = {}
        #: Serializes chat writes from append to stored: a message that could
        #: not be stored is taken back, and no later write may depend on it.
        self.chat_lock = asyncio.Lock()
        #: Each user's chat allowance in this room (protocol.md §8).
        self.chat_rates: dict[UserId, TokenBucket] = {}
        #: Joins (and server-side uses) in progress; a pinned room never unloads.
        self.pins = 0
        self.chat: ChatLog | None = None
        #: The private threads' logs (rooms.private_line), by document name.
        self.private_logs: dict[DocName, PrivateLog] = {}
        self.unload_timer: asyncio.TimerHandle | None = None
        self.unloaded = asyncio.Event()
        #: The room this one replaced while it was still unloading: loads
        #: wait for its last flush so they read everything it held.
        self.predecessor: Room | None = None
        #: Moderation state, loaded with the meta document (shared by its docs).
        self.policy = RoomPolicy()
        #: The stored record (title, retention, activity), loaded with meta.
        self.info: RoomInfo | None = None
        self.info_saved = False
        #: Whether the room keeps a stored record: it had one, was created
        #: (admin API), or something of it was written. A room that was only
        #: joined leaves none (protocol.md §8).
        self.recorded = False
        self.last_activity_ms = 0.0
        #: Set when the room is being deleted: nothing of it is written again.
        self.deleted = False
        #: Whether the store has the room's changes, and since when (monotonic
        #: seconds) saving has been delayed.
        self.saving = SavingState.OK
        self.saving_delayed_since: float | None = None

    def __repr__(self) -> str:
        return f"<Room {self.id} {self.state.value} docs={len(self.docs)}>"

    def chat_log(self, doc: DocName) -> ChatLog | None:
        """The log of a server-written message document (``chat`` or a
        private thread), if it was made: what claims message keys in the store."""
        return self.chat if doc == "chat" else self.private_logs.get(doc)

    def transition(self, new: RoomState) -> None:
        """Move to ``new``; raise InternalError for a transition the table forbids."""
        if new not in _TRANSITIONS[self.state]:
            raise InternalError(
                f"room {self.id}: illegal transition {self.state.value} -> {new.value}"
            )
        self.state = new
        if new is RoomState.UNLOADED:
            self.unloaded.set()

    def set_saving(self, new: SavingState, now: float) -> None:
        """Move the saving state to ``new`` (``now``: monotonic seconds);
        InternalError for a transition the table forbids. READ_ONLY makes the
        policy refuse board edits and chat with ``store_unavailable``."""
        if new not in _SAVING_TRANSITIONS[self.saving]:
            raise InternalError(
                f"room {self.id}: illegal saving transition {self.saving.value} -> {new.value}"
            )
        self.saving = new
        if new is SavingState.DELAYED:
            self.saving_delayed_since = now
        elif new is SavingState.OK:
            self.saving_delayed_since = None
        self.policy.store_read_only = new is SavingState.READ_ONLY

    @property
    def unsaved_since(self) -> float | None:
        """When (monotonic seconds) the oldest change the store lacks was
        made, over the room's documents; None if the store has everything."""
        times = [d.unsaved_since for d in self.docs.values() if d.unsaved_since is not None]
        return min(times) if times else None

    @property
    def member_count(self) -> int:
        return sum(len(doc.members) for doc in self.docs.values())

    @property
    def in_use(self) -> bool:
        return self.pins > 0 or self.member_count > 0

    def flush_lock(self, doc: DocName) -> asyncio.Lock:
        lock = self.flush_locks.get(doc)
        if lock is None:
            lock = self.flush_locks[doc] = asyncio.Lock()
        return lock

    def cancel_unload(self) -> None:
        if self.unload_timer is not None:
            self.unload_timer.cancel()
            self.unload_timer = None
