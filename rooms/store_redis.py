"""The Redis store: documents shared by every node (design.md §5).

Keys of a room are hash-tagged with the room id verbatim, so Redis Cluster
keeps a room on one slot and an operator can read them::

    collab:{<room>}:doc:<doc>:log    stream of updates (fields u, s, o)
    collab:{<room>}:doc:<doc>:seq    the document's sequence counter
    collab:{<room>}:doc:<doc>:snap   hash: d (snapshot), id (stream id it covers), s (seq)
    collab:{<room>}:doc:<doc>:ch     the document's pub/sub channel
    collab:{<room>}:doc:<doc>:lock   the compaction lock
    collab:{<room>}:docs             set of the room's document names
    collab:{<room>}:info             hash: the room's record
    collab:rooms                     set of room ids
    collab-audit:{<room>}            stream: the room's audit records (kept on delete)
    collab-audit:-                   stream: audit records of no room (admin logins)

Audit streams are never trimmed: a record stays until an operator removes it,
so no volume of other records (refused connects, failed logins) can push a
room's real ones out. They are keys of their own, outside ``collab:{<room>}:*``
(document logs are trimmed by compaction, room keys deleted with the room);
what bounds them is that repeated failures are summarised before they are
written (rooms.incidents).

``append`` runs one script per document and batch: for each update, INCR the
sequence, XADD the update and PUBLISH (SPUBLISH on a cluster) an envelope
naming both. A batch of several documents is one pipeline (one round trip);
on a cluster, where scripts cannot be pipelined, the scripts run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditAction, AuditRecord
from rooms.store import LogPosition, RoomInfo, StoredDoc

__all__ = ["RedisKeys", "RedisStore", "connect_redis"]

log = logging.getLogger("collab.redis")

ROOMS_KEY = "collab:rooms"

# KEYS: log, seq, ch, docs   ARGV: origin, room, doc, publish command, update...
_APPEND = """
local seq, id
for i = 5, #ARGV do
  seq = redis.call('INCR', KEYS[2])
  id = redis.call('XADD', KEYS[1], '*', 'u', ARGV[i], 's', seq, 'o', ARGV[1])
  redis.call(ARGV[4], KEYS[3], cmsgpack.pack({1, 1, ARGV[1], ARGV[2], ARGV[3], seq, id, ARGV[i]}))
end
redis.call('SADD', KEYS[4], ARGV[3])
return {seq, id}
"""

# KEYS: snap, log, seq   ARGV: after (stream id or '')
_LOAD = """
local snap = redis.call('HMGET', KEYS[1], 'd', 'id', 's')
local entries
if snap[2] then
  entries = redis.call('XRANGE', KEYS[2], '(' .. snap[2], '+')
else
  entries = redis.call('XRANGE', KEYS[2], '-', '+')
end
local seq = redis.call('GET', KEYS[3]) or '0'
return {snap[1] or false, snap[2] or false, entries, seq, snap[3] or '0'}
"""

# KEYS: snap, log   ARGV: data, upto id, upto seq
# Refuses a snapshot that covers less than the stored one (equal coverage
# replaces it: a later snapshot, e.g. after a redaction), so two nodes
# compacting at once cannot trim entries the surviving snapshot lacks.
_COMPACT = """
local function parse(id)
  local ms, sq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(sq)
end
local cur = redis.call('HGET', KEYS[1], 'id')
local ms, sq = parse(ARGV[2])
if cur then
  local cms, csq = parse(cur)
  if cms > ms or (cms == ms and csq > sq) then return 0 end
end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'id', ARGV[2], 's', ARGV[3])
redis.call('XTRIM', KEYS[2], 'MINID', ms .. '-' .. (sq + 1))
return 1
"""

# KEYS: docs, info   ARGV: room
_DELETE = """
local docs = redis.call('SMEMBERS', KEYS[1])
for _, doc in ipairs(docs) do
  local base = 'collab:{' .. ARGV[1] .. '}:doc:' .. doc
  redis.call('DEL', base .. ':log', base .. ':seq', base .. ':snap', base .. ':lock')
