"""The store interface: where documents live between process lifetimes.

A document is stored as an optional snapshot (one full-state update) plus a
log of updates appended after it. Applying the snapshot and then the log, in
any order, rebuilds the document: Yjs updates are idempotent and commute.

Implementations: :mod:`rooms.store_memory` (tests, ``--store memory``),
:mod:`rooms.store_sqlite` (the embedded default), :mod:`rooms.store_postgres`
and :mod:`rooms.store_redis` (shared by several nodes). All pass the same
contract tests (tests/unit/test_store_contract.py). A store names the
replication strategy nodes sharing it use (:meth:`Store.replication`), so
nothing above it asks which store it is.

:class:`OutboxStore` is the webhook outbox (rooms.outbox) a store keeps
beside the documents; every store here implements it
(tests/unit/test_store_outbox.py). It is a protocol of its own so that a
store written elsewhere (``create_app(store=...)``) may leave it out:
``collab.webhooks`` refuses to start on such a store.

:class:`BlobStore` holds a room's images (collab.images): content-addressed
blobs, deleted with the room. Every store here implements it
(tests/unit/test_store_blobs.py); a store that does not answers the image
routes with ``images_unavailable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditRecord
from rooms.outbox import OutboxEntry, OutboxStats

if TYPE_CHECKING:
    from rooms.nodes import Replication

__all__ = [
    "BLOB_MEDIA_TYPES",
    "IMAGE_MEDIA_TYPES",
    "RESTORE_MEDIA_TYPE",
    "TEMPLATE_MEDIA_TYPE",
    "BlobStore",
    "LogPosition",
    "OutboxStore",
    "Revocation",
    "RoomInfo",
    "Store",
    "StoredBlob",
    "StoredDoc",
]

#: Where a log ends, as returned by :meth:`Store.append`; opaque to callers
#: (a row number in SQLite, a stream id in Redis).
LogPosition = int | str


@dataclass(frozen=True, slots=True)
class StoredDoc:
    """A document as the store holds it."""

    snapshot: Update | None
    updates: tuple[Update, ...]
    #: The position of the last update (pass to :meth:`Store.compact`).
    position: LogPosition
    #: The document's sequence number (replicated stores; 0 otherwise).
    seq: int = 0

    @property
    def log_length(self) -> int:
        return len(self.updates)


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """A room's record: its settings and activity, for listing and retention."""

    room: RoomId
    title: str = ""
    #: Days after the last activity before the room is purged; None: the default.
    retention_days: float | None = None
    created_ms: float = 0.0
    last_activity_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked token (``jti``) or user (``sub``), in one room or all, until
    ``until_ms`` (protocol.md §10.1). Exactly one of ``jti`` and ``sub`` is set."""

    id: str
    until_ms: float
    created_ms: float
    #: The name of the admin key that revoked (for the audit and the listing).
    by: str
    jti: str | None = None
    sub: str | None = None
    room: RoomId | None = None

    def applies(self, *, sub: str, jti: str | None, room: str | None, now_ms: float) -> bool:
        """Whether a token of ``sub`` (with ``jti``) is revoked for ``room`` now.
        Expired revocations apply to nothing; a sub revocation covers every
        token of that user, whenever it was issued."""
        if now_ms >= self.until_ms:
            return False
        if self.room is not None and room != self.room:
            return False
        if self.jti is not None:
            return jti == self.jti
        return sub == self.sub

    def as_json(self) -> dict[str, Any]:
        """The admin API's shape (and the Redis store's)."""
        return {
            "id": self.id,
            "jti": self.jti,
            "sub": self.sub,
            "room": self.room,
            "until": self.until_ms,
            "createdAt": self.created_ms,
            "by": self.by,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Revocation:
        """The inverse of :meth:`as_json` (KeyError or TypeError if it is not one)."""
        room = data.get("room")
        return cls(
            id=str(data["id"]),
            until_ms=float(data["until"]),
            created_ms=float(data["createdAt"]),
            by=str(data["by"]),
            jti=None if data.get("jti") is None else str(data["jti"]),
            sub=None if data.get("sub") is None else str(data["sub"]),
            room=None if room is None else RoomId(str(room)),
        )


class Store(Protocol):
    """Durable documents. Every method may raise ``OSError`` (or a subclass)
    when the backing storage fails; callers keep their in-memory state and
    retry later."""

    async def load(self, room: RoomId, doc: DocName) -> StoredDoc:
        """The stored snapshot and log of a document (empty if never stored)."""

    async def append(self, room: RoomId, doc: DocName, updates: Sequence[Update]) -> LogPosition:
        """Append updates to the log, atomically; return the new end position."""

    async def append_batch(
        self, items: Sequence[tuple[RoomId, DocName, Sequence[Update]]]
    ) -> list[LogPosition]:
        """Append several documents' updates at once; one end position each."""

    async def compact(
        self, room: RoomId, doc: DocName, snapshot: Update, upto: LogPosition, seq: int = 0
    ) -> None:
        """Replace the snapshot and drop log entries up to ``upto`` (inclusive).

        ``snapshot`` must contain every update up to ``upto`` (the document's
        sequence number ``seq``, where the store counts them); entries after
        it are kept.
        """

    async def check_writable(self, *, probe: bool = False) -> None:
        """OSError if the store can tell, without being given a write, that it
        cannot take one (its file was replaced, its server is gone); with
        ``probe``, also unless a small write goes through (rooms.outage)."""

    def replication(self, *, node_id: str, awareness_timeout_s: float) -> Replication:
        """How nodes sharing this store keep their rooms in step (rooms.nodes):
        :class:`~rooms.nodes.SingleNode` for a store one process owns."""

    async def delete_room(self, room: RoomId) -> None:
        """Remove every document, snapshot, log entry, blob (:class:`BlobStore`)
        and the record of a room (its audit records stay)."""

    async def list_rooms(self) -> list[RoomId]:
        """Ids of every room with stored documents or a record, sorted."""

    async def save_room_info(self, info: RoomInfo) -> None:
        """Create or replace a room's record."""

    async def load_room_info(self, room: RoomId) -> RoomInfo | None:
        """A room's record, or None."""

    async def list_room_infos(self) -> list[RoomInfo]:
        """Every room record, sorted by room id."""

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append audit records (never deleted with a room)."""

    async def read_audit(self, room: RoomId | None, *, limit: int = 1000) -> list[AuditRecord]:
        """The latest ``limit`` records of a room (or of the server: None), oldest first."""

    # -- revocations (protocol.md §10.1) ---------------------------------------------

    async def add_revocation(self, revocation: Revocation) -> None:
        """Store ``revocation`` (replacing one of its id) and advance the
        revocation version, in one step."""

    async def delete_revocation(self, revocation_id: str) -> bool:
        """Remove a revocation and advance the version; False if there was none."""

    async def load_revocations(self) -> tuple[int, list[Revocation]]:
        """The revocation version and every stored revocation (expired ones
        too, until purged), read together."""

    async def revocation_version(self) -> int:
        """A number that changes whenever a revocation is added or deleted
        (every node polls it to apply revocations made elsewhere)."""

    async def purge_revocations(self, now_ms: float) -> int:
        """Delete revocations whose ``until_ms`` is at or before ``now_ms``;
        return how many (the version does not change: they apply to nothing)."""

    async def close(self) -> None:
        """Release the backing storage; the store is unusable afterwards."""


@runtime_checkable
class OutboxStore(Protocol):
    """The webhook outbox (rooms.outbox, protocol.md §10.5): entries kept
    until delivered or given up, so a restart loses none. Every method may
    raise ``OSError``; the caller keeps what it has and tries again.

    On a store several nodes share, a claim is atomic: two claims never
    return the same entry while its lease runs.
    """

    async def outbox_add(self, entries: Sequence[OutboxEntry]) -> None:
        """Store ``entries``, all or none. An id the outbox holds already is
        left as it is (adding again after a failure that did write is safe)."""

    async def outbox_claim(self, now_ms: float, limit: int, lease_ms: float) -> list[OutboxEntry]:
        """Up to ``limit`` entries due at ``now_ms`` (``next_ms <= now_ms``),
        earliest due first; in the same step each one's ``next_ms`` becomes
        ``now_ms + lease_ms`` (the returned entries carry it), so no claim
        returns it again before then unless it is rescheduled."""

    async def outbox_done(self, entry_id: str) -> None:
        """Delete an entry (delivered or given up); nothing if it is gone."""

    async def outbox_retry(self, entry_id: str, next_ms: float, attempts: int) -> None:
        """Make an entry due at ``next_ms`` with ``attempts`` made; nothing if
        it is gone (never brings one back)."""

    async def outbox_stats(self) -> OutboxStats:
        """How many entries wait, and the creation time of the oldest."""


#: What a room's blobs may be (the Redis store serves nothing else back):
#: images (collab.images), restore points' states (rooms.restore_points) and,
#: in the reserved room ``~templates``, a platform's templates (collab.templates).
IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
RESTORE_MEDIA_TYPE = "application/x-collab-restore-point"
TEMPLATE_MEDIA_TYPE = "application/x-collab-template+json"
BLOB_MEDIA_TYPES = IMAGE_MEDIA_TYPES | {RESTORE_MEDIA_TYPE, TEMPLATE_MEDIA_TYPE}


class StoredBlob(NamedTuple):
    """A blob as :meth:`BlobStore.list_blobs` lists it."""

    digest: str
    #: Its bytes.
    size: int
    #: When it was first stored (milliseconds since the Unix epoch).
    created_ms: float


@runtime_checkable
class BlobStore(Protocol):
    """A room's images (collab.images, protocol.md §10.6): blobs named by
    the SHA-256 of their bytes (64 lowercase hex digits), each with its media
    type, kept per room and deleted with it (:meth:`Store.delete_room`).
    Every method may raise ``OSError``; nothing is half written.

    The caller names a blob by the digest of its bytes and checks it: the
    store does not hash what it is given (the Redis store checks what it
    reads back, since others may write to Redis).
    """

    async def put_blob(self, room: RoomId, digest: str, data: bytes, media_type: str) -> bool:
        """Store ``data`` under ``digest`` in ``room``; True if it was new. A
        digest the room holds already is left as it is (the same bytes): a
        second put is one blob, and keeps its first ``created_ms``."""

    async def get_blob(self, room: RoomId, digest: str) -> tuple[bytes, str] | None:
        """The blob's bytes and media type, or None if the room has none of
        that digest."""

    async def list_blobs(self, room: RoomId) -> list[StoredBlob]:
        """Every blob of the room (digest, size, creation time), sorted by digest."""

    async def delete_blobs(self, room: RoomId, digests: Sequence[str]) -> int:
        """Delete those of ``digests`` the room holds; return how many went."""

    async def list_documents(self, room: RoomId) -> list[DocName]:
        """The names of the room's stored documents, sorted: collecting blobs
        no shape references must look at every board (protocol.md §2)."""
