"""The Redis store: documents shared by every node (docs/architecture.md §6).

Keys and their shapes: rooms.redis_keys.

Audit streams: rooms.redis_audit.

``append_items`` runs one script per document and batch
(rooms.redis_scripts, rooms.redis_append): for each update, XADD it and
PUBLISH (SPUBLISH on a cluster) an envelope naming it, and claim the chat
message keys it carries. A batch of several documents is one pipeline (one
round trip); on a cluster, where scripts cannot be pipelined, the scripts run
concurrently.

Redis epochs (issue 14): each room has a random epoch in Redis
(``collab:{room}:epoch``), set by its first append. The store remembers, per
document, the epoch it last reconciled the document with (loaded it in, or
re-seeded it in) and names it in every append and compaction; the scripts
refuse a write when Redis holds another epoch or none (it restarted empty or
was replaced). Then :class:`~rooms.redis_append.AppendStatus` ``NEW_EPOCH``
(or :attr:`RedisStore.on_new_epoch` for a compaction) tells the replicator to
re-seed the document (rooms.replication) before anything else is appended.

Integrity (issue 13): every log entry, snapshot and tombstone carries a MAC
under the cluster key (rooms.integrity), computed here and checked on every
read. A log entry that fails is skipped (as if absent) and counted; a
snapshot or tombstone that fails makes the document unloadable
(:class:`UnverifiedData`): a node does not serve a document it cannot verify.

The webhook outbox (rooms.outbox, protocol.md §10.5): four keys on one
cluster slot (rooms.redis_keys.OUTBOX_KEYS), changed only by scripts, so
claims are atomic across nodes. Every record carries a MAC under a key
derived from the cluster key (rooms.outbox.OutboxMac): a node signs what it
delivers with the endpoint's secret, so a record no node wrote is dropped,
never sent.

Deletion (issue 13): ``delete_room`` leaves a tombstone for
:data:`TOMBSTONE_TTL_S`. Each document remembers the epoch it was loaded in
(the tombstone's, or none); every write names it, and the scripts refuse a
write from an epoch the tombstone has replaced (:class:`RoomDeletedElsewhere`
and :attr:`RedisStore.on_deleted`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from redis.exceptions import RedisError

from crdt.types import DocName, RoomId, Update
from rooms import redis_audit, redis_scripts
from rooms.audit import AuditRecord
from rooms.integrity import ClusterMac, MacKind
from rooms.names import META
from rooms.nodes import Replication
from rooms.outbox import OutboxEntry, OutboxMac, OutboxStats
from rooms.redis_append import AppendItem, AppendResult, AppendStatus, Pending, Reply, parse_reply
from rooms.redis_blobs import RedisBlobs
from rooms.redis_conn import RedisOptions, close_redis, connect_redis, redis_options
from rooms.redis_keys import (
    OUTBOX_KEYS,
    ROOMS_KEY,
    LogEntry,
    RedisKeys,
    RoomDeletedElsewhere,
    UnverifiedData,
    health_key,
    log_entry,
    room_info,
    script_entries,
)
from rooms.redis_keys import text as _text
from rooms.store import LogPosition, Revocation, RoomInfo, StoredBlob, StoredDoc

__all__ = [
    "TOMBSTONE_TTL_S",
    "AppendItem",
    "AppendResult",
    "AppendStatus",
    "RedisKeys",
    "RedisStore",
    "RoomDeletedElsewhere",
    "UnverifiedData",
    "connect_redis",
    "new_tombstone_epoch",
]

log = logging.getLogger("collab.redis")

#: How long a deleted room's tombstone stays: longer than any node holds a
#: copy of a room it cannot reach Redis about (a room unloads 30 s after its
#: last member leaves; clients time out in under a minute).
TOMBSTONE_TTL_S = 30 * 86_400

#: How long a node's probe write (check_writable) stays in Redis.
PROBE_TTL_MS = 60_000

#: Times an append retries after another node took its sequence numbers.
_APPEND_ATTEMPTS = 16


def _ignore_room(room: RoomId) -> None:
    return None


def _ignore() -> None:
    return None


def _ignore_doc(room: RoomId, doc: DocName) -> None:
    return None


def new_tombstone_epoch() -> str:
    """A deletion epoch: the time, then randomness (unique across nodes)."""
    return f"{int(time.time() * 1000)}-{secrets.token_hex(6)}"


class RedisStore:
    """A :class:`rooms.store.Store` in Redis, shared by all nodes."""

    #: Writes to this store reach the other nodes (the registry flushes eagerly).
    replicated = True

    def __init__(
        self,
        client: Any,
        *,
        cluster: bool,
        node_id: str,
        options: RedisOptions | None = None,
        cluster_key: str | None = None,
        tombstone_ttl_s: float = TOMBSTONE_TTL_S,
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.node_id = node_id
        #: How every connection is made (the subscribers use them too).
        self.options = options or RedisOptions()
        self.mac = ClusterMac(cluster_key)
        self.tombstone_ttl_s = tombstone_ttl_s
        self.publish_command = "SPUBLISH" if cluster else "PUBLISH"
        self._append = client.register_script(redis_scripts.APPEND)
        self._load = client.register_script(redis_scripts.LOAD)
        self._read_log = client.register_script(redis_scripts.READ_LOG)
        self._compact = client.register_script(redis_scripts.COMPACT)
        self._delete = client.register_script(redis_scripts.DELETE)
        self._save_info = client.register_script(redis_scripts.SAVE_INFO)
        self._outbox_mac = OutboxMac(cluster_key)
        self._outbox_add = client.register_script(redis_scripts.OUTBOX_ADD)
        self._outbox_claim = client.register_script(redis_scripts.OUTBOX_CLAIM)
        self._outbox_done = client.register_script(redis_scripts.OUTBOX_DONE)
        self._outbox_retry = client.register_script(redis_scripts.OUTBOX_RETRY)
        self._blobs = RedisBlobs(client, on_forged=lambda: self.on_forged())
        #: Rooms this node has put in the room index (a cluster indexes apart).
        self._known_rooms: set[str] = set()
        #: Per document: the epoch it was loaded in ('' before any deletion).
        self._epochs: dict[tuple[str, str], str] = {}
        #: Per document: the last sequence number known (the next append's base).
        self._seqs: dict[tuple[str, str], int] = {}
        #: Per document: the Redis epoch it was last reconciled with ('' for
        #: none: loaded before the room's first append).
        self._redis_epochs: dict[tuple[str, str], str] = {}
        #: Called with a room a write was refused for: deleted since loaded.
        self.on_deleted: Callable[[RoomId], None] = _ignore_room
        #: Called with a document a compaction was refused for: Redis holds
        #: another epoch (the document must be re-seeded).
        self.on_new_epoch: Callable[[RoomId, DocName], None] = _ignore_doc
        #: Called for every envelope-like thing refused for its MAC.
        self.on_forged: Callable[[], None] = _ignore

    @classmethod
    async def open(
        cls, url: str | RedisOptions, *, node_id: str, cluster_key: str | None = None
    ) -> RedisStore:
        """Connect (OSError with a clear message if Redis cannot be reached)."""
        options = redis_options(url) if isinstance(url, str) else url
        client, cluster = await connect_redis(options)
        return cls(
            client, cluster=cluster, node_id=node_id, options=options, cluster_key=cluster_key
        )

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    # -- what this node knows of each document -------------------------------------

    def note_seq(self, room: RoomId, doc: DocName, seq: int) -> None:
        """Another node's append was seen: the next append of ours comes after."""
        key = (room, doc)
        if seq > self._seqs.get(key, 0):
            self._seqs[key] = seq

    def forget(self, room: RoomId, doc: DocName) -> None:
        """The document left this node's memory: its epochs and sequence go too."""
        self._epochs.pop((room, doc), None)
        self._seqs.pop((room, doc), None)
        self._redis_epochs.pop((room, doc), None)

    def redis_epoch(self, room: RoomId, doc: DocName) -> str:
        """The Redis epoch the document was last reconciled with ('' for none)."""
        return self._redis_epochs.get((room, doc), "")

    def adopt_epoch(self, room: RoomId, doc: DocName, epoch: str) -> None:
        """The document is reconciled with Redis in ``epoch`` (it holds nothing
        Redis lacks): its appends name that epoch from now on."""
        self._redis_epochs[(room, doc)] = epoch

    def reindex(self, room: RoomId | None = None) -> None:
        """Put ``room`` (None: every room) in the room index again with its next
        write: Redis may have lost it (a re-seed after a restart)."""
        if room is None:
            self._known_rooms.clear()
        else:
            self._known_rooms.discard(room)

    def _epoch(self, room: str, doc: str) -> str:
        return self._epochs.get((room, doc), "")

    def tombstone_epoch(self, room: RoomId, doc: DocName) -> str:
        """The deletion epoch the document was loaded in ('' if its room was
        never deleted): a write naming another is from a copy older than a
        deletion."""
        return self._epoch(room, doc)

    def adopt_tombstone(self, room: RoomId, doc: DocName, epoch: str) -> None:
        """The room was deleted in ``epoch`` before this load, as another
        record of it says (PostgreSQL's, when Redis lost its tombstone)."""
        if not self._epoch(room, doc):
            self._epochs[(room, doc)] = epoch

    def _refused(self, room: RoomId, what: str) -> None:
        log.warning("%s refused: room=%s was deleted since it was loaded here", what, room)
        self.on_deleted(room)

    def _forged(self, what: str, room: str, doc: str) -> None:
        log.error("%s fails verification room=%s doc=%s; not used", what, room, doc)
        self.on_forged()

    # -- documents -------------------------------------------------------------

    async def load(self, room: RoomId, doc: DocName) -> StoredDoc:
        """The document as stored; from now on this node writes it in the
        epochs it finds. UnverifiedData if its snapshot or tombstone fails."""
        stored, epoch, redis_epoch = await self._read(room, doc)
        self._epochs[(room, doc)] = epoch or ""
        self._seqs[(room, doc)] = stored.seq
        self._redis_epochs[(room, doc)] = redis_epoch
        return stored

    async def reload(self, room: RoomId, doc: DocName) -> tuple[StoredDoc, str]:
        """The document as stored now, for a replica loaded before, and the
        room's Redis epoch ('' for none): when it is not :meth:`redis_epoch`,
        the replica must be re-seeded. RoomDeletedElsewhere if the room was
        deleted since; UnverifiedData."""
        stored, epoch, redis_epoch = await self._read(room, doc)
        if epoch is not None and epoch != self._epoch(room, doc):
            raise RoomDeletedElsewhere(room)
        self._seqs[(room, doc)] = stored.seq
        return stored, redis_epoch

    async def _read(self, room: RoomId, doc: DocName) -> tuple[StoredDoc, str | None, str]:
        keys = RedisKeys(room, doc)
        try:
            (
                snap,
                snap_id,
                entries,
                seq,
                snap_seq,
                snap_mac,
                epoch,
                tomb_mac,
                redis_epoch,
            ) = await self._load(keys=[keys.snap, keys.log, keys.seq, keys.tombstone, keys.epoch])
        except RedisError as exc:
            raise OSError(f"Redis load failed: {exc}") from exc
        if epoch:
            epoch = _text(epoch)
            if not self.mac.verify(
                bytes(tomb_mac or b""), MacKind.TOMBSTONE, room=room, position=epoch
            ):
                self._forged("the room's tombstone", room, doc)
                raise UnverifiedData(f"the tombstone of room={room} fails verification")
        if snap and not self.mac.verify(
            bytes(snap_mac or b""),
            MacKind.SNAPSHOT,
            room=room,
            doc=doc,
            seq=int(snap_seq),
            position=_text(snap_id),
            payload=bytes(snap),
        ):
            self._forged("the stored snapshot", room, doc)
            raise UnverifiedData(f"the stored snapshot of room={room} doc={doc} fails verification")
        parsed = script_entries(entries)
        verified = self._verified(room, doc, [log_entry(f) for _, f in parsed])
        updates = tuple(entry[3] for entry in verified)
        last = parsed[-1][0] if parsed else (_text(snap_id) if snap_id else "0-0")
        stored = StoredDoc(bytes(snap) if snap else None, updates, last, seq=int(seq))
        return stored, epoch or None, _text(redis_epoch) if redis_epoch else ""

    def _verified(self, room: str, doc: str, entries: Iterable[LogEntry | None]) -> list[LogEntry]:
        """The log entries whose MAC holds (the others are logged and counted)."""
        kept = []
        for entry in entries:
            if entry is not None and self.mac.verify(
                entry[0],
                MacKind.UPDATE,
                room=room,
                doc=doc,
                origin=entry[2],
                seq=entry[1],
                payload=entry[3],
            ):
                kept.append(entry)
            else:
                self._forged("a stored log entry", room, doc)
        return kept

    async def read_log(
        self, room: RoomId, doc: DocName, after: str
    ) -> tuple[str, list[tuple[str, int, str, bytes]]]:
        """The room's Redis epoch ('' for none) and the stream entries after
        ``after``: (id, seq, origin, update), oldest first; entries that fail
        their MAC are left out (and counted). Entries of another epoch than
        :meth:`redis_epoch` are not continuations of this replica's."""
        keys = RedisKeys(room, doc)
        try:
            redis_epoch, raw = await self._read_log(keys=[keys.log, keys.epoch], args=[after])
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        out = []
        for i, fields in script_entries(raw):
            for _, seq, origin, update in self._verified(room, doc, [log_entry(fields)]):
                out.append((i, seq, origin, update))
        return (_text(redis_epoch) if redis_epoch else ""), out

    async def current_seq(self, room: RoomId, doc: DocName) -> int:
        try:
            value = await self.client.get(RedisKeys(room, doc).seq)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return int(value or 0)

    async def append(self, room: RoomId, doc: DocName, updates: Sequence[Update]) -> LogPosition:
        """Append and publish (the Store interface: in whatever Redis epoch
        Redis holds; replicas use :meth:`append_items`). RoomDeletedElsewhere
        if the room was deleted since this node loaded the document."""
        (result,) = await self._append_all([AppendItem(room, doc, updates)], adopt=True)
        if result.status is AppendStatus.DELETED:
            raise RoomDeletedElsewhere(room)
        return result.position

    async def append_batch(
        self, items: Sequence[tuple[RoomId, DocName, Sequence[Update]]]
    ) -> list[LogPosition]:
        """Append (and publish) every update of ``items`` (the Store interface,
        as :meth:`append`). A document whose room was deleted since this node
        loaded it gets position ``"0-0"`` and its updates are dropped (the room
        goes: :attr:`on_deleted`). OSError if Redis fails, or stays contended
        :data:`_APPEND_ATTEMPTS` times."""
        results = await self._append_all(
            [AppendItem(room, doc, updates) for room, doc, updates in items], adopt=True
        )
        return [r.position for r in results]

    async def append_items(self, items: Sequence[AppendItem]) -> list[AppendResult]:
        """Append (and publish) every update of ``items``, each in its Redis
        epoch, in one round trip unless another node took the sequence
        numbers or a claimed chat message key meanwhile (then again, for
        those documents, without the duplicates). One result per item:
        APPENDED (with the duplicates left out), DELETED (updates dropped:
        :attr:`on_deleted`), or NEW_EPOCH (nothing written: re-seed first).
        OSError if Redis fails, or stays contended :data:`_APPEND_ATTEMPTS` times;
        nothing of an item that was not answered is known to be stored then."""
        return await self._append_all(items, adopt=False)

    async def _append_all(self, items: Sequence[AppendItem], *, adopt: bool) -> list[AppendResult]:
        work = [
            Pending(i, item, [(n, bytes(u)) for n, u in enumerate(item.updates)])
            for i, item in enumerate(items)
        ]
        results = [p.result for p in work]
        todo = [p for p in work if p.updates]
        written: set[str] = set()
        for _ in range(_APPEND_ATTEMPTS):
            if not todo:
                break
            replies = await self._run_appends(todo)
            again = []
            for p, reply in zip(todo, replies, strict=True):
                if self._settle_reply(p, reply, adopt=adopt):
                    again.append(p)
                elif reply.code == 1:
                    written.add(p.item.room)
            todo = again
        if todo:
            raise OSError(f"Redis append contended: {len(todo)} documents still behind")
        if self.cluster:
            for name in written - self._known_rooms:
                try:
                    await self.client.sadd(ROOMS_KEY, name)
                except RedisError as exc:
                    raise OSError(f"Redis append failed: {exc}") from exc
        self._known_rooms |= written
        return results

    def _settle_reply(self, p: Pending, reply: Reply, *, adopt: bool) -> bool:
        """Record what the script answered for ``p``; whether to run it again."""
        room, doc = p.item.room, p.item.doc
        key = (room, doc)
        if reply.code == 1:
            self._seqs[key] = reply.seq
            self._redis_epochs[key] = reply.epoch
            p.result.position = reply.position
            return False
        if reply.code == 0:  # taken: Redis says where the document is
            self._seqs[key] = reply.seq
            return True
        if reply.code == -3:  # claimed keys taken: append the rest
            p.drop(reply.taken)
            return bool(p.updates)
        if reply.code == -2:
            if adopt and p.item.epoch is None:
                self._redis_epochs[key] = reply.epoch
                return True
            p.result.status = AppendStatus.NEW_EPOCH
            p.result.epoch = reply.epoch
            return False
        p.result.status = AppendStatus.DELETED
        self._refused(room, "append")
        return False

    async def _run_appends(self, todo: Sequence[Pending]) -> list[Reply]:
        """One append script per document: every update with its sequence
        number and MAC; the script checks the numbers are still free, the
        Redis epoch is the one named, and the claimed keys are free."""
        prepared = []
        for p in todo:
            room, doc = p.item.room, p.item.doc
            names = RedisKeys(room, doc)
            first = self._seqs.get((room, doc), 0) + 1
            epoch = p.item.epoch if p.item.epoch is not None else self.redis_epoch(room, doc)
            claims = p.claims()
            args: list[Any] = [
                self.node_id,
                room,
                doc,
                self.publish_command,
                self._epoch(room, doc),
                first,
                epoch,
                secrets.token_hex(8),
                len(claims),
            ]
            for claim in claims:
                args += claim
            args.append(len(p.item.records))
            for name, value in p.item.records.items():
                args += [name, value]
            for n, (_, update) in enumerate(p.updates):
                mac = self.mac.sign(
                    MacKind.UPDATE,
                    room=room,
                    doc=doc,
                    origin=self.node_id,
                    seq=first + n,
                    payload=update,
                )
                args += [update, mac]
            keys = [
                names.log,
                names.seq,
                names.channel,
                names.docs,
                names.tombstone,
                names.epoch,
                names.ids,
            ]
            prepared.append((keys if self.cluster else [*keys, ROOMS_KEY], args))
        try:
            if self.cluster:
                raw = list(
                    await asyncio.gather(*(self._append(keys=k, args=a) for k, a in prepared))
                )
            else:
                # The context resets the pipeline, also when Redis is
                # unreachable (else asyncio reports an unclosed pipeline).
                async with self.client.pipeline(transaction=False) as pipe:
                    for k, a in prepared:
                        await self._append(keys=k, args=a, client=pipe)  # queued
                    raw = list(await pipe.execute())
        except RedisError as exc:
            raise OSError(f"Redis append failed: {exc}") from exc
        return [parse_reply(r) for r in raw]

    async def compact(
        self, room: RoomId, doc: DocName, snapshot: Update, upto: LogPosition, seq: int = 0
    ) -> None:
        """Store ``snapshot`` (covering the log up to ``upto``, sequence
        ``seq``) and rebuild the stream with only the entries after it, so no
        byte of the covered ones stays in Redis's memory. Refused (quietly)
        for an older snapshot than the stored one, or a deleted room."""
        keys = RedisKeys(room, doc)
        data = bytes(snapshot)
        mac = self.mac.sign(
            MacKind.SNAPSHOT, room=room, doc=doc, seq=seq, position=str(upto), payload=data
        )
        try:
            result = await self._compact(
                keys=[keys.snap, keys.log, keys.tombstone, keys.epoch],
                args=[
                    data,
                    str(upto),
                    seq,
                    mac,
                    self._epoch(room, doc),
                    self.redis_epoch(room, doc),
                ],
            )
        except RedisError as exc:
            raise OSError(f"Redis compaction failed: {exc}") from exc
        if int(result) == -1:
            self._refused(room, "compaction")
        elif int(result) == -2:
            log.warning("compaction refused: room=%s doc=%s has a new Redis epoch", room, doc)
            self.on_new_epoch(room, doc)

    async def try_lock(self, room: RoomId, doc: DocName, *, ttl_ms: int = 10_000) -> bool:
        """Take the document's compaction lock (for ``ttl_ms``) if nobody holds it."""
        try:
            return bool(
                await self.client.set(RedisKeys(room, doc).lock, self.node_id, nx=True, px=ttl_ms)
            )
        except RedisError as exc:
            raise OSError(f"Redis lock failed: {exc}") from exc

    async def unlock(self, room: RoomId, doc: DocName) -> None:
        try:
            await self.client.delete(RedisKeys(room, doc).lock)
        except RedisError as exc:
            raise OSError(f"Redis unlock failed: {exc}") from exc

    # -- deletion and tombstones -------------------------------------------------------

    async def delete_room(self, room: RoomId, *, epoch: str | None = None) -> None:
        """Delete every document key and the record, leave a tombstone (for
        :attr:`tombstone_ttl_s`; in ``epoch``, else a new one) that refuses
        any write from a copy loaded before, and take the room out of the
        index."""
        keys = RedisKeys(room, "")
        now_ms = int(time.time() * 1000)
        epoch = epoch or new_tombstone_epoch()
        mac = self.mac.sign(MacKind.TOMBSTONE, room=room, position=epoch)
        try:
            await self._delete(
                keys=[
                    keys.docs,
                    keys.info,
                    keys.tombstone,
                    keys.epoch,
                    keys.blobs,
                    keys.blob_index,
                ],
                args=[room, epoch, mac, now_ms, int(self.tombstone_ttl_s * 1000)],
            )
            await self.client.srem(ROOMS_KEY, room)
        except RedisError as exc:
            raise OSError(f"Redis delete failed: {exc}") from exc
        self._known_rooms.discard(room)
        for key in [k for k in self._epochs if k[0] == room]:
            self.forget(RoomId(key[0]), DocName(key[1]))

    async def stale_rooms(self, rooms: Iterable[RoomId]) -> set[RoomId]:
        """Those of ``rooms`` deleted since this node loaded one of their
        documents (a verified tombstone of another epoch)."""
        loaded: dict[str, set[str]] = {}
        for room, doc in self._epochs:
            loaded.setdefault(room, set()).add(self._epochs[(room, doc)])
        wanted = [r for r in rooms if r in loaded]
        if not wanted:
            return set()
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for room in wanted:
                    pipe.hmget(RedisKeys(room, "").tombstone, "e", "m")
                replies = await pipe.execute()
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        stale = set()
        for room, (epoch, mac) in zip(wanted, replies, strict=True):
            if epoch is None:
                continue
            if not self.mac.verify(
                bytes(mac or b""), MacKind.TOMBSTONE, room=room, position=_text(epoch)
            ):
                self._forged("the room's tombstone", room, "")
                continue
            if loaded[room] != {_text(epoch)}:
                stale.add(room)
        return stale

    async def room_epochs(self, rooms: Iterable[RoomId]) -> dict[RoomId, str]:
        """Each room's Redis epoch now ('' for none), in one round trip."""
        wanted = list(dict.fromkeys(rooms))
        if not wanted:
            return {}
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for room in wanted:
                    pipe.get(RedisKeys(room, "").epoch)
                replies = await pipe.execute()
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return {room: _text(e) if e else "" for room, e in zip(wanted, replies, strict=True)}

    async def list_rooms(self) -> list[RoomId]:
        try:
            members = await self.client.smembers(ROOMS_KEY)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return sorted(RoomId(_text(m)) for m in members)

    async def room_keys(self, room: RoomId) -> list[str]:
        """Every key of the room in Redis (for tests and operators)."""
        pattern = f"collab:{{{room}}}:*"
        found = [_text(k) async for k in self.client.scan_iter(match=pattern)]
        return sorted(found)

    # -- room records -------------------------------------------------------------

    async def save_room_info(self, info: RoomInfo) -> None:
        """Write the room's record and index it; refused (quietly, and the
        room goes: :attr:`on_deleted`) if the room was deleted since loaded."""
        fields = [
            "title",
            info.title,
            "retention_days",
            "" if info.retention_days is None else repr(info.retention_days),
            "created_ms",
            repr(info.created_ms),
            "last_activity_ms",
            repr(info.last_activity_ms),
        ]
        keys = RedisKeys(info.room, "")
        script_keys = [keys.info, keys.tombstone]
        try:
            result = await self._save_info(
                keys=script_keys if self.cluster else [*script_keys, ROOMS_KEY],
                args=[info.room, self._epoch(info.room, META), *fields],
            )
            if int(result) == -1:
                self._refused(info.room, "room record")
                return
            if self.cluster:
                await self.client.sadd(ROOMS_KEY, info.room)
        except RedisError as exc:
            raise OSError(f"Redis write failed: {exc}") from exc

    async def load_room_info(self, room: RoomId) -> RoomInfo | None:
        try:
            raw = await self.client.hgetall(RedisKeys(room, "").info)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return room_info(room, raw) if raw else None

    async def list_room_infos(self) -> list[RoomInfo]:
        rooms = await self.list_rooms()
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for room in rooms:
                    pipe.hgetall(RedisKeys(room, "").info)
                results = await pipe.execute()
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return [room_info(r, raw) for r, raw in zip(rooms, results, strict=True) if raw]

    # -- audit (rooms.redis_audit) ----------------------------------------------------

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        await redis_audit.append(self.client, records)

    async def read_audit(self, room: RoomId | None, *, limit: int = 1000) -> list[AuditRecord]:
        return await redis_audit.read(self.client, room, limit=limit)

    async def check_writable(self, *, probe: bool = False) -> None:
        """Nothing to check before a write: every write reports Redis's
        failures, and the subscriber's connection shows an outage
        (rooms.redis_bus). With ``probe`` (writes failed and nothing waits
        to be written), OSError unless a small write goes through: a server
        that is down, read-only or out of memory stays failing."""
        if not probe:
            return
        try:
            await self.client.set(health_key(self.node_id), "1", px=PROBE_TTL_MS)
        except RedisError as exc:
            raise OSError(f"Redis probe write failed: {exc}") from exc

    def replication(self, *, node_id: str, awareness_timeout_s: float) -> Replication:
        """Nodes sharing Redis: :class:`~rooms.replication.Replicator`
        (pub/sub fan-out, the stream log, re-seeds)."""
        from rooms.replication import Replicator  # it builds on this module

        return Replicator(self, node_id=node_id, awareness_timeout_s=awareness_timeout_s)

    async def close(self) -> None:
        await close_redis(self.client)

    # -- images (rooms.store.BlobStore: rooms.redis_blobs) ------------------------------

    async def put_blob(self, room: RoomId, digest: str, data: bytes, media_type: str) -> bool:
        """As the protocol says; RoomDeletedElsewhere (and :attr:`on_deleted`)
        if the room was deleted since this node loaded it."""
        tombstone = self._epoch(room, META)
        added = await self._blobs.put(room, digest, data, media_type, tombstone=tombstone)
        if added is None:
            self._refused(room, "image")
            raise RoomDeletedElsewhere(room)
        return added

    async def get_blob(self, room: RoomId, digest: str) -> tuple[bytes, str] | None:
        return await self._blobs.get(room, digest)

    async def list_blobs(self, room: RoomId) -> list[StoredBlob]:
        return await self._blobs.index(room)

    async def delete_blobs(self, room: RoomId, digests: Sequence[str]) -> int:
        return await self._blobs.delete(room, digests)

    async def list_documents(self, room: RoomId) -> list[DocName]:
        return await self._blobs.documents(room)

    # -- the webhook outbox (rooms.store.OutboxStore) ----------------------------------

    async def outbox_add(self, entries: Sequence[OutboxEntry]) -> None:
        if not entries:
            return
        k = OUTBOX_KEYS
        args: list[Any] = []
        for e in entries:
            sealed = self._outbox_mac.seal(e.record())
            args += [e.id, sealed, repr(float(e.created_ms)), repr(float(e.next_ms)), e.attempts]
        try:
            await self._outbox_add(keys=[k.due, k.created, k.entries, k.attempts], args=args)
        except RedisError as exc:
            raise OSError(f"Redis outbox write failed: {exc}") from exc

    async def outbox_claim(self, now_ms: float, limit: int, lease_ms: float) -> list[OutboxEntry]:
        if limit <= 0:
            return []
        k = OUTBOX_KEYS
        lease_end = float(now_ms + lease_ms)
        try:
            flat = await self._outbox_claim(
                keys=[k.due, k.entries, k.attempts],
                args=[repr(float(now_ms)), limit, repr(lease_end)],
            )
        except RedisError as exc:
            raise OSError(f"Redis outbox claim failed: {exc}") from exc
        claimed = []
        for i in range(0, len(flat), 3):
            entry_id, sealed, attempts = _text(flat[i]), bytes(flat[i + 1]), int(flat[i + 2])
            record = self._outbox_mac.open(sealed)
            entry = None
            if record is not None:
                try:
                    entry = OutboxEntry.from_record(record, next_ms=lease_end, attempts=attempts)
                except ValueError:
                    entry = None
            if entry is None or entry.id != entry_id:
                # Written by someone without the cluster key, or not a record:
                # never sent (it would go out under the endpoint's signature).
                log.error("webhook outbox entry fails verification id=%s; dropped", entry_id[:80])
                self.on_forged()
                await self.outbox_done(entry_id)
                continue
            claimed.append(entry)
        return claimed

    async def outbox_done(self, entry_id: str) -> None:
        k = OUTBOX_KEYS
        try:
            await self._outbox_done(keys=[k.due, k.created, k.entries, k.attempts], args=[entry_id])
        except RedisError as exc:
            raise OSError(f"Redis outbox write failed: {exc}") from exc

    async def outbox_retry(self, entry_id: str, next_ms: float, attempts: int) -> None:
        k = OUTBOX_KEYS
        try:
            await self._outbox_retry(
                keys=[k.due, k.entries, k.attempts],
                args=[entry_id, repr(float(next_ms)), attempts],
            )
        except RedisError as exc:
            raise OSError(f"Redis outbox write failed: {exc}") from exc

    async def outbox_stats(self) -> OutboxStats:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.zcard(OUTBOX_KEYS.created)
                pipe.zrange(OUTBOX_KEYS.created, 0, 0, withscores=True)
                count, oldest = await pipe.execute()
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return OutboxStats(int(count), float(oldest[0][1]) if oldest else None)

    # -- revocations -------------------------------------------------------------
    # Owned by the revocation work (issue 13, finding 5); the rest of the class
    # is not. Two keys on one cluster slot (the hash tag), changed together by
    # one script: a hash of revocations (id -> JSON) and a version every node
    # polls (rooms.revocations).

    REVOCATIONS_KEY = "collab-revocations:{revocations}"
    REVOCATIONS_VERSION_KEY = "collab-revocations:{revocations}:version"

    # KEYS: the hash, the version   ARGV: id, JSON (add) or id (delete)
    _REVOKE_LUA = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
