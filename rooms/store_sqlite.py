"""The embedded default store: one SQLite file, written from one thread.

All statements run on a single worker thread (SQLite connections are not
shared across threads), so the event loop never blocks on disk and writes
are naturally serialized. WAL journaling with ``synchronous=NORMAL``: a
committed append survives a process crash; a power cut may lose the last
few hundred milliseconds, which the persister's batching loses anyway.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditAction, AuditRecord
from rooms.store import LogPosition, RoomInfo, StoredDoc

__all__ = ["SqliteStore"]

T = TypeVar("T")

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
"""


class SqliteStore:
    """A :class:`rooms.store.Store` in a SQLite database file at ``path``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collab-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        """Open (creating if needed) the database at ``path``."""
        store = cls(path)
        await store._run(store._open)
        return store

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows are overwritten, not left in free pages: compaction after
        # a redaction must make the disk forget the text (see compact()).
        conn.execute("PRAGMA secure_delete=ON")
        conn.executescript(_SCHEMA)
        self._conn = conn

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

        return await self._run(append)

    async def append_batch(
        self, items: Sequence[tuple[RoomId, DocName, Sequence[Update]]]
    ) -> list[LogPosition]:
        return [await self.append(room, doc, updates) for room, doc, updates in items]

    async def compact(
        self, room: RoomId, doc: DocName, snapshot: Update, upto: LogPosition
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

        await self._run(compact)

    async def delete_room(self, room: RoomId) -> None:
        def delete() -> None:
            db = self._db
            with _transaction(db):
                db.execute("DELETE FROM snapshots WHERE room = ?", (room,))
                db.execute("DELETE FROM updates WHERE room = ?", (room,))
                db.execute("DELETE FROM rooms WHERE room = ?", (room,))
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        await self._run(delete)

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

        await self._run(save)

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

        await self._run(append)

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


class _transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _room_info(row: tuple[object, ...]) -> RoomInfo:
    room, title, retention, created, activity = row
    return RoomInfo(
        RoomId(str(room)),
        str(title),
        None if retention is None else float(retention),  # type: ignore[arg-type]
        float(created),  # type: ignore[arg-type]
        float(activity),  # type: ignore[arg-type]
    )