end
redis.call('DEL', KEYS[1], KEYS[2])
return #docs
"""


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Key and channel names of one document."""

    room: str
    doc: str

    @property
    def base(self) -> str:
        return f"collab:{{{self.room}}}:doc:{self.doc}"

    @property
    def log(self) -> str:
        return self.base + ":log"

    @property
    def seq(self) -> str:
        return self.base + ":seq"

    @property
    def snap(self) -> str:
        return self.base + ":snap"

    @property
    def channel(self) -> str:
        return self.base + ":ch"

    @property
    def lock(self) -> str:
        return self.base + ":lock"

    @property
    def docs(self) -> str:
        return f"collab:{{{self.room}}}:docs"

    @property
    def info(self) -> str:
        return f"collab:{{{self.room}}}:info"


def _audit_key(room: str | None) -> str:
    return f"collab-audit:{{{room}}}" if room is not None else "collab-audit:-"


async def connect_redis(url: str, *, timeout_s: float = 5.0) -> tuple[Any, bool]:
    """A command client for ``url`` and whether it is a Redis Cluster.

    Raises OSError with a clear message when Redis cannot be reached.
    """
    probe = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        info = await probe.info("cluster")
    except (RedisError, OSError) as exc:
        raise OSError(f"cannot reach Redis at {_safe_url(url)}: {exc}") from None
    finally:
        await probe.aclose()
    if info.get("cluster_enabled"):
        client: Any = RedisCluster.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        await client.initialize()
        return client, True
    return aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s), False


