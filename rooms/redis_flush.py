"""Writing a node's pending updates to Redis (issue 14): one batch for every
document, each in its Redis epoch, with the re-seeds that are due and the
chat message keys held messages claim.

A document is *due a re-seed* when the replicator found that Redis does not
hold what this replica holds: the room's Redis epoch is not the one the
document was reconciled with (Redis restarted empty or was replaced), or
Redis lacks updates this node has (a failover lost the last writes). The
replicator first reads the document back (so this replica has what other
nodes wrote meanwhile and counts sequence numbers as Redis now does), then
marks it with the epoch it read. The next flush puts the replica's full
state in front of the document's pending updates, appended by one script
call in that epoch: a CRDT update like any other, so re-seeds of several
nodes merge and none replaces another's. Until it is in, nothing else of
the document can be appended (the script refuses another epoch), and the
document's pending updates wait; a chat message waits with them, or is
refused ``store_unavailable``. A refused re-seed (another node set the
epoch first) reads the document back and tries again.

The full state is taken when the batch is made, not when the re-seed was
found due: so it has every pending update, and a held chat message that is
taken back after a failed flush is not in the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crdt.schemas import DocKind
from crdt.types import Update
from rooms.chat import message_keys
from rooms.document import Document
from rooms.redis_append import AppendItem, AppendResult, AppendStatus
from rooms.store_redis import RedisStore

if TYPE_CHECKING:
    from rooms.room import Room

__all__ = ["ReplicaWriter"]

log = logging.getLogger("collab.replication")

#: The documents whose messages claim keys (chat and private threads).
_MESSAGE_KINDS = frozenset({DocKind.CHAT, DocKind.PRIVATE})

#: Rounds of one flush when Redis keeps answering with a new epoch (each
#: round reads the refused documents back first).
_EPOCH_ROUNDS = 3

Reconcile = Callable[[Document], Awaitable[object]]


@dataclass(slots=True)
class _Entry:
    """One document's part of a batch."""

    room: Room
    doc: Document
    #: The document's pending updates, taken out of ``doc.pending``.
    taken: list[Update]
    item: AppendItem
    #: The epoch a re-seed is written in (None: not a re-seed).
    reseed: str | None

    def restore(self) -> None:
        """Not written: the pending updates go back in front (a re-seed's
        full state does not; the next batch takes a fresh one)."""
        doc = self.doc
        doc.pending[:0] = self.taken
        doc.pending_bytes = sum(len(u) for u in doc.pending)


class ReplicaWriter:
    """The write side of replication: batches, re-seeds and chat claims."""

    def __init__(
        self, store: RedisStore, *, reconcile: Reconcile, on_reseeded: Callable[[], None]
    ) -> None:
        self.store = store
        #: Reads a document back from Redis (and marks it due a re-seed if needed).
        self._reconcile = reconcile
        self._on_reseeded = on_reseeded
        #: Documents due a re-seed → the Redis epoch it is written in.
        self._due: dict[tuple[str, str], str] = {}
        #: Updates on their way to Redis, per document (not in ``pending``).
        self._in_flight: dict[tuple[str, str], list[Update]] = {}

    def reseed_due(self, doc: Document, epoch: str) -> None:
        """Write ``doc``'s full state with its next batch, in ``epoch``."""
        self._due[(doc.room_id, doc.name)] = epoch

    def due(self, doc: Document) -> str | None:
        """The epoch ``doc``'s pending re-seed is written in (None: none due)."""
        return self._due.get((doc.room_id, doc.name))

    def unsaved(self, doc: Document) -> list[Update]:
        """What this node accepted for ``doc`` that Redis may not have yet."""
        return [*self._in_flight.get((doc.room_id, doc.name), ()), *doc.pending]

    def forget(self, room: str, docs: Sequence[str]) -> None:
        for name in docs:
            self._due.pop((room, name), None)

    async def flush(self, rooms: Sequence[Room]) -> list[Room]:
        """Append every pending update and due re-seed of ``rooms``; return the
        rooms written to. OSError (what was not written back in ``pending``)
        if Redis fails, or keeps answering with a new epoch."""
        written: list[Room] = []
        for _ in range(_EPOCH_ROUNDS):
            batch = self._take(rooms)
            if not batch:
                return written
            try:
                results = await self.store.append_items([e.item for e in batch])
            except OSError:
                for entry in batch:
                    entry.restore()
                raise
            finally:
                for entry in batch:
                    self._in_flight.pop((entry.room.id, entry.doc.name), None)
            renewed = []
            for entry, result in zip(batch, results, strict=True):
                if result.status is AppendStatus.APPENDED:
                    self._appended(entry, result)
                    if entry.room not in written:
                        written.append(entry.room)
                elif result.status is AppendStatus.NEW_EPOCH:
                    entry.restore()
                    renewed.append(entry.doc)
            if not renewed:
                return written
            for doc in renewed:
                # Known no epoch: loaded before the room's first append, which
                # another node made (the usual case), or Redis lost the room.
                first = self.store.redis_epoch(doc.room_id, doc.name) == ""
                log.log(
                    logging.INFO if first else logging.WARNING,
                    "append refused: room=%s doc=%s has %s Redis epoch; reading it back",
                    doc.room_id,
                    doc.name,
                    "a" if first else "a new",
                )
                await self._reconcile(doc)
        raise OSError("Redis kept answering with a new epoch; will retry")

    def _take(self, rooms: Sequence[Room]) -> list[_Entry]:
        """A batch of every document with pending updates or a re-seed due.
        Synchronous: the updates leave ``pending`` and the full states are
        taken at the same instant."""
        batch = []
        for room in rooms:
            for doc in list(room.docs.values()):
                key = (room.id, doc.name)
                epoch = self._due.get(key)
                if not doc.pending and epoch is None:
                    continue
                chat = room.chat_log(doc.name)
                claims = chat.claims(doc.pending) if chat is not None else {}
                if epoch is not None and claims:
                    # The full state would hold the messages being sent, and
                    # store them even if their keys turn out taken: they wait
                    # (or are refused store_unavailable, taken back, and sent
                    # again after the re-seed).
                    continue
                taken, doc.pending, doc.pending_bytes = doc.pending, [], 0
                if epoch is None:
                    item = AppendItem(room.id, doc.name, taken, claims)
                else:
                    records = message_keys(doc) if doc.kind in _MESSAGE_KINDS else {}
                    item = AppendItem(
                        room.id, doc.name, [doc.engine.full_state(), *taken], {}, records, epoch
                    )
                self._in_flight[key] = list(taken)
                batch.append(_Entry(room, doc, taken, item, epoch))
        return batch

    def _appended(self, entry: _Entry, result: AppendResult) -> None:
        doc = entry.doc
        chat = entry.room.chat_log(doc.name)
        if result.duplicates and chat is not None:
            for index, stored in result.duplicates.items():
                chat.duplicate(entry.item.updates[index], stored)
        if entry.reseed is not None:
            key = (doc.room_id, doc.name)
            if self._due.get(key) == entry.reseed:
                del self._due[key]
            self._on_reseeded()
            log.warning(
                "re-seeded room=%s doc=%s bytes=%d",
                doc.room_id,
                doc.name,
                len(entry.item.updates[0]),
            )
