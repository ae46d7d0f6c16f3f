"""The PostgreSQL store: the SQLite store's tables in a PostgreSQL database,
through an asyncpg connection pool (``--store postgres``).

One node per database, like one per SQLite file: documents are written by
the node that holds them, and nothing tells other nodes (README: The
PostgreSQL store). The schema comes from the migrations in
``rooms/migrations/postgres`` (:mod:`rooms.postgres_migrations`), applied
when the store opens.

Semantics are the SQLite store's, statement for statement: ``updates.seq``
(a bigserial) is the :data:`rooms.store.LogPosition`; an append is one
statement and compaction, room deletion and the revocation changes are one
transaction each; room and document names sort byte by byte (``COLLATE
"C"``). A write returns once PostgreSQL has committed it (with the
server's default ``synchronous_commit=on``: flushed to its WAL on disk).

Outages (protocol.md §11). Every failure of the driver or the server
(refused or lost connections, a server shutting down, a full disk, a read-only
database, a statement or lock wait past its timeout) raises
:class:`PostgresStoreError`, an ``OSError`` whose message names the server
without its password: callers keep their state and retry. Never a
``FileNotFoundError`` (a unix socket that is gone while the server is down is
an outage, not lost files: see rooms.outage.StoreHealth.lost). A write waits
at most ``lock_timeout_s`` for a lock another session holds and
``command_timeout_s`` for a server that does not answer. The pool replaces
connections the server closed, so writes resume when it is back.
:meth:`PostgresStore.check_writable` asks the server to answer (a small
write with ``probe``), so the persister notices an outage with nothing to
write, and its end.

A write whose connection is lost after PostgreSQL committed it but before
the answer arrived is reported failed and written again by the retry: the
log may then hold an update twice, which Yjs applies once; an audit record
would be kept twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlsplit

import asyncpg
from asyncpg.exceptions import InterfaceError, InternalClientError, PostgresError

from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditAction, AuditRecord
from rooms.nodes import Replication, SingleNode
from rooms.outbox import OUTBOX_COLUMNS, OutboxEntry, OutboxStats
from rooms.postgres_conn import PostgresOptions, describe_postgres_error
from rooms.postgres_migrations import MigrationError, migrate
from rooms.store import LogPosition, Revocation, RoomInfo, StoredBlob, StoredDoc

if TYPE_CHECKING:
    from asyncpg import Record
    from asyncpg.pool import Pool, PoolConnectionProxy

__all__ = [
    "Connection",
    "PostgresStore",
    "PostgresStoreError",
    "delete_room_rows",
    "put_blob_row",
    "upsert_room",
]

T = TypeVar("T")
#: A pooled connection, as :meth:`PostgresStore.run` hands it out.
Connection: TypeAlias = "PoolConnectionProxy[Record]"

log = logging.getLogger("collab.rooms")

#: Connections the pool keeps at most (one flush, chat acks and loads at once).
POOL_SIZE = 4
#: How long opening one connection may take.
CONNECT_TIMEOUT_S = 3.0
#: How long one call (a connection if needed, then its statements) may take
#: before it fails: a server or network that stopped answering.
COMMAND_TIMEOUT_S = 5.0
#: How long a write waits for a lock another session holds before it fails
#: (SQLite's busy timeout: a chat ack is answered in about a second).
LOCK_TIMEOUT_S = 1.0
#: How long closing waits for connections in use before cutting them.
_CLOSE_TIMEOUT_S = 5.0

#: Everything asyncpg raises for a database that cannot take the call now.
_DRIVER_ERRORS = (PostgresError, InterfaceError, InternalClientError, OSError)


class PostgresStoreError(OSError):
    """PostgreSQL did not take a call (the message says why, without secrets)."""


class PostgresStore:
    """A :class:`rooms.store.Store` in a PostgreSQL database; use :meth:`open`."""

    def __init__(
        self, pool: Pool[Record], options: PostgresOptions, *, call_timeout_s: float
    ) -> None:
        self._pool: Pool[Record] | None = pool
        self._options = options
        self._call_timeout_s = call_timeout_s
        #: Connections being given back to the pool (after each call).
        self._releasing: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls,
        options: PostgresOptions,
        *,
        pool_size: int = POOL_SIZE,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ) -> PostgresStore:
        """Connect (up to ``pool_size`` connections, opened as needed) and
        apply the migrations the database lacks.

        Raises OSError with a one-line reason (no password) if PostgreSQL
        cannot be reached, refuses the login, or has a schema this collab
        cannot use (rooms.postgres_migrations.MigrationError).
        """
        settings = {
            "application_name": "collab",
            "lock_timeout": f"{round(lock_timeout_s * 1000)}ms",
        }
        in_url = {key for key, _ in parse_qsl(urlsplit(options.url).query)}
        pool: Pool[Record] = await asyncpg.create_pool(
            **options.connect_kwargs(),
            # No floor: asyncpg would keep reconnecting in the background
            # (with a traceback in the log each time) through an outage.
            min_size=0,
            max_size=pool_size,
            timeout=connect_timeout_s,
            command_timeout=command_timeout_s,
            # The URL's own settings win (?application_name=…).
            server_settings={k: v for k, v in settings.items() if k not in in_url},
        )
        acquire_timeout_s = connect_timeout_s + command_timeout_s
        try:
            # The first connection: the login, then the schema.
            async with pool.acquire(timeout=acquire_timeout_s) as conn:
                applied = await migrate(conn)
        except MigrationError as exc:
            pool.terminate()
            raise PostgresStoreError(f"PostgreSQL at {options.display}: {exc}") from None
        except ValueError as exc:  # asyncpg's reading of the URL
            pool.terminate()
            raise PostgresStoreError(
                f"cannot use the PostgreSQL URL {options.display}: {options.scrub(str(exc))}"
            ) from None
        except _DRIVER_ERRORS as exc:
            pool.terminate()
            raise PostgresStoreError(describe_postgres_error(exc, options)) from None
        except BaseException:
            pool.terminate()
            raise
        store = cls(pool, options, call_timeout_s=command_timeout_s)
        if applied:
            log.info(
                "PostgreSQL store at %s: applied migrations %s",
                options.display,
                ", ".join(f"{m.version:04d}_{m.name}" for m in applied),
            )
        return store

    @property
    def display(self) -> str:
        """The server's URL without its password."""
        return self._options.display

    async def run(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        """``fn`` on a pooled connection, within ``command_timeout_s`` all
        told; PostgresStoreError for any failure of the driver or the server.
        Also for stores built on this one (rooms.store_tiered)."""
        pool = self._pool
        if pool is None:
            raise PostgresStoreError("the PostgreSQL store is closed")
        try:
            async with asyncio.timeout(self._call_timeout_s):
                conn = await pool.acquire(timeout=self._call_timeout_s)
                try:
                    return await fn(conn)
                finally:
                    # Given back in the background: the caller has its answer
                    # (the reset takes a round trip), and after a statement that
                    # timed out asyncpg waits for the server to confirm the
                    # cancellation, as long again, before the connection is free.
                    self._release_later(pool, conn)
        except PostgresStoreError:
            raise
        except _DRIVER_ERRORS as exc:
            raise PostgresStoreError(self._reason(exc)) from exc

    def _release_later(self, pool: Pool[Record], conn: Connection) -> None:
        task = asyncio.get_running_loop().create_task(pool.release(conn))
        self._releasing.add(task)
        task.add_done_callback(self._released)

    def _released(self, task: asyncio.Task[None]) -> None:
        self._releasing.discard(task)
        if not task.cancelled():
            task.exception()  # seen: the pool drops a connection it cannot reset

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            text = "no answer in time"
        else:
            text = self._options.scrub(str(exc) or type(exc).__name__)
        return f"PostgreSQL at {self._options.display}: {text}"

    async def check_writable(self, *, probe: bool = False) -> None:
        """OSError unless the server answers; with ``probe``, also unless a
        small write commits (a full disk, a read-only database, a lock held)."""

        async def check(conn: Connection) -> None:
            if probe:
                await conn.execute(
                    "INSERT INTO health (one, probed_ms) VALUES (1, $1) "
                    "ON CONFLICT (one) DO UPDATE SET probed_ms = excluded.probed_ms",
                    time.time() * 1000.0,
                )
            else:
                await conn.execute("SELECT 1")

        await self.run(check)

    async def load(self, room: RoomId, doc: DocName) -> StoredDoc:
        async def load(conn: Connection) -> StoredDoc:
            # One snapshot of both tables: a compaction between the two reads
            # cannot hide entries from both.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await conn.fetchval(
                    "SELECT data FROM snapshots WHERE room = $1 AND doc = $2", room, doc
                )
                rows = await conn.fetch(
                    "SELECT seq, data FROM updates WHERE room = $1 AND doc = $2 ORDER BY seq",
                    room,
                    doc,
                )
            position = int(rows[-1]["seq"]) if rows else 0
            return StoredDoc(snapshot, tuple(bytes(r["data"]) for r in rows), position)

        return await self.run(load)

    async def append(self, room: RoomId, doc: DocName, updates: Sequence[Update]) -> LogPosition:
        data = [bytes(u) for u in updates]

        async def append(conn: Connection) -> LogPosition:
            if not data:
                return int(
                    await conn.fetchval(
                        "SELECT COALESCE(MAX(seq), 0) FROM updates WHERE room = $1 AND doc = $2",
                        room,
                        doc,
                    )
                )
            # One statement: all of them or none, numbered in their order.
            return int(
                await conn.fetchval(
                    "WITH added AS (INSERT INTO updates (room, doc, data) "
                    "SELECT $1, $2, u FROM unnest($3::bytea[]) WITH ORDINALITY AS t (u, i) "
                    "ORDER BY i RETURNING seq) SELECT MAX(seq) FROM added",
                    room,
                    doc,
                    data,
                )
            )

        return await self.run(append)

    async def append_batch(
        self, items: Sequence[tuple[RoomId, DocName, Sequence[Update]]]
    ) -> list[LogPosition]:
        return [await self.append(room, doc, updates) for room, doc, updates in items]

    async def compact(
        self, room: RoomId, doc: DocName, snapshot: Update, upto: LogPosition, seq: int = 0
    ) -> None:
        data = bytes(snapshot)

        async def compact(conn: Connection) -> None:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO snapshots (room, doc, data) VALUES ($1, $2, $3) "
                    "ON CONFLICT (room, doc) DO UPDATE SET data = excluded.data",
                    room,
                    doc,
                    data,
                )
                await conn.execute(
                    "DELETE FROM updates WHERE room = $1 AND doc = $2 AND seq <= $3",
                    room,
                    doc,
                    int(upto),
                )

        await self.run(compact)

    async def delete_room(self, room: RoomId) -> None:
        async def delete(conn: Connection) -> None:
            async with conn.transaction():
                await delete_room_rows(conn, room)

        await self.run(delete)

    async def list_rooms(self) -> list[RoomId]:
        async def rooms(conn: Connection) -> list[RoomId]:
            rows = await conn.fetch(
                "SELECT room FROM snapshots UNION SELECT room FROM updates "
                "UNION SELECT room FROM rooms UNION SELECT room FROM archive ORDER BY room"
            )
            return [RoomId(r["room"]) for r in rows]

        return await self.run(rooms)

    async def save_room_info(self, info: RoomInfo) -> None:
        async def save(conn: Connection) -> None:
            await upsert_room(conn, info)

        await self.run(save)

    async def load_room_info(self, room: RoomId) -> RoomInfo | None:
        async def load(conn: Connection) -> RoomInfo | None:
            row = await conn.fetchrow(f"{_ROOM_INFO} WHERE room = $1", room)
            return None if row is None else _room_info(row)

        return await self.run(load)

    async def list_room_infos(self) -> list[RoomInfo]:
        async def infos(conn: Connection) -> list[RoomInfo]:
            return [_room_info(r) for r in await conn.fetch(f"{_ROOM_INFO} ORDER BY room")]

        return await self.run(infos)

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Insert ``records``, in their order. The audit table is append-only:
        no row is ever trimmed or deleted, not with its room either
        (protocol.md §10.2)."""
        rows = [
            (r.ts, r.room, r.user_id, r.role, r.action.value, r.outcome, r.detail) for r in records
        ]

        async def append(conn: Connection) -> None:
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO audit (ts, room, user_id, role, action, outcome, detail) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    rows,
                )

        await self.run(append)

    async def read_audit(self, room: RoomId | None, *, limit: int = 1000) -> list[AuditRecord]:
        where, args = ("WHERE room = $2", (room,)) if room is not None else ("", ())

        async def read(conn: Connection) -> list[AuditRecord]:
            rows = await conn.fetch(
                "SELECT ts, room, user_id, role, action, outcome, detail FROM "
                f"(SELECT * FROM audit {where} ORDER BY id DESC LIMIT $1) AS latest ORDER BY id",
                max(limit, 0),
                *args,
            )
            return [
                AuditRecord(r[0], r[1], r[2], r[3], AuditAction(r[4]), r[5], r[6]) for r in rows
            ]

        return await self.run(read)

    # -- revocations ----------------------------------------------------------------

    async def add_revocation(self, revocation: Revocation) -> None:
        r = revocation

        async def add(conn: Connection) -> None:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO revocations (id, jti, sub, room, until_ms, created_ms, by_admin) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET "
                    "jti = excluded.jti, sub = excluded.sub, room = excluded.room, "
                    "until_ms = excluded.until_ms, created_ms = excluded.created_ms, "
                    "by_admin = excluded.by_admin",
                    r.id,
                    r.jti,
                    r.sub,
                    r.room,
                    r.until_ms,
                    r.created_ms,
                    r.by,
                )
                await conn.execute("UPDATE revocation_version SET version = version + 1")

        await self.run(add)

    async def delete_revocation(self, revocation_id: str) -> bool:
        async def delete(conn: Connection) -> bool:
            async with conn.transaction():
                gone = await conn.fetchval(
                    "WITH gone AS (DELETE FROM revocations WHERE id = $1 RETURNING 1) "
                    "SELECT count(*) FROM gone",
                    revocation_id,
                )
                if gone:
                    await conn.execute("UPDATE revocation_version SET version = version + 1")
            return bool(gone)

        return await self.run(delete)

    async def load_revocations(self) -> tuple[int, list[Revocation]]:
        async def load(conn: Connection) -> tuple[int, list[Revocation]]:
            # One snapshot: the version and the rows it counts.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                version = await conn.fetchval("SELECT version FROM revocation_version")
                rows = await conn.fetch(
                    "SELECT id, jti, sub, room, until_ms, created_ms, by_admin "
                    "FROM revocations ORDER BY created_ms, id"
                )
            return int(version), [_revocation(row) for row in rows]

        return await self.run(load)

    async def revocation_version(self) -> int:
        async def version(conn: Connection) -> int:
            return int(await conn.fetchval("SELECT version FROM revocation_version"))

        return await self.run(version)

    async def purge_revocations(self, now_ms: float) -> int:
        async def purge(conn: Connection) -> int:
            return int(
                await conn.fetchval(
                    "WITH gone AS (DELETE FROM revocations WHERE until_ms <= $1 RETURNING 1) "
                    "SELECT count(*) FROM gone",
                    now_ms,
                )
            )

        return await self.run(purge)

    # -- images (rooms.store.BlobStore; migration 0004) --------------------------------

    async def put_blob(self, room: RoomId, digest: str, data: bytes, media_type: str) -> bool:
        async def put(conn: Connection) -> bool:
            return await put_blob_row(conn, room, digest, data, media_type)

        return await self.run(put)

    async def get_blob(self, room: RoomId, digest: str) -> tuple[bytes, str] | None:
        async def get(conn: Connection) -> tuple[bytes, str] | None:
            row = await conn.fetchrow(
                "SELECT data, media_type FROM blobs WHERE room = $1 AND digest = $2", room, digest
            )
            return None if row is None else (bytes(row["data"]), str(row["media_type"]))

        return await self.run(get)

    async def list_blobs(self, room: RoomId) -> list[StoredBlob]:
        async def blobs(conn: Connection) -> list[StoredBlob]:
            rows = await conn.fetch(
                "SELECT digest, octet_length(data) AS size, created_ms FROM blobs "
                "WHERE room = $1 ORDER BY digest",
                room,
            )
            return [StoredBlob(r["digest"], int(r["size"]), float(r["created_ms"])) for r in rows]

        return await self.run(blobs)

    async def delete_blobs(self, room: RoomId, digests: Sequence[str]) -> int:
        async def delete(conn: Connection) -> int:
            return int(
                await conn.fetchval(
                    "WITH gone AS (DELETE FROM blobs WHERE room = $1 AND digest = ANY($2::text[]) "
                    "RETURNING 1) SELECT count(*) FROM gone",
                    room,
                    sorted(set(digests)),
                )
            )

        return await self.run(delete)

    async def list_documents(self, room: RoomId) -> list[DocName]:
        async def docs(conn: Connection) -> list[DocName]:
            rows = await conn.fetch(
                "SELECT doc FROM snapshots WHERE room = $1 UNION SELECT doc FROM updates "
                "WHERE room = $1 UNION SELECT doc FROM archive WHERE room = $1 ORDER BY doc",
                room,
            )
            return [DocName(r["doc"]) for r in rows]

        return await self.run(docs)

    # -- the webhook outbox (rooms.store.OutboxStore) ----------------------------------

    async def outbox_add(self, entries: Sequence[OutboxEntry]) -> None:
        rows = [e.row() for e in entries]

        async def add(conn: Connection) -> None:
            async with conn.transaction():
                await conn.executemany(
                    f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                    rows,
                )

        await self.run(add)

    async def outbox_claim(self, now_ms: float, limit: int, lease_ms: float) -> list[OutboxEntry]:
        lease_end = now_ms + lease_ms

        async def claim(conn: Connection) -> list[OutboxEntry]:
            # One statement: rows another node's claim holds locked are
            # skipped, not waited for, and never returned twice.
            rows = await conn.fetch(
                "WITH due AS (SELECT id, next_ms AS due_ms FROM outbox WHERE next_ms <= $2 "
                "ORDER BY next_ms, created_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) "
                "UPDATE outbox AS o SET next_ms = $1 FROM due WHERE o.id = due.id "
                f"RETURNING {', '.join('o.' + c for c in OUTBOX_COLUMNS)}, due.due_ms",
                lease_end,
                now_ms,
                max(limit, 0),
            )
            # RETURNING has no order: earliest due first, as the claim chose them.
            rows = sorted(rows, key=lambda r: (r["due_ms"], r["created_ms"], r["id"]))
            return [_outbox_entry(row) for row in rows]

        return await self.run(claim)

    async def outbox_done(self, entry_id: str) -> None:
        async def done(conn: Connection) -> None:
            await conn.execute("DELETE FROM outbox WHERE id = $1", entry_id)

        await self.run(done)

    async def outbox_retry(self, entry_id: str, next_ms: float, attempts: int) -> None:
        async def retry(conn: Connection) -> None:
            await conn.execute(
                "UPDATE outbox SET next_ms = $1, attempts = $2 WHERE id = $3",
                next_ms,
                attempts,
                entry_id,
            )

        await self.run(retry)

    async def outbox_stats(self) -> OutboxStats:
        async def stats(conn: Connection) -> OutboxStats:
            row = await conn.fetchrow("SELECT COUNT(*) AS n, MIN(created_ms) AS oldest FROM outbox")
            assert row is not None
            oldest = row["oldest"]
            return OutboxStats(int(row["n"]), None if oldest is None else float(oldest))

        return await self.run(stats)

    def replication(self, *, node_id: str, awareness_timeout_s: float) -> Replication:
        """One process owns this store: :class:`~rooms.nodes.SingleNode`."""
        return SingleNode(self)

    async def close(self) -> None:
        """Close the pool: connections in use get a few seconds, then are cut."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT_S)
        except _DRIVER_ERRORS:  # the server is gone, or a connection hangs
            pool.terminate()
        except asyncio.CancelledError:
            pool.terminate()
            raise


