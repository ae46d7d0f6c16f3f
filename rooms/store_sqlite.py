"""The embedded default store: one SQLite file, written from one thread.

All statements run on a single worker thread (SQLite connections are not
shared across threads), so the event loop never blocks on disk and writes
are naturally serialized. WAL journaling with ``synchronous=NORMAL``: a
committed append survives a process crash; a power cut may lose the last
few hundred milliseconds, which the persister's batching loses anyway.

The files hold session content (health information), so they are the
server user's alone: the data directory is created 0700, and the database,
its WAL and its shared-memory file are 0600 whatever the umask (SQLite
gives the WAL and SHM files the database file's mode; existing files are
tightened on open). An existing directory that others may enter is the
operator's choice and is left as it is, with a warning.

Outages (protocol.md §11). A write waits at most ``busy_timeout_s`` for a
lock another process holds, then fails (OSError), so a caller that awaits a
write (``chat:send`` before its ack) gets an answer in about a second, not
SQLite's default five. Before every write, the database file is checked to
be the one opened (same device and inode, still at its path) and its
directory writable: a data directory deleted, replaced or made read-only
under a running server is an outage (FileNotFoundError, PermissionError),
never a silent write into an unlinked file that the next start would not
find. Nothing is recreated while running; :meth:`SqliteStore.check_writable`
lets the persister notice it even when it has nothing to write, and probe
for the end of an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditAction, AuditRecord
from rooms.nodes import Replication, SingleNode
from rooms.outbox import OUTBOX_COLUMNS, OutboxEntry, OutboxStats
from rooms.store import LogPosition, Revocation, RoomInfo, StoredBlob, StoredDoc

__all__ = ["SqliteStore"]

T = TypeVar("T")

log = logging.getLogger("collab.rooms")

#: The database file and the two SQLite keeps beside it in WAL mode.
_SUFFIXES = ("", "-wal", "-shm")
_DIRECTORY_MODE = 0o700
_FILE_MODE = 0o600
#: How long a write waits for a lock another process holds before it fails.
BUSY_TIMEOUT_S = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    room TEXT NOT NULL,
    doc TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (room, doc)
);
CREATE TABLE IF NOT EXISTS updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    doc TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_by_doc ON updates (room, doc, seq);
CREATE TABLE IF NOT EXISTS rooms (
    room TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    retention_days REAL,
    created_ms REAL NOT NULL,
    last_activity_ms REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    room TEXT,
    user_id TEXT,
    role TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_room ON audit (room, id);
CREATE TABLE IF NOT EXISTS revocations (
    id TEXT PRIMARY KEY,
    jti TEXT,
    sub TEXT,
    room TEXT,
    until_ms REAL NOT NULL,
    created_ms REAL NOT NULL,
    by_admin TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revocation_version (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO revocation_version (one, version) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS health (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    probed_ms REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    room TEXT NOT NULL,
    body BLOB NOT NULL,
    created_ms REAL NOT NULL,
    next_ms REAL NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_ms);
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created_ms);
CREATE TABLE IF NOT EXISTS blobs (
    room TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    data BLOB NOT NULL,
    created_ms REAL NOT NULL,
    PRIMARY KEY (room, digest)
);
"""

_OUTBOX_COLUMNS = ", ".join(OUTBOX_COLUMNS)


