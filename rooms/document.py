"""One document of a room: its replica, presence, members and unsaved updates.

Every method is synchronous and does no I/O: the caller (collab's handlers)
feeds a payload in and emits what comes back. An update is checked in full
before the engine sees it; a refused payload changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

from crdt.awareness import AwarenessTable, decode_awareness, encode_awareness, stamp_user
from crdt.engine import Engine
from crdt.errors import (
    EnginePanic,
    InvalidPayload,
    MalformedUpdate,
    MessageTooLarge,
    SchemaViolation,
)
from crdt.schemas import BOARD_ROOT, DocKind
from crdt.types import DocName, RoomId, StateVector, Update
from crdt.updates import check_state_vector, check_update
from rooms.identity import Identity
from rooms.limits import Limits
from rooms.names import doc_kind
from rooms.policy import RoomPolicy
from rooms.store import LogPosition, StoredDoc

__all__ = ["Document"]

log = logging.getLogger("collab.rooms")

_STRICT_BOARD_ROOTS = frozenset({BOARD_ROOT})
_MIN_CHECKPOINT_BYTES = 64 << 10


class Document:
    """A room's document. ``members`` are connection ids attached to it."""

    __slots__ = (
        "__weakref__",
        "_checkpoint",
        "_since",
        "_since_bytes",
        "awareness",
        "engine",
        "kind",
        "limits",
        "log_length",
        "members",
        "name",
        "on_pending",
        "pending",
        "pending_bytes",
        "policy",
        "position",
        "room_id",
        "seq",
        "snapshot_seq",
        "subscribed",
    )

    def __init__(
        self,
        room_id: RoomId,
        name: DocName,
        engine: Engine,
        limits: Limits,
        policy: RoomPolicy | None = None,
    ) -> None:
        self.room_id = room_id
        #: The room's moderation state (shared by all its documents).
        self.policy = policy if policy is not None else RoomPolicy()
        self.name = name
        self.kind: DocKind = doc_kind(name)
        self.engine = engine
        self.limits = limits
        self.awareness = AwarenessTable(
            max_clients_per_owner=limits.max_awareness_clients_per_connection
        )
        self.members: set[Hashable] = set()
        #: Accepted updates the store does not have yet (the persister drains it).
        self.pending: list[Update] = []
        self.pending_bytes = 0
        #: Log entries in the store since its snapshot, and where the log ends.
        self.log_length = 0
        self.position: LogPosition = 0
        #: Replicated stores: the last sequence number applied in order, and
        #: the one the stored snapshot covers (see rooms.replication).
        self.seq = 0
        self.snapshot_seq = 0
        #: Replicated stores: whether this node follows the document's channel
        #: (otherwise the replica may be stale and is caught up before use).
        self.subscribed = True
        #: Called when an update is added to ``pending`` (eager flushing).
        self.on_pending: Callable[[], None] | None = None
        # What rebuilds the replica if the engine panics: a full-state
        # checkpoint and every update since (see _recover).
        self._checkpoint = engine.full_state()
        self._since: list[Update] = []
        self._since_bytes = 0

    def __repr__(self) -> str:
        return f"<Document {self.room_id}/{self.name} members={len(self.members)}>"

    # -- loading -------------------------------------------------------------

    def restore(self, stored: StoredDoc) -> None:
        """Apply what the store holds. A corrupt entry is logged and skipped,
        so one bad row cannot make a room unloadable."""
        entries = ([stored.snapshot] if stored.snapshot is not None else []) + list(stored.updates)
        for index, update in enumerate(entries):
            try:
                check_update(update, max_clock=self.limits.max_clock)
                self.apply(update)
            except MalformedUpdate as exc:
                log.error(
                    "skipping corrupt stored update room=%s doc=%s index=%d bytes=%d: %s",
                    self.room_id,
                    self.name,
                    index,
                    len(update),
                    exc,
                )
        self.log_length = stored.log_length
        self.position = stored.position
        self.seq = stored.seq
        self._take_checkpoint()

    # -- sync ----------------------------------------------------------------

    def sync_step_1(self, payload: Any) -> Update:
        """The update a client lacks, given its state vector (``sync-step-1``)."""
        state_vector: StateVector = self._binary(payload)
        check_state_vector(state_vector, max_clock=self.limits.max_clock)
        return self.engine.diff(state_vector)

    def state_vector(self) -> StateVector:
        return self.engine.state_vector()

    def receive_update(self, payload: Any, identity: Identity) -> Update | None:
        """Apply a client's ``sync-update``; return the update to relay.

        Returns None for an update that carries nothing. Raises (and changes
        nothing) if the payload is not binary, too large, malformed, outside
        the strict board schema, or the identity may not write here.
        """
        update = self._binary(payload)
        self.policy.check_write(identity, self.kind)
        return self._apply_client_update(update)

    def receive_client_diff(self, payload: Any, identity: Identity) -> Update | None:
        """Apply the answer to the server's ``sync-step-1`` (what the client had
        that the server lacked: offline edits). Connections that may not write
        this document are ignored rather than refused: the y-socket.io
        provider always answers, with whatever it holds."""
        update = self._binary(payload)
        if not self.policy.can_write(identity, self.kind):
            return None
        return self._apply_client_update(update)

    def _apply_client_update(self, update: Update) -> Update | None:
        summary = check_update(update, max_clock=self.limits.max_clock)
        if summary.is_empty:
            return None
        if self.limits.strict_board and not summary.roots <= _STRICT_BOARD_ROOTS:
            raise SchemaViolation("update writes outside the board schema's roots")
        self.apply(update)
        self._keep(update)
        return update

    def apply(self, update: Update) -> None:
        """Apply an update to the replica (a client's, or another node's).

        Raises MalformedUpdate. If the engine panicked, the replica is first
        rebuilt as it was before (from the checkpoint and the updates since),
        so a refused update leaves nothing behind.
        """
        try:
            self.engine.apply_update(update)
        except EnginePanic:
            self._recover()
            raise
        self._remember(update)

    def accept_server_update(self, update: Update) -> None:
        """Record an update the server produced on this replica (chat, meta)."""
        self._remember(update)
        self._keep(update)

    def _remember(self, update: Update) -> None:
        self._since.append(update)
        self._since_bytes += len(update)
        # Checkpoint when the updates since outweigh the last checkpoint:
        # memory stays within about twice the document, the cost amortized.
        if self._since_bytes > max(len(self._checkpoint), _MIN_CHECKPOINT_BYTES):
            self._take_checkpoint()

    def _take_checkpoint(self) -> None:
        self._checkpoint = self.engine.full_state()
        self._since = []
        self._since_bytes = 0

    def _recover(self) -> None:
        """Replace a replica the engine panicked on with a rebuilt one."""
        engine = type(self.engine)()
        for update in [self._checkpoint, *self._since]:
            engine.apply_update(update)
        self.engine = engine
        log.error(
            "engine panicked; replica rebuilt room=%s doc=%s checkpoint_bytes=%d updates=%d",
            self.room_id,
            self.name,
            len(self._checkpoint),
            len(self._since),
        )

    def _keep(self, update: Update) -> None:
        self.pending.append(update)
        self.pending_bytes += len(update)
        if self.on_pending is not None:
            self.on_pending()

    # -- awareness -------------------------------------------------------------

    def receive_awareness(
        self, payload: Any, *, owner: Hashable, identity: Identity
    ) -> bytes | None:
        """Apply a client's awareness update; return the update to relay
        (only the entries that changed), or None if nothing changed."""
        data = self._binary(payload)
        entries = decode_awareness(
            data,
            max_entries=self.limits.max_awareness_entries,
            max_state_bytes=self.limits.max_awareness_state_bytes,
        )
        entries = stamp_user(entries, identity.as_json())
        changed = self.awareness.apply(entries, owner=owner, principal=identity.user_id)
        return encode_awareness(changed) if changed else None

    def awareness_snapshot(self) -> bytes:
        """The full awareness state (sent to a client after it connects)."""
        return encode_awareness(self.awareness.snapshot())

    # -- membership -------------------------------------------------------------

    def attach(self, member: Hashable) -> None:
        self.members.add(member)

    def detach(self, member: Hashable) -> bytes | None:
        """Remove a member; return the awareness update removing its clients."""
        self.members.discard(member)
        removed = self.awareness.remove_owner(member)
        return encode_awareness(removed) if removed else None

    # -- helpers -------------------------------------------------------------

    def _binary(self, payload: Any) -> bytes:
        if isinstance(payload, bytes | bytearray | memoryview):
            data = bytes(payload)
        else:
            raise InvalidPayload(f"expected one binary argument, got {type(payload).__name__}")
        if len(data) > self.limits.max_message_bytes:
            raise MessageTooLarge(
                f"payload of {len(data)} bytes, limit {self.limits.max_message_bytes}"
            )
        return data