def _safe_url(url: str) -> str:
    """The URL without a password."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


class RedisStore:
    """A :class:`rooms.store.Store` in Redis, shared by all nodes."""

    #: Writes to this store reach the other nodes (the registry flushes eagerly).
    replicated = True

    def __init__(self, client: Any, *, cluster: bool, node_id: str) -> None:
        self.client = client
        self.cluster = cluster
        self.node_id = node_id
        self.publish_command = "SPUBLISH" if cluster else "PUBLISH"
        self._append = client.register_script(_APPEND)
        self._load = client.register_script(_LOAD)
        self._compact = client.register_script(_COMPACT)
        self._delete = client.register_script(_DELETE)
        self._known_rooms: set[str] = set()

    @classmethod
    async def open(cls, url: str, *, node_id: str) -> RedisStore:
        client, cluster = await connect_redis(url)
        return cls(client, cluster=cluster, node_id=node_id)

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    # -- documents -------------------------------------------------------------

    async def load(self, room: RoomId, doc: DocName) -> StoredDoc:
        keys = RedisKeys(room, doc)
        try:
            snap, snap_id, entries, seq, _snap_seq = await self._load(
                keys=[keys.snap, keys.log, keys.seq]
            )
        except RedisError as exc:
            raise OSError(f"Redis load failed: {exc}") from exc
        updates = tuple(bytes(fields[b"u"]) for _, fields in _entries(entries))
        last = _entries(entries)[-1][0] if entries else (_text(snap_id) if snap_id else "0-0")
        return StoredDoc(bytes(snap) if snap else None, updates, last, seq=int(seq))

    async def read_log(
        self, room: RoomId, doc: DocName, after: str
    ) -> list[tuple[str, int, str, bytes]]:
        """Stream entries after ``after``: (id, seq, origin, update), oldest first."""
        keys = RedisKeys(room, doc)
        try:
            raw = await self.client.xrange(keys.log, min=f"({after}", max="+")
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return [(_text(i), int(f[b"s"]), _text(f[b"o"]), bytes(f[b"u"])) for i, f in raw]

    async def current_seq(self, room: RoomId, doc: DocName) -> int:
        try:
            value = await self.client.get(RedisKeys(room, doc).seq)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return int(value or 0)

    async def append(self, room: RoomId, doc: DocName, updates: Sequence[Update]) -> LogPosition:
        (position,) = await self.append_batch([(room, doc, updates)])
        return position

    async def append_batch(
        self, items: Sequence[tuple[RoomId, DocName, Sequence[Update]]]
    ) -> list[LogPosition]:
        """Append (and publish) every update of ``items`` in one round trip."""
        calls = [
            (
                RedisKeys(room, doc),
                [self.node_id, room, doc, self.publish_command, *(bytes(u) for u in updates)],
            )
            for room, doc, updates in items
            if updates
        ]
        new_rooms = {room for room, _, _ in items} - self._known_rooms
        try:
            if self.cluster:
                replies = await asyncio.gather(
                    *(
                        self._append(keys=[k.log, k.seq, k.channel, k.docs], args=args)
                        for k, args in calls
                    )
                )
                for room in new_rooms:
                    await self.client.sadd(ROOMS_KEY, room)
            else:
                pipe = self.client.pipeline(transaction=False)
                for k, args in calls:
                    await self._append(  # queues the call on the pipeline
                        keys=[k.log, k.seq, k.channel, k.docs], args=args, client=pipe
                    )
                for room in new_rooms:
                    pipe.sadd(ROOMS_KEY, room)
                replies = (await pipe.execute())[: len(calls)]
        except RedisError as exc:
            raise OSError(f"Redis append failed: {exc}") from exc
        self._known_rooms |= new_rooms
        by_doc = iter(replies)
        return [_text(next(by_doc)[1]) if updates else "0-0" for _, _, updates in items]

    async def compact(
        self, room: RoomId, doc: DocName, snapshot: Update, upto: LogPosition, seq: int = 0
    ) -> None:
        keys = RedisKeys(room, doc)
        try:
            await self._compact(keys=[keys.snap, keys.log], args=[bytes(snapshot), str(upto), seq])
        except RedisError as exc:
            raise OSError(f"Redis compaction failed: {exc}") from exc

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

    async def delete_room(self, room: RoomId) -> None:
        keys = RedisKeys(room, "")
        try:
            await self._delete(keys=[keys.docs, keys.info], args=[room])
            await self.client.srem(ROOMS_KEY, room)
        except RedisError as exc:
            raise OSError(f"Redis delete failed: {exc}") from exc
        self._known_rooms.discard(room)

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
        fields = {
            "title": info.title,
            "retention_days": "" if info.retention_days is None else repr(info.retention_days),
            "created_ms": repr(info.created_ms),
            "last_activity_ms": repr(info.last_activity_ms),
        }
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(RedisKeys(info.room, "").info, mapping=fields)
            pipe.sadd(ROOMS_KEY, info.room)
            await pipe.execute()
        except RedisError as exc:
            raise OSError(f"Redis write failed: {exc}") from exc

    async def load_room_info(self, room: RoomId) -> RoomInfo | None:
        try:
            raw = await self.client.hgetall(RedisKeys(room, "").info)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return _room_info(room, raw) if raw else None

    async def list_room_infos(self) -> list[RoomInfo]:
        rooms = await self.list_rooms()
        try:
            pipe = self.client.pipeline(transaction=False)
            for room in rooms:
                pipe.hgetall(RedisKeys(room, "").info)
            results = await pipe.execute()
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        return [_room_info(r, raw) for r, raw in zip(rooms, results, strict=True) if raw]

    # -- audit -------------------------------------------------------------

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append ``records`` to their rooms' streams in one round trip.

        No MAXLEN: an audit stream is never trimmed (see the module docstring).
        """
        try:
            pipe = self.client.pipeline(transaction=False)
            for r in records:
                pipe.xadd(
                    _audit_key(r.room),
                    {
                        "ts": repr(r.ts),
                        "room": r.room or "",
                        "user": r.user_id or "",
                        "role": r.role or "",
                        "action": r.action.value,
                        "outcome": r.outcome,
                        "detail": r.detail,
                    },
                )
            await pipe.execute()
        except RedisError as exc:
            raise OSError(f"Redis audit write failed: {exc}") from exc

    async def read_audit(self, room: RoomId | None, *, limit: int = 1000) -> list[AuditRecord]:
        if limit <= 0:
            return []
        try:
            raw = await self.client.xrevrange(_audit_key(room), count=limit)
        except RedisError as exc:
            raise OSError(f"Redis read failed: {exc}") from exc
        records = []
        for _, f in reversed(raw):
            g = {_text(k): _text(v) for k, v in f.items()}
            records.append(
                AuditRecord(
                    float(g["ts"]),
                    g["room"] or None,
                    g["user"] or None,
                    g["role"] or None,
                    AuditAction(g["action"]),
                    g["outcome"],
                    g["detail"],
                )
            )
        return records

    async def close(self) -> None:
        await self.client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(raw: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """XRANGE reply from a script: [[id, [k, v, k, v...]], ...]."""
    out = []
    for entry_id, flat in raw:
        fields = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
        out.append((_text(entry_id), fields))
    return out


def _room_info(room: RoomId, raw: dict[bytes, bytes]) -> RoomInfo:
    g = {_text(k): _text(v) for k, v in raw.items()}
    retention = g.get("retention_days", "")
    return RoomInfo(
        room,
        g.get("title", ""),
        float(retention) if retention else None,
        float(g.get("created_ms", 0)),
        float(g.get("last_activity_ms", 0)),
    )