class SqliteStore:
    """A :class:`rooms.store.Store` in a SQLite database file at ``path``."""

    def __init__(self, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collab-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        #: (device, inode) of the database file as opened.
        self._identity: tuple[int, int] | None = None

    @classmethod
    async def open(cls, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> SqliteStore:
        """Open (creating if needed) the database at ``path``."""
        store = cls(path, busy_timeout_s=busy_timeout_s)
        await store._run(store._open)
        return store

    @property
    def path(self) -> Path:
        return self._path

    def _open(self) -> None:
        _prepare_directory(self._path.parent)
        # Created 0600 before SQLite opens it, so the WAL and SHM files SQLite
        # creates next get that mode too; files left by an older run are tightened.
        os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, _FILE_MODE))
        _restrict_files(self._path)
        conn = sqlite3.connect(
            self._path,
            check_same_thread=False,
            isolation_level=None,
            timeout=self._busy_timeout_s,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows are overwritten, not left in free pages: compaction after
        # a redaction must make the disk forget the text (see compact()).
        conn.execute("PRAGMA secure_delete=ON")
        conn.executescript(_SCHEMA)
        _restrict_files(self._path)  # the WAL and SHM exist now
        opened = self._path.stat()
        self._identity = (opened.st_dev, opened.st_ino)
        self._conn = conn

    def _verify(self) -> None:
        """Raise unless the file at the path is still the database opened and
        its directory still writable (runs on the worker thread, before writes)."""
        try:
            current = self._path.stat()
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT, "the database file was removed while open (data directory deleted?)"
            ) from None
        if (current.st_dev, current.st_ino) != self._identity:
            raise FileNotFoundError(errno.ENOENT, "the database file was replaced while open")
        if not os.access(self._path.parent, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "the data directory is not writable")

    async def _write(self, fn: Callable[[], T]) -> T:
        """Run a write on the worker thread, after :meth:`_verify`."""

        def verified() -> T:
            self._verify()
            return fn()

        return await self._run(verified)

    async def check_writable(self, *, probe: bool = False) -> None:
        """OSError unless the database file is still the one opened and its
        directory writable; with ``probe``, also unless a small write goes
        through (a lock held by another process, a full disk)."""

        def check() -> None:
            self._verify()
            if probe:
                db = self._db
                with _transaction(db):
                    db.execute(
                        "INSERT OR REPLACE INTO health (one, probed_ms) VALUES (1, ?)",
                        (time.time() * 1000.0,),
                    )

        await self._run(check)

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise OSError("the SQLite store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            raise OSError(f"SQLite store: {exc}") from exc

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OSError("the SQLite store is closed")
        return self._conn

    async def load(self, room: RoomId, doc: DocName) -> StoredDoc:
        def load() -> StoredDoc:
            db = self._db
            row = db.execute(
                "SELECT data FROM snapshots WHERE room = ? AND doc = ?", (room, doc)
            ).fetchone()
            log = db.execute(
                "SELECT seq, data FROM updates WHERE room = ? AND doc = ? ORDER BY seq",
                (room, doc),
            ).fetchall()
            position = log[-1][0] if log else 0
            return StoredDoc(row[0] if row else None, tuple(u for _, u in log), position)

        return await self._run(load)

    async def append(self, room: RoomId, doc: DocName, updates: Sequence[Update]) -> LogPosition:
        rows = [(room, doc, bytes(u)) for u in updates]

        def append() -> LogPosition:
            db = self._db
            with _transaction(db):
                db.executemany("INSERT INTO updates (room, doc, data) VALUES (?, ?, ?)", rows)
                row = db.execute(
                    "SELECT MAX(seq) FROM updates WHERE room = ? AND doc = ?", (room, doc)
                ).fetchone()
            return int(row[0] or 0)

        return await self._write(append)

    async def append_batch(
        self, items: Sequence[tuple[RoomId, DocName, Sequence[Update]]]
    ) -> list[LogPosition]:
        return [await self.append(room, doc, updates) for room, doc, updates in items]

    async def compact(
        self, room: RoomId, doc: DocName, snapshot: Update, upto: LogPosition, seq: int = 0
    ) -> None:
        data = bytes(snapshot)

        def compact() -> None:
            db = self._db
            with _transaction(db):
                db.execute(
                    "INSERT INTO snapshots (room, doc, data) VALUES (?, ?, ?) "
                    "ON CONFLICT (room, doc) DO UPDATE SET data = excluded.data",
                    (room, doc, data),
                )
                db.execute(
                    "DELETE FROM updates WHERE room = ? AND doc = ? AND seq <= ?",
                    (room, doc, upto),
                )
            # Copy the WAL into the database and truncate it, so page images
            # holding the dropped updates do not linger in the -wal file.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        await self._write(compact)

    async def delete_room(self, room: RoomId) -> None:
        def delete() -> None:
            db = self._db
            with _transaction(db):
                db.execute("DELETE FROM snapshots WHERE room = ?", (room,))
                db.execute("DELETE FROM updates WHERE room = ?", (room,))
                db.execute("DELETE FROM rooms WHERE room = ?", (room,))
                db.execute("DELETE FROM blobs WHERE room = ?", (room,))
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        await self._write(delete)

    async def list_rooms(self) -> list[RoomId]:
        def rooms() -> list[RoomId]:
            rows = self._db.execute(
                "SELECT room FROM snapshots UNION SELECT room FROM updates "
                "UNION SELECT room FROM rooms ORDER BY room"
            ).fetchall()
            return [RoomId(r[0]) for r in rows]

        return await self._run(rooms)

    async def save_room_info(self, info: RoomInfo) -> None:
        row = (info.room, info.title, info.retention_days, info.created_ms, info.last_activity_ms)

        def save() -> None:
            self._db.execute(
                "INSERT INTO rooms (room, title, retention_days, created_ms, last_activity_ms) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (room) DO UPDATE SET title = excluded.title, "
                "retention_days = excluded.retention_days, created_ms = excluded.created_ms, "
                "last_activity_ms = excluded.last_activity_ms",
                row,
            )

        await self._write(save)

    async def load_room_info(self, room: RoomId) -> RoomInfo | None:
        def load() -> RoomInfo | None:
            row = self._db.execute(
                "SELECT room, title, retention_days, created_ms, last_activity_ms "
                "FROM rooms WHERE room = ?",
                (room,),
            ).fetchone()
            return _room_info(row) if row else None

        return await self._run(load)

    async def list_room_infos(self) -> list[RoomInfo]:
        def infos() -> list[RoomInfo]:
            rows = self._db.execute(
                "SELECT room, title, retention_days, created_ms, last_activity_ms "
                "FROM rooms ORDER BY room"
            ).fetchall()
            return [_room_info(r) for r in rows]

        return await self._run(infos)

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Insert ``records``. The audit table is append-only: no row is ever
        trimmed or deleted, not with its room either (protocol.md §10.2)."""
        rows = [
            (r.ts, r.room, r.user_id, r.role, r.action.value, r.outcome, r.detail) for r in records
        ]

        def append() -> None:
            with _transaction(self._db):
                self._db.executemany(
                    "INSERT INTO audit (ts, room, user_id, role, action, outcome, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

        await self._write(append)

    async def read_audit(self, room: RoomId | None, *, limit: int = 1000) -> list[AuditRecord]:
        def read() -> list[AuditRecord]:
            where, args = ("WHERE room = ?", (room,)) if room is not None else ("", ())
            rows = self._db.execute(
                "SELECT ts, room, user_id, role, action, outcome, detail FROM "
                f"(SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?) ORDER BY id",
                (*args, max(limit, 0)),
            ).fetchall()
            return [
                AuditRecord(r[0], r[1], r[2], r[3], AuditAction(r[4]), r[5], r[6]) for r in rows
            ]

        return await self._run(read)

    # -- revocations ----------------------------------------------------------------

    async def add_revocation(self, revocation: Revocation) -> None:
        r = revocation
        row = (r.id, r.jti, r.sub, r.room, r.until_ms, r.created_ms, r.by)

        def add() -> None:
            db = self._db
            with _transaction(db):
                db.execute(
                    "INSERT OR REPLACE INTO revocations "
                    "(id, jti, sub, room, until_ms, created_ms, by_admin) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                db.execute("UPDATE revocation_version SET version = version + 1")

        await self._write(add)

    async def delete_revocation(self, revocation_id: str) -> bool:
        def delete() -> bool:
            db = self._db
            with _transaction(db):
                deleted = db.execute("DELETE FROM revocations WHERE id = ?", (revocation_id,))
                if deleted.rowcount:
                    db.execute("UPDATE revocation_version SET version = version + 1")
            return bool(deleted.rowcount)

        return await self._write(delete)

    async def load_revocations(self) -> tuple[int, list[Revocation]]:
        def load() -> tuple[int, list[Revocation]]:
            db = self._db
            # A read transaction (one snapshot), not a write lock: it must
            # work while another process holds the write lock.
            with _transaction(db, "BEGIN"):
                (version,) = db.execute("SELECT version FROM revocation_version").fetchone()
                rows = db.execute(
                    "SELECT id, jti, sub, room, until_ms, created_ms, by_admin "
                    "FROM revocations ORDER BY created_ms, id"
                ).fetchall()
            return int(version), [_revocation(row) for row in rows]

        return await self._run(load)

    async def revocation_version(self) -> int:
        def version() -> int:
            return int(self._db.execute("SELECT version FROM revocation_version").fetchone()[0])

        return await self._run(version)

    async def purge_revocations(self, now_ms: float) -> int:
        def purge() -> int:
            db = self._db
            with _transaction(db):
                return int(
                    db.execute("DELETE FROM revocations WHERE until_ms <= ?", (now_ms,)).rowcount
                )

        return await self._write(purge)

    # -- images (rooms.store.BlobStore) ----------------------------------------------

    async def put_blob(self, room: RoomId, digest: str, data: bytes, media_type: str) -> bool:
        row = (room, digest, media_type, bytes(data), time.time() * 1000.0)

        def put() -> bool:
            with _transaction(self._db):
                return bool(
                    self._db.execute(
                        "INSERT OR IGNORE INTO blobs (room, digest, media_type, data, created_ms) "
                        "VALUES (?, ?, ?, ?, ?)",
                        row,
                    ).rowcount
                )

        return await self._write(put)

    async def get_blob(self, room: RoomId, digest: str) -> tuple[bytes, str] | None:
        def get() -> tuple[bytes, str] | None:
            found = self._db.execute(
                "SELECT data, media_type FROM blobs WHERE room = ? AND digest = ?", (room, digest)
            ).fetchone()
            return None if found is None else (bytes(found[0]), str(found[1]))

        return await self._run(get)

    async def list_blobs(self, room: RoomId) -> list[StoredBlob]:
        def blobs() -> list[StoredBlob]:
            rows = self._db.execute(
                "SELECT digest, length(data), created_ms FROM blobs WHERE room = ? ORDER BY digest",
                (room,),
            ).fetchall()
            return [StoredBlob(str(d), int(n), float(at)) for d, n, at in rows]

        return await self._run(blobs)

    async def delete_blobs(self, room: RoomId, digests: Sequence[str]) -> int:
        rows = [(room, d) for d in set(digests)]

        def delete() -> int:
            db = self._db
            with _transaction(db):
                gone = sum(
                    db.execute("DELETE FROM blobs WHERE room = ? AND digest = ?", r).rowcount
                    for r in rows
                )
            # A redacted image leaves the WAL too (secure_delete wipes its pages).
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return gone

        return await self._write(delete)

    async def list_documents(self, room: RoomId) -> list[DocName]:
        def docs() -> list[DocName]:
            rows = self._db.execute(
                "SELECT doc FROM snapshots WHERE room = ? UNION SELECT doc FROM updates "
                "WHERE room = ? ORDER BY doc",
                (room, room),
            ).fetchall()
            return [DocName(r[0]) for r in rows]

        return await self._run(docs)

    # -- the webhook outbox (rooms.store.OutboxStore) ----------------------------------

    async def outbox_add(self, entries: Sequence[OutboxEntry]) -> None:
        rows = [e.row() for e in entries]

        def add() -> None:
            db = self._db
            with _transaction(db):
                db.executemany(
                    f"INSERT OR IGNORE INTO outbox ({_OUTBOX_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

        await self._write(add)

    async def outbox_claim(self, now_ms: float, limit: int, lease_ms: float) -> list[OutboxEntry]:
        lease_end = now_ms + lease_ms

        def claim() -> list[OutboxEntry]:
            db = self._db
            # One write transaction: another process on this file (BEGIN
            # IMMEDIATE waits for it) never claims the same rows.
            with _transaction(db):
                rows = db.execute(
                    f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE next_ms <= ? "
                    "ORDER BY next_ms, created_ms, id LIMIT ?",
                    (now_ms, max(limit, 0)),
                ).fetchall()
                db.executemany(
                    "UPDATE outbox SET next_ms = ? WHERE id = ?", [(lease_end, r[0]) for r in rows]
                )
            return [_outbox_entry(row, next_ms=lease_end) for row in rows]

        return await self._write(claim)

    async def outbox_done(self, entry_id: str) -> None:
        def done() -> None:
            db = self._db
            with _transaction(db):
                db.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))

        await self._write(done)

    async def outbox_retry(self, entry_id: str, next_ms: float, attempts: int) -> None:
        def retry() -> None:
            db = self._db
            with _transaction(db):
                db.execute(
                    "UPDATE outbox SET next_ms = ?, attempts = ? WHERE id = ?",
                    (next_ms, attempts, entry_id),
                )

        await self._write(retry)

    async def outbox_stats(self) -> OutboxStats:
        def stats() -> OutboxStats:
            count, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(created_ms) FROM outbox"
            ).fetchone()
            return OutboxStats(int(count), None if oldest is None else float(oldest))

        return await self._run(stats)

    def replication(self, *, node_id: str, awareness_timeout_s: float) -> Replication:
        """One process owns this store: :class:`~rooms.nodes.SingleNode`."""
        return SingleNode(self)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        if self._closed:
            return
        await self._run(close)
        self._closed = True
        self._executor.shutdown(wait=True)


def _prepare_directory(directory: Path) -> None:
    """Create ``directory`` 0700 (its parents as the umask says); an existing
    one is left as it is, with a warning if group or others may use it."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=_DIRECTORY_MODE)
    except FileExistsError:
        current = stat.S_IMODE(directory.stat().st_mode)
        if current & 0o077:
            log.warning(
                "data directory %s is open to group or others (mode %03o); it holds "
                "session content: chmod 700 it",
                directory,
                current,
            )
    else:
        directory.chmod(_DIRECTORY_MODE)  # mkdir's mode is masked by the umask


def _restrict_files(database: Path) -> None:
    """Make the database and its WAL and SHM files (those that exist) 0600."""
    for suffix in _SUFFIXES:
        path = database.with_name(database.name + suffix)
        try:
            if stat.S_IMODE(path.stat().st_mode) != _FILE_MODE:
                path.chmod(_FILE_MODE)
        except FileNotFoundError:
            continue


class _transaction:
    """``BEGIN IMMEDIATE`` (or ``begin``) … ``COMMIT``, or ``ROLLBACK`` on error."""

    def __init__(self, db: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> None:
        self._db = db
        self._begin = begin

    def __enter__(self) -> None:
        self._db.execute(self._begin)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._rollback()
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            # A COMMIT that failed (disk I/O error, disk full) may leave the
            # transaction open: every later BEGIN would fail with it.
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")


def _revocation(row: tuple[object, ...]) -> Revocation:
    revocation_id, jti, sub, room, until_ms, created_ms, by = row
    return Revocation(
        id=str(revocation_id),
        until_ms=float(until_ms),  # type: ignore[arg-type]
        created_ms=float(created_ms),  # type: ignore[arg-type]
        by=str(by),
        jti=None if jti is None else str(jti),
        sub=None if sub is None else str(sub),
        room=None if room is None else RoomId(str(room)),
    )


def _outbox_entry(row: tuple[object, ...], *, next_ms: float) -> OutboxEntry:
    entry_id, event_id, event_type, endpoint, room, body, created_ms, _, attempts = row
    return OutboxEntry(
        id=str(entry_id),
        event_id=str(event_id),
        event_type=str(event_type),
        endpoint=str(endpoint),
        room=str(room),
        body=bytes(body),  # type: ignore[call-overload]
        created_ms=float(created_ms),  # type: ignore[arg-type]
        next_ms=next_ms,
        attempts=int(attempts),  # type: ignore[call-overload]
    )


def _room_info(row: tuple[object, ...]) -> RoomInfo:
    room, title, retention, created, activity = row
    return RoomInfo(
        RoomId(str(room)),
        str(title),
        None if retention is None else float(retention),  # type: ignore[arg-type]
        float(created),  # type: ignore[arg-type]
        float(activity),  # type: ignore[arg-type]
    )