_ROOM_INFO = "SELECT room, title, retention_days, created_ms, last_activity_ms FROM rooms"


def _room_info(row: Any) -> RoomInfo:
    room, title, retention, created, activity = row
    return RoomInfo(
        RoomId(str(room)),
        str(title),
        None if retention is None else float(retention),
        float(created),
        float(activity),
    )


_ROOM_TABLES = ("snapshots", "updates", "rooms", "archive", "blobs")


async def delete_room_rows(conn: Connection, room: RoomId) -> None:
    """Every row of the room but its audit records (append-only)."""
    for table in _ROOM_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE room = $1", room)


async def put_blob_row(
    conn: Connection, room: RoomId, digest: str, data: bytes, media_type: str
) -> bool:
    """Insert a blob unless the room holds that digest; True if it was new."""
    added = await conn.fetchval(
        "INSERT INTO blobs (room, digest, media_type, data, created_ms) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room, digest) DO NOTHING RETURNING 1",
        room,
        digest,
        media_type,
        bytes(data),
        time.time() * 1000.0,
    )
    return added is not None


async def upsert_room(conn: Connection, info: RoomInfo) -> None:
    await conn.execute(
        "INSERT INTO rooms (room, title, retention_days, created_ms, last_activity_ms) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room) DO UPDATE SET "
        "title = excluded.title, retention_days = excluded.retention_days, "
        "created_ms = excluded.created_ms, last_activity_ms = excluded.last_activity_ms",
        info.room,
        info.title,
        info.retention_days,
        info.created_ms,
        info.last_activity_ms,
    )


def _revocation(row: Any) -> Revocation:
    revocation_id, jti, sub, room, until_ms, created_ms, by = row
    return Revocation(
        id=str(revocation_id),
        until_ms=float(until_ms),
        created_ms=float(created_ms),
        by=str(by),
        jti=None if jti is None else str(jti),
        sub=None if sub is None else str(sub),
        room=None if room is None else RoomId(str(room)),
    )


_OUTBOX_COLUMNS = ", ".join(OUTBOX_COLUMNS)


def _outbox_entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        id=str(row["id"]),
        event_id=str(row["event_id"]),
        event_type=str(row["event_type"]),
        endpoint=str(row["endpoint"]),
        room=str(row["room"]),
        body=bytes(row["body"]),
        created_ms=float(row["created_ms"]),
        next_ms=float(row["next_ms"]),
        attempts=int(row["attempts"]),
    )
