"""Keeping a node's replicas in step with the other nodes through Redis
(docs/architecture.md §6).

Every accepted local update is appended to the document's stream and
published in one round trip (the store's append script). Every node with the
document loaded receives the envelope and, unless it came from itself,
applies the update and relays it to its local members.

Ordering and gaps: each document has a sequence counter; a node applies
envelopes in sequence. An envelope past the next expected number means some
were missed (a dropped subscription, a network blip): the node reloads the
document from Redis (snapshot + log), relays what its members lack, and
continues. Applying is idempotent, so overlaps are harmless: delivery is at
least once, replicas converge.

Redis restarts and failovers (issue 14): each room has a random Redis epoch
(``collab:{room}:epoch``); the store remembers, per document, the epoch it
last reconciled the document with and names it in every append and
compaction, which Redis refuses under another epoch. A node learns that
Redis lost data from that refusal, from reading the log before a chat
message (:meth:`Replicator.settle`), from the catch-up after every
reconnect, and from a check of every loaded room's epoch with the sweep;
and, on a reconnect, also when Redis lacks updates this replica holds
(a failover that lost the last writes keeps the epoch). Then it reads the
document back and re-seeds it (rooms.redis_flush) before anything else of
it is appended, so nothing a node still holds is lost; unless the room was
deleted meanwhile (its tombstone says so): then the node closes the room's
connections and drops its copy instead.

Authenticity (protocol.md §10.3): every envelope must carry the MAC of a
node holding the cluster key (rooms.integrity); one that does not is
counted (``forged``) and neither applied nor relayed. Applied updates still
pass ``Document.apply``'s structural check, and awareness states must carry
the ``user`` a node stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness
from crdt.errors import CollabError, MalformedUpdate
from crdt.text import quote
from crdt.types import DocName, RoomId, StateVector, Update
from crdt.updates import decode_state_vector
from rooms.document import Document
from rooms.envelope import ControlAction, Envelope, EnvelopeKind, MalformedEnvelope
from rooms.errors import RoomUnavailable
from rooms.identity import Role
from rooms.names import META
from rooms.redis_bus import RedisBus
from rooms.redis_flush import ReplicaWriter
from rooms.redis_keys import RedisKeys, RoomDeletedElsewhere, UnverifiedData
from rooms.store import StoredDoc
from rooms.store_redis import RedisStore
from rooms.tasks import stop_if_cancelled

if TYPE_CHECKING:
    from rooms.registry import RoomRegistry
    from rooms.room import Room

__all__ = ["ReplicationStats", "Replicator"]

log = logging.getLogger("collab.replication")

#: Remote awareness not renewed for this long is dropped (y-protocols clients
#: renew every 15 s and time out peers after 30 s).
AWARENESS_TIMEOUT_S = 30.0

_ROLES = frozenset(role.value for role in Role)


@dataclass(slots=True)
class ReplicationStats:
    received: int = 0
    applied: int = 0
    dropped: int = 0
    gaps: int = 0
    reseeds: int = 0
    reconnects: int = 0
    #: Envelopes and stored entries refused for their MAC (protocol.md §10.3).
    forged: int = 0


@dataclass(slots=True)
class _Pending:
    """A document being loaded or caught up: envelopes wait here meanwhile."""

    envelopes: list[Envelope] = field(default_factory=list)


class Replicator:
    """One node's side of replication through Redis: the
    :class:`rooms.nodes.Replication` strategy of a :class:`RedisStore`."""

    shared = True

    def __init__(
        self, store: RedisStore, *, node_id: str, awareness_timeout_s: float = AWARENESS_TIMEOUT_S
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.awareness_timeout_s = awareness_timeout_s
        self.stats = ReplicationStats()
        self.bus = RedisBus(
            store.client,
            cluster=store.cluster,
            node_id=node_id,
            options=store.options,
            on_message=self.on_message,
            on_reconnect=self.on_reconnect,
        )
        store.on_deleted = self._suspect_deleted
        store.on_forged = self._count_forged
        store.on_new_epoch = self._suspect_new_epoch
        self.writer = ReplicaWriter(store, reconcile=self.reconcile, on_reseeded=self._count_reseed)
        self.registry: RoomRegistry | None = None
        self._waiting: dict[tuple[str, str], _Pending] = {}
        self._reloads: dict[tuple[str, str], asyncio.Task[bool]] = {}
        self._verifying: asyncio.Task[None] | None = None
        self._verify_again = False
        self._tasks: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return self.bus.healthy

    def counters(self) -> dict[str, int]:
        return dataclasses.asdict(self.stats)

    async def start(self, registry: RoomRegistry) -> None:
        """Connect the subscriber; OSError if Redis cannot be reached."""
        self.registry = registry
        if not self.store.mac.enabled:
            log.warning(
                "no cluster key: what nodes exchange through Redis is not authenticated "
                "(anyone who can write to Redis can forge it; --dev only)"
            )
        await self.bus.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        tasks = [*self._tasks, *self._reloads.values()]
        if self._verifying is not None:
            tasks.append(self._verifying)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.bus.close()

    # -- writing -------------------------------------------------------------

    async def write(self, rooms: Sequence[Room]) -> list[Room]:
        """Append every pending update and due re-seed of ``rooms`` in one
        pipeline (rooms.redis_flush); the rooms written to. OSError if Redis
        fails."""
        return await self.writer.flush(rooms)

    @contextlib.asynccontextmanager
    async def compaction_lock(self, room: RoomId, doc: DocName) -> AsyncIterator[bool]:
        """A short Redis lock, so one node compacts a document at a time."""
        locked = await self.store.try_lock(room, doc)
        try:
            yield locked
        finally:
            if locked:
                await self.store.unlock(room, doc)

    def reseeding(self, doc: Document) -> bool:
        """Whether ``doc`` waits for its re-seed (no compaction meanwhile)."""
        return self.writer.due(doc) is not None

    # -- subscriptions, around loading -------------------------------------------

    async def before_load(self, room: RoomId, doc: DocName) -> None:
        """Subscribe before reading the store, so nothing falls in between."""
        self._waiting[(room, doc)] = _Pending()
        await self.bus.subscribe(RedisKeys(room, doc).channel)

    def loaded(self, doc: Document, stored: StoredDoc, on_pending: Callable[[], None]) -> None:
        """The document holds what the store had (up to ``doc.seq``): apply what
        arrived meanwhile. Its updates are written right after the event-loop
        turn (``on_pending``): other nodes are waiting for them."""
        doc.on_pending = on_pending
        pending = self._waiting.pop((doc.room_id, doc.name), None)
        if pending is not None:
            for envelope in pending.envelopes:
                self._on_update(doc, envelope)

    def detach(self, doc: Document) -> None:
        """Stop following a document (no local members): its replica may go stale."""
        doc.subscribed = False
        self._waiting.pop((doc.room_id, doc.name), None)
        self.bus.release(RedisKeys(doc.room_id, doc.name).channel)

    async def refresh(self, doc: Document) -> None:
        """Follow a detached document again and catch it up (subscribe first, so
        nothing published meanwhile is missed). RoomUnavailable if the room was
        deleted meanwhile: this copy is being dropped, a new join loads afresh."""
        key = (doc.room_id, doc.name)
        self._waiting.setdefault(key, _Pending())
        await self.bus.subscribe(RedisKeys(doc.room_id, doc.name).channel)
        doc.subscribed = True
        if not await self.reconcile(doc):
            raise RoomUnavailable("the room was deleted; join again")

    def load_failed(self, room: RoomId, doc: DocName) -> None:
        self.forget(room, [doc])

    def forget(self, room: RoomId, docs: Sequence[DocName]) -> None:
        """Unsubscribe from a room's documents (it unloaded or was deleted)."""
        for name in docs:
            self._waiting.pop((room, name), None)
            self.store.forget(room, name)
            self.bus.release(RedisKeys(room, name).channel)
        self.writer.forget(room, docs)

    # -- publishing -------------------------------------------------------------

    def publish_awareness(self, doc: Document, data: bytes) -> None:
        envelope = Envelope(
            EnvelopeKind.AWARENESS, self.node_id, doc.room_id, doc.name, 0, None, data
        )
        sealed = self.store.mac.seal(envelope)
        self.bus.publish(RedisKeys(doc.room_id, doc.name).channel, sealed.serialize())

    def publish_delete(self, room: RoomId) -> None:
        envelope = Envelope(
            EnvelopeKind.CONTROL,
            self.node_id,
            room,
            META,
            0,
            None,
            Envelope.control_payload(ControlAction.DELETE),
        )
        sealed = self.store.mac.seal(envelope)
        self.bus.publish(RedisKeys(room, META).channel, sealed.serialize())

    def publish_event(self, room: RoomId, event: str, data: dict[str, Any]) -> None:
        """A room event (a reaction) for the other nodes' connections, on the
        room's meta channel, which every node with a connection in the room
        follows (RoomRegistry._wants_subscription)."""
        payload = Envelope.control_payload(ControlAction.EVENT, event=event, data=data)
        envelope = Envelope(EnvelopeKind.CONTROL, self.node_id, room, META, 0, None, payload)
        sealed = self.store.mac.seal(envelope)
        self.bus.publish(RedisKeys(room, META).channel, sealed.serialize())

    # -- receiving -------------------------------------------------------------

    def on_message(self, data: bytes) -> None:
        self.stats.received += 1
        try:
            envelope = Envelope.parse(data)
        except MalformedEnvelope as exc:
            self.stats.dropped += 1
            log.warning("dropped a malformed envelope bytes=%d: %s", len(data), exc)
            return
        if not self.store.mac.verify_envelope(envelope):
            self._count_forged()
            log.warning(
                "refused an envelope that fails verification kind=%s room=%s doc=%s "
                "origin=%s seq=%d bytes=%d",
                envelope.kind.name,
                quote(envelope.room),
                quote(envelope.doc),
                quote(envelope.origin),
                envelope.seq,
                len(data),
            )
            return
        registry = self.registry
        if registry is None:
            return
        key = (envelope.room, envelope.doc)
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.envelopes.append(envelope)
            return
        room = registry.rooms.get(RoomId(envelope.room))
        doc = room.docs.get(DocName(envelope.doc)) if room is not None else None
        if room is None or doc is None:
            return  # unloaded meanwhile
        try:
            if envelope.kind is EnvelopeKind.UPDATE:
                self._on_update(doc, envelope)
            elif envelope.kind is EnvelopeKind.AWARENESS:
                self._on_awareness(doc, envelope)
            else:
                self._on_control(room, envelope)
        except CollabError as exc:
            self.stats.dropped += 1
            log.warning(
                "dropped an envelope kind=%s room=%s doc=%s origin=%s: %s",
                envelope.kind.name,
                envelope.room,
                envelope.doc,
                quote(envelope.origin),
                exc,
            )

    def _on_update(self, doc: Document, envelope: Envelope) -> None:
        if envelope.kind is not EnvelopeKind.UPDATE:
            if envelope.kind is EnvelopeKind.AWARENESS:
                self._on_awareness(doc, envelope)
            return
        if envelope.seq <= doc.seq:
            return  # seen (a catch-up overlapped the subscription)
        self.store.note_seq(doc.room_id, doc.name, envelope.seq)
        if envelope.seq != doc.seq + 1:
            self.stats.gaps += 1
            log.warning(
                "gap room=%s doc=%s have=%d got=%d; catching up",
                doc.room_id,
                doc.name,
                doc.seq,
                envelope.seq,
            )
            self._catch_up(doc, [envelope])
            return
        if envelope.origin != self.node_id:
            doc.apply(envelope.payload)
            self.stats.applied += 1
            self._relay(doc, envelope.payload)
        doc.seq = envelope.seq
        if envelope.stream_id is not None:
            doc.position = envelope.stream_id
        doc.log_length += 1

    def _on_awareness(self, doc: Document, envelope: Envelope) -> None:
        if envelope.origin == self.node_id:
            return
        entries = decode_awareness(
            envelope.payload,
            max_entries=1 << 12,
            max_state_bytes=doc.limits.max_awareness_state_bytes,
        )
        stamped = [e for e in entries if _stamped(e)]
        if len(stamped) < len(entries):
            self.stats.dropped += 1
            log.warning(
                "dropped %d awareness states without a node's user stamp room=%s doc=%s origin=%s",
                len(entries) - len(stamped),
                doc.room_id,
                doc.name,
                quote(envelope.origin),
            )
        changed = doc.awareness.apply_remote(
            stamped, node=("node", envelope.origin), now=time.monotonic()
        )
        if changed and self.registry is not None:
            self.registry.on_remote_awareness(doc, encode_awareness(changed))

    def _on_control(self, room: Room, envelope: Envelope) -> None:
        if envelope.origin == self.node_id or self.registry is None:
            return
        control = envelope.control()
        action = control.get("action")
        if action == ControlAction.EVENT:
            event, data = control.get("event"), control.get("data")
            if not isinstance(event, str) or not isinstance(data, dict):
                raise MalformedEnvelope("an event envelope needs an event name and a map")
            self.registry.on_remote_event(room, event, data)
        elif action == ControlAction.DELETE:
            # The tombstone is the proof (an old delete envelope, replayed,
            # must not close the room made again since): check it first.
            log.info("room deleted by node=%s room=%s", quote(envelope.origin), room.id)
            self._spawn(self._check_deleted([room.id]))
        else:
            raise MalformedEnvelope(f"unknown control action {action!r}")

    def _relay(self, doc: Document, update: Update) -> None:
        registry = self.registry
        if registry is None:
            return
        room = registry.rooms.get(doc.room_id)
        if room is None or room.docs.get(doc.name) is not doc:
            # Still loading (``loaded`` applies what arrived meanwhile): no
            # connection reads it yet, and the load reads its policy itself.
            return
        if doc.name == META:
            room.policy.load(doc.engine)
            registry.on_policy_change(room)
        elif (chat := room.chat_log(doc.name)) is not None:
            chat.invalidate()  # the other nodes' client ids, before the next send
        registry.on_remote_update(doc, update)

    # -- catching up -------------------------------------------------------------

    def _catch_up(self, doc: Document, held: list[Envelope]) -> None:
        key = (doc.room_id, doc.name)
        if key in self._waiting:
            self._waiting[key].envelopes.extend(held)
            if key in self._reloads:
                return
        else:
            self._waiting[key] = _Pending(list(held))
        self._spawn(self.reconcile(doc))

    async def reconcile(self, doc: Document, *, check_lost: bool = False) -> bool:
        """Read ``doc`` back from Redis (one read at a time per document;
        envelopes wait meanwhile) and mark it due a re-seed if Redis does not
        hold what it holds: another Redis epoch, or, with ``check_lost``,
        updates Redis lacks. False if the room was deleted (dropped here)."""
        key = (doc.room_id, doc.name)
        running = self._reloads.get(key)
        if running is not None:
            deleted = not await asyncio.shield(running)
            if deleted or not check_lost:
                return not deleted
        self._waiting.setdefault(key, _Pending())
        task = asyncio.get_running_loop().create_task(self._reload(doc, check_lost=check_lost))
        self._reloads[key] = task

        def done(_: object) -> None:
            if self._reloads.get(key) is task:
                del self._reloads[key]

        task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _reload(self, doc: Document, *, check_lost: bool = False) -> bool:
        """Read the document back from Redis, apply it, relay what local
        members lack; mark it due a re-seed if Redis does not hold what it
        holds (see :meth:`reconcile`). If the room was deleted since this node
        loaded it, drop it instead (never write a deleted room back) and
        return False."""
        key = (doc.room_id, doc.name)
        try:
            # What it holds now, and what of that Redis may not have yet: an
            # update accepted or appended while the read is out is not lost.
            before = doc.engine.state_vector()
            unsaved = self.writer.unsaved(doc)
            stored, epoch = await self.store.reload(doc.room_id, doc.name)
            due = self.writer.due(doc)
            expected = due if due is not None else self.store.redis_epoch(doc.room_id, doc.name)
            new_epoch = epoch != expected
            # Loaded before the room's first append (no epoch known): only
            # what Redis lacks of this replica needs writing again.
            unknown = new_epoch and expected == "" and due is None
            lost = (check_lost or unknown) and self._holds_more(doc, before, stored, unsaved)
            for update in ([stored.snapshot] if stored.snapshot else []) + list(stored.updates):
                try:
                    doc.apply(update)
                except MalformedUpdate:
                    self.stats.dropped += 1
            doc.seq = stored.seq
            doc.position = stored.position
            doc.log_length = stored.log_length
            missing = doc.engine.diff(before)
            if len(missing) > 2:
                self._relay(doc, missing)
            if unknown and not lost:
                self.store.adopt_epoch(doc.room_id, doc.name, epoch)
            elif new_epoch or lost:
                why = "Redis lacks updates it holds" if lost else "a new Redis epoch"
                self._reseed_due(doc, epoch, why)
        except RoomDeletedElsewhere:
            self._waiting.pop(key, None)
            self._drop_deleted(doc.room_id)
            return False
        except UnverifiedData as exc:  # counted by the store; nothing applied
            log.error("catch-up refused room=%s doc=%s: %s", doc.room_id, doc.name, exc)
            self._waiting.pop(key, None)
            return True
        except OSError as exc:
            log.warning("catch-up failed room=%s doc=%s: %s", doc.room_id, doc.name, exc)
            self._waiting.pop(key, None)
            return True
        except Exception:
            # Never leave the document's envelopes waiting for a read that ended.
            log.exception("catch-up failed room=%s doc=%s", doc.room_id, doc.name)
            self._waiting.pop(key, None)
            return True
        pending = self._waiting.pop(key, None)
        if pending is not None:
            for envelope in pending.envelopes:
                self._on_update(doc, envelope)
        return True

    def _holds_more(
        self, doc: Document, held: StateVector, stored: StoredDoc, unsaved: list[Update]
    ) -> bool:
        """Whether ``doc``, when it held ``held`` (its state vector), had
        insertions that neither Redis nor its ``unsaved`` updates hold
        (deletions are not compared)."""
        engine = type(doc.engine)()
        updates = [stored.snapshot] if stored.snapshot else []
        for update in [*updates, *stored.updates, *unsaved]:
            try:
                engine.apply_update(update)
            except CollabError:
                continue
        theirs = decode_state_vector(engine.state_vector())
        ours = decode_state_vector(held)
        return any(clock > theirs.get(client, 0) for client, clock in ours.items())

    def _reseed_due(self, doc: Document, epoch: str, why: str) -> None:
        log.warning(
            "re-seeding room=%s doc=%s: %s (redis epoch %s)",
            doc.room_id,
            doc.name,
            why,
            epoch[:8] or "none",
        )
        self.writer.reseed_due(doc, epoch)
        self.store.reindex(doc.room_id)  # the room index may have lost it too
        registry = self.registry
        if registry is None:
            return
        room = registry.rooms.get(doc.room_id)
        if room is not None:
            room.info_saved = False  # and its record: write it again
        registry.schedule_flush()
        self._verify_soon()

    async def settle(self, doc: Document) -> None:
        """Apply every entry the document's stream holds beyond this replica
        (so a server write made now comes after them, e.g. chat order). If
        Redis has another epoch, read the document back instead (and re-seed
        it with the next flush)."""
        try:
            epoch, entries = await self.store.read_log(doc.room_id, doc.name, str(doc.position))
        except OSError as exc:
            log.warning("settle failed room=%s doc=%s: %s", doc.room_id, doc.name, exc)
            return
        expected = self.writer.due(doc)
        if expected is None:
            expected = self.store.redis_epoch(doc.room_id, doc.name)
        if epoch != expected or (entries and entries[0][1] > doc.seq + 1):
            # Another Redis, or trimmed by a compaction meanwhile: read it all.
            await self.reconcile(doc)
            return
        for stream_id, seq, origin, update in entries:
            if seq <= doc.seq:
                continue
            if origin != self.node_id:
                try:
                    doc.apply(update)
                except MalformedUpdate:
                    self.stats.dropped += 1
                else:
                    self.stats.applied += 1
                    self._relay(doc, update)
            doc.seq, doc.position = seq, stream_id
            doc.log_length += 1

    async def on_reconnect(self) -> None:
        """A subscription came back: catch every loaded document up, re-seeding
        those Redis lost (another epoch, or updates it lacks). Envelopes of
        every document wait until its catch-up is done."""
        registry = self.registry
        if registry is None:
            return
        self.stats.reconnects += 1
        self.store.reindex()  # Redis may have restarted empty
        docs = [d for room in list(registry.rooms.values()) for d in list(room.docs.values())]
        log.warning("redis reconnected: catching up %d documents", len(docs))
        for doc in docs:
            self._waiting.setdefault((doc.room_id, doc.name), _Pending())
        for doc in docs:
            await self.reconcile(doc, check_lost=True)
        registry.schedule_flush()

    # -- Redis epochs --------------------------------------------------------------

    def _suspect_new_epoch(self, room: RoomId, doc: DocName) -> None:
        """The store refused a compaction for the Redis epoch: check them all."""
        self._verify_soon()

    def _verify_soon(self) -> None:
        """Compare every loaded document's Redis epoch with Redis's (soon; one
        check at a time, one more if asked meanwhile)."""
        if self._verifying is not None and not self._verifying.done():
            self._verify_again = True
            return
        self._verifying = asyncio.get_running_loop().create_task(self._verify_loop())

    async def _verify_loop(self) -> None:
        while True:
            self._verify_again = False
            try:
                await self._verify_epochs()
            except Exception:
                stop_if_cancelled()
                log.exception("redis epoch check failed")
            if not self._verify_again:
                return

    async def _verify_epochs(self) -> None:
        """Read back every loaded document whose room's Redis epoch is not the
        one it was reconciled with (a restart seen through one room is a
        restart for all of them)."""
        registry = self.registry
        if registry is None:
            return
        docs = [d for room in list(registry.rooms.values()) for d in list(room.docs.values())]
        try:
            epochs = await self.store.room_epochs([d.room_id for d in docs])
        except OSError as exc:
            stop_if_cancelled()
            log.warning("redis epoch check failed: %s; will retry", exc)
            return
        for doc in docs:
            expected = self.writer.due(doc)
            if expected is None:
                expected = self.store.redis_epoch(doc.room_id, doc.name)
            if epochs.get(doc.room_id, "") != expected:
                await self.reconcile(doc)

    # -- rooms deleted elsewhere ----------------------------------------------------

    def _suspect_deleted(self, room_id: RoomId) -> None:
        """The store refused a write: the room may be deleted (its tombstone,
        checked now, says)."""
        self._spawn(self._check_deleted([room_id]))

    async def _check_deleted(self, rooms: list[RoomId]) -> None:
        """Drop those of ``rooms`` whose verified tombstone is newer than this
        node's copy (the delete envelope is a hint; the tombstone is the proof)."""
        if not rooms:
            return
        try:
            stale = await self.store.stale_rooms(rooms)
        except OSError as exc:
            stop_if_cancelled()
            log.warning("tombstone check failed: %s; will retry", exc)
            return
        for room_id in sorted(stale):
            self._drop_deleted(room_id)

    def _drop_deleted(self, room_id: RoomId) -> None:
        registry = self.registry
        if registry is None or room_id not in registry.rooms:
            return
        log.warning(
            "room deleted elsewhere room=%s: closing its connections, dropping this copy", room_id
        )
        registry.on_remote_delete(room_id)

    def _count_forged(self) -> None:
        self.stats.forged += 1

    def _count_reseed(self) -> None:
        self.stats.reseeds += 1

    # -- presence of dead nodes (and rooms deleted while we were not told) --------

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.awareness_timeout_s / 3)
            self.sweep(time.monotonic() - self.awareness_timeout_s)
            if self.registry is not None:
                # A delete envelope lost on the way (a failed publish) is
                # caught here: every loaded room's tombstone, one round trip.
                await self._check_deleted(list(self.registry.rooms))
                self._verify_soon()  # and a Redis that lost a room unnoticed

    def sweep(self, older_than: float) -> None:
        registry = self.registry
        if registry is None:
            return
        for room in list(registry.rooms.values()):
            for doc in list(room.docs.values()):
                removed = doc.awareness.sweep_remote(older_than=older_than)
                if removed:
                    registry.on_remote_awareness(doc, encode_awareness(removed))

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _stamped(entry: AwarenessEntry) -> bool:
    """Whether a remote awareness state carries the ``user`` a node stamps
    on every state it accepts (``Identity.as_json``: id, name, role)."""
    if entry.state is None:
        return True  # a removal
    try:
        user = orjson.loads(entry.state).get("user")
    except (orjson.JSONDecodeError, AttributeError):
        return False
    return (
        isinstance(user, dict)
        and isinstance(user.get("id"), str)
        and isinstance(user.get("name"), str)
        and user.get("role") in _ROLES
    )


RemoteHook = Callable[[Document, bytes], None]
