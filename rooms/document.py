"""One document of a room: its replica, presence, members and unsaved updates.

Every method is synchronous and does no I/O: the caller (collab's handlers)
feeds a payload in and emits what comes back. An update is checked in full
before the engine sees it; a refused payload changes nothing.

A client's update goes in three steps, so that the caller can keep the
event loop running while a large one is checked and applied (protocol.md
§8.1): ``take_*`` (type, size, permission), ``check_*`` (the structure; it
reads nothing that changes, so it may run in a worker thread), then
``receive_*`` (the document's limits, the engine). ``receive_update`` does
all three at once. The answer to the server's sync-step-1 may be as large
as the document; it is cut into parts of at most ``max_update_structs``
structs, applied one at a time (:meth:`Document.receive_answer`).

Limits (protocol.md §8) are kept here, where the document is:

* its size: an update that adds to a document at its limit is refused with
  ``document_too_large`` (deletions still go in, so a full board can be
  cleared); the size is the last full-state checkpoint plus the bytes of the
  updates since, recomputed exactly only when that estimate nears the limit;
* updates waiting for dependencies: an update whose structs start past
  what the document has of their client, or that refers to items it lacks,
  stays pending in the engine, invisible in the encoded state. Such updates
  are counted (by a state vector mirrored from each update's summary, so
  the common case decodes nothing) and bounded (``pending_limit``);
* engine failures: whatever the engine raises on a client's update or a
  server write, the replica is rebuilt as it was before, and the caller
  gets a typed error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from crdt.awareness import AwarenessTable, decode_awareness, encode_awareness, stamp_user
from crdt.engine import Engine
from crdt.errors import EnginePanic, InvalidPayload, MalformedUpdate, MessageTooLarge
from crdt.schemas import BOARD_ROOT, DocKind
from crdt.shape_index import ShapeIndex
from crdt.types import DocName, RoomId, StateVector, Update
from crdt.updates import (
    UpdatePart,
    UpdateSummary,
    check_state_vector,
    check_update,
    decode_state_vector,
    split_update,
    whole_summary,
)
from rooms.errors import (
    DocumentTooLarge,
    InternalError,
    PendingLimit,
    SchemaViolation,
    ShapeLocked,
    TooManyStructs,
)
from rooms.identity import Identity, Role
from rooms.limits import Limits
from rooms.names import doc_kind
from rooms.policy import RoomPolicy
from rooms.store import LogPosition, StoredDoc

__all__ = ["BULK_DELETE_SHAPES", "Document"]

log = logging.getLogger("collab.rooms")

_STRICT_BOARD_ROOTS = frozenset({BOARD_ROOT})
_MIN_CHECKPOINT_BYTES = 64 << 10
#: Shapes one client update must remove for the board before it to be kept
#: as a restore point (rooms.restore_points).
BULK_DELETE_SHAPES = 5
#: Structs a shape index may take on since it was built before it is built
#: again from the document's state (merged runs, collected content).
_SHAPE_INDEX_REBUILD = 8192


class Document:
    """A room's document. ``members`` are connection ids attached to it."""

    __slots__ = (
        "__weakref__",
        "_checkpoint",
        "_clock",
        "_provisional",
        "_shapes",
        "_since",
        "_since_bytes",
        "_state",
        "_waiting",
        "awareness",
        "bulk_deleted",
        "checkpoint_stale",
        "compact_due",
        "engine",
        "full",
        "kind",
        "limits",
        "log_length",
        "max_bytes",
        "members",
        "name",
        "on_pending",
        "pending",
        "pending_bytes",
        "policy",
        "position",
        "room_id",
        "seq",
        "subscribed",
        "unsaved_since",
        "waiting_bytes",
    )

    def __init__(
        self,
        room_id: RoomId,
        name: DocName,
        engine: Engine,
        limits: Limits,
        policy: RoomPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
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
        #: When (``clock`` seconds) the oldest change the store does not have
        #: yet was made: set when an update is kept, cleared by :meth:`stored`
        #: once nothing is pending. Also covers a batch being written (taken
        #: out of ``pending`` but not yet stored).
        self.unsaved_since: float | None = None
        self._clock = clock
        #: Log entries in the store since its snapshot, and where the log ends.
        self.log_length = 0
        self.position: LogPosition = 0
        #: Replicated stores: the last sequence number applied in order (see
        #: rooms.replication).
        self.seq = 0
        #: Replicated stores: whether this node follows the document's channel
        #: (otherwise the replica may be stale and is caught up before use).
        self.subscribed = True
        #: Called when an update is added to ``pending`` (eager flushing).
        self.on_pending: Callable[[], None] | None = None
        # What rebuilds the replica if the engine panics: a full-state
        # checkpoint and every update since (see _recover). Their sizes
        # together bound the document's encoded size from above.
        self._checkpoint = engine.full_state()
        self._since: list[Update] = []
        self._since_bytes = 0
        #: A server write not yet stored, which retract() may take back.
        self._provisional: Update | None = None
        #: Deleted content is in the recovery copy (see purge_memory), and a
        #: facilitator deleted something the store must forget at the next
        #: flush (a compaction then, not compact_after_updates later).
        self.checkpoint_stale = False
        self.compact_due = False
        #: Whether an update was refused for the size limit (and no addition
        #: or deletion has made room since): shown to the room (room:state).
        self.full = False
        #: The size limit of this kind of document (protocol.md §8.3).
        self.max_bytes = limits.max_document_bytes(self.kind)
        #: The engine's state vector, mirrored (client id → next clock).
        self._state: dict[int, int] = {}
        #: Updates not yet wholly integrated, and the state they need.
        self._waiting: list[tuple[Update, dict[int, int]]] = []
        self.waiting_bytes = 0
        #: The board as it was before a client's update removed at least
        #: ``BULK_DELETE_SHAPES`` shapes at once, until the caller takes it
        #: for a restore point (rooms.restore_points).
        self.bulk_deleted: Update | None = None
        #: Item ids → shapes, built when a board first has locked shapes
        #: (_locked_out), then fed every update the replica takes.
        self._shapes: ShapeIndex | None = None

    def __repr__(self) -> str:
        return f"<Document {self.room_id}/{self.name} members={len(self.members)}>"

    # -- loading -------------------------------------------------------------

    def restore(self, stored: StoredDoc) -> None:
        """Apply what the store holds. A corrupt entry is logged and skipped,
        so one bad row cannot make a room unloadable."""
        entries = ([stored.snapshot] if stored.snapshot is not None else []) + list(stored.updates)
        self._shapes = None
        applied: list[tuple[Update, dict[int, int]]] = []
        for index, update in enumerate(entries):
            try:
                summary = check_update(update, max_clock=self.limits.max_clock)
                self._apply_engine(update)
            except MalformedUpdate as exc:
                log.error(
                    "skipping corrupt stored update room=%s doc=%s index=%d bytes=%d: %s",
                    self.room_id,
                    self.name,
                    index,
                    len(update),
                    exc,
                )
                continue
            self._remember(update)
            applied.append((update, summary.reached()))
        self.log_length = stored.log_length
        self.position = stored.position
        self.seq = stored.seq
        # The log may hold updates that still wait for others: keep those.
        self._waiting = applied
        self._sync_state()
        self._take_checkpoint()

    # -- sync ----------------------------------------------------------------

    def sync_step_1(self, payload: Any) -> Update:
        """The update a client lacks, given its state vector (``sync-step-1``)."""
        state_vector: StateVector = self._binary(payload, self.limits.max_message_bytes)
        check_state_vector(state_vector, max_clock=self.limits.max_clock)
        return self.engine.diff(state_vector)

    def state_vector(self) -> StateVector:
        return self.engine.state_vector()

    def receive_update(self, payload: Any, identity: Identity) -> Update | None:
        """Apply a client's ``sync-update``; return the update to relay.

        :meth:`take_update`, :meth:`check_update` and :meth:`receive_checked`
        in one: returns None for an update that carries nothing, and raises
        (changing nothing) whatever they raise.
        """
        update = self.take_update(payload, identity)
        return self.receive_checked(update, self.check_update(update), identity)

    def take_update(self, payload: Any, identity: Identity) -> Update:
        """A client's ``sync-update`` payload, if it is binary, at most
        ``max_message_bytes`` and ``identity`` may write here (InvalidPayload,
        MessageTooLarge, or the policy's refusal: ReadOnlyDocument,
        PermissionDenied, SessionEnded, BoardLocked)."""
        update = self._binary(payload, self.limits.max_message_bytes)
        self.policy.check_write(identity, self.kind)
        return update

    def check_update(self, update: Update) -> UpdateSummary:
        """The structural check of a taken ``sync-update``: its summary, or
        MalformedUpdate, or TooManyStructs past ``max_update_structs``.
        Reads nothing that changes: may run in a worker thread."""
        summary = check_update(update, max_clock=self.limits.max_clock)
        if summary.struct_count > self.limits.max_update_structs:
            raise TooManyStructs(
                f"update of {summary.struct_count} structs, limit "
                f"{self.limits.max_update_structs}: split the change"
            )
        return summary

    def receive_checked(
        self,
        update: Update,
        summary: UpdateSummary,
        identity: Identity,
        *,
        checkpoint: bool = True,
    ) -> Update | None:
        """Apply a checked ``sync-update`` (``summary`` from
        :meth:`check_update`); return it to relay, or None if it carries
        nothing. Raises (changing nothing) SchemaViolation, DocumentTooLarge,
        PendingLimit, or MalformedUpdate if the engine fails on it. Without
        ``checkpoint``, a checkpoint it makes due is left to the caller
        (:meth:`checkpoint_if_due`, in an event-loop turn of its own)."""
        if summary.is_empty:
            return None
        missing = self._admit(summary, len(update))
        self._locked_out([update], identity)
        self._accept(update, summary, identity, missing, checkpoint=checkpoint)
        return update

    def take_answer(self, payload: Any, identity: Identity) -> Update | None:
        """The answer to the server's ``sync-step-1`` (what the client had
        that the server lacked: offline edits, or all of it after the server
        lost the document), if it is binary and at most the document's size
        limit, or ``max_message_bytes`` if larger (else InvalidPayload,
        MessageTooLarge). None for a connection that may not write here: its
        answer is ignored, not refused, since the y-socket.io provider always
        answers, with whatever it holds."""
        if not self.policy.can_write(identity, self.kind):
            return None
        return self._binary(payload, max(self.max_bytes, self.limits.max_message_bytes))

    def check_answer(self, answer: Update) -> list[UpdatePart]:
        """The structural check of a taken answer, cut into parts of at most
        ``max_update_structs`` structs and about ``max_message_bytes`` bytes
        (crdt.updates.split_update; MalformedUpdate). Reads nothing that
        changes: may run in a worker thread."""
        return split_update(
            answer,
            max_structs=self.limits.max_update_structs,
            max_bytes=self.limits.max_message_bytes,
            max_clock=self.limits.max_clock,
        )

    def receive_answer(
        self, parts: Sequence[UpdatePart], identity: Identity
    ) -> Iterator[Update | None]:
        """Apply a checked answer (``parts`` from :meth:`check_answer`) a part
        at a time, yielding each part once it is in, to be relayed, and None
        after a checkpoint the parts made due (encoding the document takes
        a while too: about 4 ms a megabyte); the caller lets the event loop
        run before it asks for the next step.

        The answer is held to the document's limits as a whole before its
        first part goes in (SchemaViolation, DocumentTooLarge, PendingLimit:
        nothing applied). Each part is then applied, remembered and kept to
        store as any update. If the engine fails on a part, that part is
        undone and MalformedUpdate raised; the parts before it stay (each is
        an update of its own). Ends early, without error, once ``identity``
        may no longer write here (the board was locked meanwhile).
        """
        whole = whole_summary(parts)
        if whole.is_empty:
            return
        self._admit(whole, sum(len(part.update) for part in parts))
        self._locked_out([part.update for part in parts], identity)
        for part in parts:
            if part.summary.is_empty:
                continue
            if not self.policy.can_write(identity, self.kind):
                return
            self._accept(part.update, part.summary, identity, checkpoint=False)
            yield part.update
            if self.checkpoint_if_due():
                yield None

    def _admit(self, summary: UpdateSummary, size: int) -> dict[int, int]:
        """Hold an update of ``size`` bytes (or a whole answer) to the
        document's limits before any of it is applied: the strict board
        schema, the size (unless it only deletes), the updates waiting for
        dependencies. Return what it lacks (see _admit_waiting)."""
        if self.limits.strict_board and not summary.roots <= _STRICT_BOARD_ROOTS:
            raise SchemaViolation("update writes outside the board schema's roots")
        if not summary.deletes_only:  # a deletion never makes a document larger
            self._make_room(size)
        # Deletions of items the server lacks wait too (yrs's pending delete set).
        return self._admit_waiting(size, summary)

    def _locked_out(self, updates: Sequence[Update], identity: Identity) -> None:
        """ShapeLocked if ``updates`` would add to, change or delete a shape
        of this board that is locked for ``identity`` (crdt.shape_index), or
        refer to items the replica lacks while any is locked (they could
        land in a locked shape once those arrive)."""
        if self.kind is not DocKind.BOARD:
            return
        locked = self.policy.locked_shapes(identity, self.name)
        if not locked:
            return
        touched = self._shape_index().touched(updates)
        if touched is None:
            raise ShapeLocked(
                "the update depends on changes the server does not have, and shapes are "
                "locked: resync"
            )
        hit = touched & locked
        if hit:
            raise ShapeLocked(f"the update changes {len(hit)} locked shape(s)")

    def _shape_index(self) -> ShapeIndex:
        if self._shapes is None:
            self._shapes = ShapeIndex.from_updates(
                BOARD_ROOT, [self.engine.full_state(), *(u for u, _ in self._waiting)]
            )
        return self._shapes

    def _accept(
        self,
        update: Update,
        summary: UpdateSummary,
        identity: Identity,
        missing: dict[int, int] | None = None,
        *,
        checkpoint: bool = True,
    ) -> None:
        """Apply an admitted update and keep it to store (``checkpoint``:
        see _remember). A board update that removes ``BULK_DELETE_SHAPES``
        shapes or more leaves the board as it was in ``bulk_deleted``."""
        watch = (
            self.kind is DocKind.BOARD
            and summary.delete_ranges > 0
            # The board loses at most as many shapes as the update deletes
            # items (each at least one clock unit), unless updates waiting for
            # this one bring deletions of their own: counting the shapes
            # before and after (a transaction each) is for those only.
            and (
                summary.deleted is None
                or summary.deleted >= BULK_DELETE_SHAPES
                or bool(self._waiting)
            )
        )
        if watch:
            before = self.engine.map_size(BOARD_ROOT)
            # What rebuilds the board as it is now, kept by reference: _remember
            # appends to this list and a checkpoint replaces it, so its first
            # ``known`` items stay the updates since ``base``.
            base, since, known = self._checkpoint, self._since, len(self._since)
        self._integrate(update, summary, missing, checkpoint=checkpoint)
        if watch and before - self.engine.map_size(BOARD_ROOT) >= BULK_DELETE_SHAPES:
            self.bulk_deleted = self._replayed([base, *since[:known]])
        if summary.deletes_only and self.full:
            self._recheck_full()
        if summary.delete_ranges and identity.role is Role.FACILITATOR:
            # What a facilitator deletes leaves the disk at the next flush.
            self.compact_due = True
        self._keep(update)

    def apply(self, update: Update) -> None:
        """Apply an update from the store or another node: checked, but not
        held to the limits (it was accepted once, by this node or another).

        Raises MalformedUpdate. If the engine panicked, the replica is first
        rebuilt as it was before (from the checkpoint and the updates since),
        so a refused update leaves nothing behind.
        """
        self._integrate(update, check_update(update, max_clock=self.limits.max_clock))

    def _integrate(
        self,
        update: Update,
        summary: UpdateSummary,
        missing: dict[int, int] | None = None,
        *,
        checkpoint: bool = True,
    ) -> None:
        if missing is None:
            missing = summary.missing(self._state)
        self._apply_engine(update)
        self._remember(update, checkpoint=checkpoint)
        if summary.delete_ranges:
            # The checkpoint still holds what was deleted (purge_memory).
            self.checkpoint_stale = True
        if missing or self._waiting:
            # Something waits (or waited): read the engine's own state.
            if missing:
                self._waiting.append((update, summary.reached()))
            self._sync_state()
        else:
            state = self._state
            for client, _, end in summary.blocks:
                if end > state.get(client, 0):
                    state[client] = end

    def _apply_engine(self, update: Update) -> None:
        try:
            self.engine.apply_update(update)
        except EnginePanic:
            self._recover()
            raise

    def _sync_state(self) -> None:
        """Read the engine's state vector; forget waiting updates now integrated."""
        state = self._state = decode_state_vector(self.engine.state_vector())
        if self._waiting:
            self._waiting = [
                (update, needs)
                for update, needs in self._waiting
                if any(state.get(client, 0) < clock for client, clock in needs.items())
            ]
        self.waiting_bytes = sum(len(update) for update, _ in self._waiting)

    def _admit_waiting(self, size: int, summary: UpdateSummary) -> dict[int, int]:
        """What the update lacks; PendingLimit if it would wait with too many others."""
        missing = summary.missing(self._state)
        if missing and (
            len(self._waiting) >= self.limits.max_pending_updates
            or self.waiting_bytes + size > self.limits.max_pending_bytes
        ):
            raise PendingLimit(
                f"{len(self._waiting)} updates ({self.waiting_bytes} bytes) already wait "
                "for updates the server does not have; resync"
            )
        return missing

    @property
    def waiting_count(self) -> int:
        """Updates accepted but not yet wholly integrated (waiting for others)."""
        return len(self._waiting)

    @property
    def size_bound(self) -> int:
        """An upper bound of the document's encoded size (exact after a checkpoint)."""
        return len(self._checkpoint) + self._since_bytes

    def _make_room(self, adding: int) -> None:
        """DocumentTooLarge if adding ``adding`` bytes would pass the size limit.

        The bound is exact only after a checkpoint; one is taken when the
        updates since it weigh more than a sixteenth of the limit, so the
        full encoding is paid at most once per that many accepted bytes."""
        limit = self.max_bytes
        bound = len(self._checkpoint) + self._since_bytes + adding
        if bound <= limit:  # the common case: far from the limit
            self.full = False
            return
        if self._since_bytes > limit >> 4:
            self._take_checkpoint()
        if self.size_bound + adding > limit:
            self.full = True
            raise DocumentTooLarge(
                f"the document holds about {self.size_bound} bytes, limit {limit}: "
                "only deletions are accepted"
            )
        self.full = False

    def _recheck_full(self) -> None:
        """After a deletion in a full document: clear ``full`` once there is room."""
        self._take_checkpoint()
        self.full = self.size_bound > self.max_bytes - (self.max_bytes >> 4)

    def write(
        self, change: Callable[[Engine], Update], *, adding: int = 0, hold: bool = False
    ) -> Update:
        """Make a server-side change (chat, meta) in one engine transaction and
        keep its update to store; return the update to relay.

        Atomic: if the engine fails midway the replica is rebuilt as it was
        and InternalError is raised (InvalidPayload for a value it cannot
        hold, before anything is written). DocumentTooLarge if the document
        has no room for about ``adding`` more bytes. With ``hold``, the write
        stays retractable (:meth:`retract`) until :meth:`release`.
        """
        self._make_room(adding)
        if hold:
            self._provisional = b""  # no checkpoint may swallow it from now on
        try:
            update = change(self.engine)
        except MalformedUpdate:  # EnginePanic too: the transaction may have half-written
            self._provisional = None
            self._recover()
            raise InternalError("the server could not make this change; nothing changed") from None
        except BaseException:
            self._provisional = None
            raise
        if hold:
            self._provisional = update
        self._remember(update)
        if check_update(update).delete_ranges:
            self.checkpoint_stale = True
        self._sync_state()
        self._keep(update)
        return update

    def purge_memory(self) -> None:
        """Forget what deleted content the recovery copy still holds: a fresh
        checkpoint (the engine collects deleted content, so its state has
        none) replaces the old one and the updates since. Not while a write
        is held for retraction; the next call does it."""
        if self.checkpoint_stale and self._provisional is None:
            self._take_checkpoint()
            self.checkpoint_stale = False

    def merge_recovered(self, state: Update) -> None:
        """Merge a state saved in a recovery file (rooms.recovery): checked
        and applied like a stored update, and what it adds kept to store.
        Merging the same state twice changes nothing (MalformedUpdate if it
        does not decode)."""
        before = self.engine.state_vector()
        self.apply(state)
        self.accept_server_update(self.engine.diff(before))

    def accept_server_update(self, update: Update) -> None:
        """Record an update the server produced on this replica otherwise
        (a re-seed of the whole state)."""
        self._remember(update)
        self._keep(update)

    def release(self) -> None:
        """The held write is stored (or taken back): checkpoints may resume."""
        self._provisional = None

    def stored(self) -> None:
        """The store took a batch of this document's updates. What arrived
        while it was written is still pending (and dated now: it is at most
        that write old)."""
        self.unsaved_since = self._clock() if self.pending else None

    def is_pending(self, update: Update) -> bool:
        """Whether ``update`` still waits to be stored."""
        return any(u is update for u in self.pending)

    def retract(self, update: Update) -> None:
        """Take back the held server write ``update`` (its store write failed):
        it leaves ``pending`` and the replica is rebuilt without it. Only
        valid before anyone was sent it."""
        if self._provisional is not update:
            raise InternalError("only the held write can be taken back")
        self._provisional = None
        self.pending = [u for u in self.pending if u is not update]
        self.pending_bytes = sum(len(u) for u in self.pending)
        if not self.pending:
            self.unsaved_since = None
        self._since = [u for u in self._since if u is not update]
        self._since_bytes = sum(len(u) for u in self._since)
        self._rebuild()
        log.warning("server write taken back room=%s doc=%s", self.room_id, self.name)

    def _remember(self, update: Update, *, checkpoint: bool = True) -> None:
        """Add ``update`` to what rebuilds the replica, and take a checkpoint
        if one is due (unless ``checkpoint`` is false: the caller takes it
        later, with :meth:`checkpoint_if_due`)."""
        self._since.append(update)
        self._since_bytes += len(update)
        if self._shapes is not None:
            self._shapes.add(update)
        if checkpoint:
            self.checkpoint_if_due()

    @property
    def checkpoint_due(self) -> bool:
        """Whether the updates since the last checkpoint outweigh it (memory
        stays within about twice the document, the cost amortized). Not
        while a write is held: it must stay separable (retract)."""
        return (
            self._since_bytes > max(len(self._checkpoint), _MIN_CHECKPOINT_BYTES)
            and self._provisional is None
        )

    def checkpoint_if_due(self) -> bool:
        """Take a checkpoint (encode the whole document: about 4 ms a
        megabyte) if one is due; return whether it did."""
        if self.checkpoint_due:
            self._take_checkpoint()
            return True
        return False

    def _take_checkpoint(self) -> None:
        self._checkpoint = self.engine.full_state()
        if self._shapes is not None and self._shapes.added > _SHAPE_INDEX_REBUILD:
            self._shapes = None  # rebuilt from the next checkpoint when next asked
        # The encoded state leaves out what waits for dependencies: keep
        # those updates, so a rebuilt replica still holds them.
        self._since = [update for update, _ in self._waiting]
        self._since_bytes = self.waiting_bytes

    def _recover(self) -> None:
        """Replace a replica the engine failed on with a rebuilt one."""
        self._rebuild()
        log.error(
            "engine failed; replica rebuilt room=%s doc=%s checkpoint_bytes=%d updates=%d",
            self.room_id,
            self.name,
            len(self._checkpoint),
            len(self._since),
        )

    def _replayed(self, updates: Sequence[Update]) -> Update:
        """The full state of a replica made of ``updates`` (O(document):
        only for a bulk deletion, which is rare)."""
        engine = type(self.engine)()
        for update in updates:
            engine.apply_update(update)
        return engine.full_state()

    def _rebuild(self) -> None:
        self._shapes = None  # what it indexed may include what is now taken out
        engine = type(self.engine)()
        for update in [self._checkpoint, *self._since]:
            engine.apply_update(update)
        self.engine = engine
        self._sync_state()

    def _keep(self, update: Update) -> None:
        if self.unsaved_since is None:
            self.unsaved_since = self._clock()
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
        data = self._binary(payload, self.limits.max_message_bytes)
        entries = decode_awareness(
            data,
            max_entries=self.limits.max_awareness_entries,
            max_state_bytes=self.limits.max_awareness_state_bytes,
        )
        entries = stamp_user(
            entries, identity.as_json(), allowed_fields=self.limits.awareness_fields
        )
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

    @staticmethod
    def _binary(payload: Any, limit: int) -> bytes:
        if isinstance(payload, bytes | bytearray | memoryview):
            data = bytes(payload)
        else:
            raise InvalidPayload(f"expected one binary argument, got {type(payload).__name__}")
        if len(data) > limit:
            raise MessageTooLarge(f"payload of {len(data)} bytes, limit {limit}")
        return data
