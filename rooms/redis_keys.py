"""Names and shapes of the Redis store's keys (rooms.store_redis), and its errors.

Keys of a room are hash-tagged with the room id verbatim, so Redis Cluster
keeps a room on one slot and an operator can read them::

    collab:{<room>}:doc:<doc>:log    stream of updates (fields u, s, o, m)
    collab:{<room>}:doc:<doc>:seq    the document's sequence counter
    collab:{<room>}:doc:<doc>:snap   hash: d (snapshot), id (stream id it covers), s (seq), m (MAC)
    collab:{<room>}:doc:<doc>:ch     the document's pub/sub channel
    collab:{<room>}:doc:<doc>:lock   the compaction lock
    collab:{<room>}:doc:<doc>:ids    hash: chat message keys, JSON [user, clientMessageId]
                                     -> "<message id>|<ts>" (claimed with each append)
    collab:{<room>}:docs             set of the room's document names
    collab:{<room>}:info             hash: the room's record
    collab:{<room>}:epoch            the room's Redis epoch: random, set by the first
                                     append; absent after Redis lost the room's data
    collab:{<room>}:deleted          hash: the room's tombstone (e epoch, m MAC, at time)
    collab:{<room>}:blobs            hash: the room's images, digest -> "<media type>\n<bytes>"
                                     (rooms.redis_blobs; the digest is their SHA-256)
    collab:{<room>}:blob-index       hash: digest -> "<size> <created ms>" (listing without
                                     reading the bytes)
    collab:rooms                     set of room ids
    collab:health:<node>             a node's probe write while writes fail (expires)
    collab-audit:{<room>}            stream: the room's audit records (kept on delete)
    collab-audit:-                   stream: audit records of no room (admin logins)
    collab-outbox:{outbox}:due       sorted set: webhook outbox entry id -> when due (ms)
    collab-outbox:{outbox}:created   sorted set: entry id -> when created (ms)
    collab-outbox:{outbox}:entries   hash: entry id -> "<hex MAC>.<record>" (rooms.outbox)
    collab-outbox:{outbox}:attempts  hash: entry id -> attempts made
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crdt.types import RoomId
from rooms.store import RoomInfo

__all__ = [
    "OUTBOX_KEYS",
    "ROOMS_KEY",
    "LogEntry",
    "OutboxKeys",
    "RedisKeys",
    "RoomDeletedElsewhere",
    "UnverifiedData",
    "audit_key",
    "health_key",
    "log_entry",
    "room_info",
    "script_entries",
    "text",
]

ROOMS_KEY = "collab:rooms"


@dataclass(frozen=True, slots=True)
class OutboxKeys:
    """The webhook outbox's keys: one hash tag, so one cluster slot (the
    scripts touch them together)."""

    due: str = "collab-outbox:{outbox}:due"
    created: str = "collab-outbox:{outbox}:created"
    entries: str = "collab-outbox:{outbox}:entries"
    attempts: str = "collab-outbox:{outbox}:attempts"


OUTBOX_KEYS = OutboxKeys()


class UnverifiedData(OSError):
    """What Redis holds for a document fails its MAC (someone wrote it who
    does not hold the cluster key): the document is not served."""


class RoomDeletedElsewhere(OSError):
    """The room was deleted (by another node) since this node loaded it."""

    def __init__(self, room: RoomId) -> None:
        super().__init__(f"room {room} was deleted since it was loaded here")
        self.room = room


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
    def ids(self) -> str:
        return self.base + ":ids"

    @property
    def epoch(self) -> str:
        return f"collab:{{{self.room}}}:epoch"

    @property
    def docs(self) -> str:
        return f"collab:{{{self.room}}}:docs"

    @property
    def info(self) -> str:
        return f"collab:{{{self.room}}}:info"

    @property
    def tombstone(self) -> str:
        return f"collab:{{{self.room}}}:deleted"

    @property
    def blobs(self) -> str:
        return f"collab:{{{self.room}}}:blobs"

    @property
    def blob_index(self) -> str:
        return f"collab:{{{self.room}}}:blob-index"


def audit_key(room: str | None) -> str:
    return f"collab-audit:{{{room}}}" if room is not None else "collab-audit:-"


def health_key(node_id: str) -> str:
    return f"collab:health:{node_id}"


#: A stream entry: (MAC, seq, origin, update).
LogEntry = tuple[bytes, int, str, bytes]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def log_entry(fields: dict[bytes, bytes]) -> LogEntry | None:
    """A stream entry's fields, or None if they are not an entry's."""
    try:
        mac = bytes(fields.get(b"m", b""))
        return mac, int(fields[b"s"]), text(fields[b"o"]), bytes(fields[b"u"])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


def script_entries(raw: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """XRANGE reply from a script: [[id, [k, v, k, v...]], ...]."""
    out = []
    for entry_id, flat in raw:
        fields = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
        out.append((text(entry_id), fields))
    return out


def room_info(room: RoomId, raw: dict[bytes, bytes]) -> RoomInfo:
    g = {text(k): text(v) for k, v in raw.items()}
    retention = g.get("retention_days", "")
    return RoomInfo(
        room,
        g.get("title", ""),
        float(retention) if retention else None,
        float(g.get("created_ms", 0)),
        float(g.get("last_activity_ms", 0)),
    )