"""
    _UNREVOKE_LUA = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1
"""
    _LOAD_REVOCATIONS_LUA = """
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])}
"""

    async def _revocation_script(self, lua: str, *args: str) -> Any:
        script = self.client.register_script(lua)  # cheap: a SHA; loaded on first use
        try:
            return await script(
                keys=[self.REVOCATIONS_KEY, self.REVOCATIONS_VERSION_KEY], args=list(args)
            )
        except RedisError as exc:
            raise OSError(f"Redis revocation script failed: {exc}") from exc

    async def add_revocation(self, revocation: Revocation) -> None:
        data = orjson.dumps(revocation.as_json()).decode()
        await self._revocation_script(self._REVOKE_LUA, revocation.id, data)

    async def delete_revocation(self, revocation_id: str) -> bool:
        return bool(await self._revocation_script(self._UNREVOKE_LUA, revocation_id))

    async def load_revocations(self) -> tuple[int, list[Revocation]]:
        version, flat = await self._revocation_script(self._LOAD_REVOCATIONS_LUA)
        revocations = []
        for i in range(0, len(flat), 2):
            try:
                revocations.append(Revocation.from_json(orjson.loads(flat[i + 1])))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.error("unreadable revocation skipped id=%s", _text(flat[i])[:64])
        return int(version), revocations

    async def revocation_version(self) -> int:
        try:
            return int(await self.client.get(self.REVOCATIONS_VERSION_KEY) or 0)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc

    async def purge_revocations(self, now_ms: float) -> int:
        _, revocations = await self.load_revocations()
        expired = [r.id for r in revocations if r.until_ms <= now_ms]
        if not expired:
            return 0
        try:
            return int(await self.client.hdel(self.REVOCATIONS_KEY, *expired))
        except RedisError as exc:
            raise OSError(f"Redis revocation purge failed: {exc}") from exc
