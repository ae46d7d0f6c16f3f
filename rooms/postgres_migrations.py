"""The PostgreSQL store's schema: migrations kept in the package
(``rooms/migrations/postgres/NNNN_<name>.sql``, shipped in the wheel) and
applied in order when the store opens.

Every pending migration is applied in one transaction, under a
transaction-level advisory lock: nodes starting at once apply each one once
(the others wait for the lock, then find it recorded), and a migration that
fails leaves nothing behind. Each applied migration is recorded in
``schema_migrations`` with the SHA-256 of its text. A recorded migration
this collab does not know (a newer collab migrated the database) or whose
text has changed since stops the start: writing through a schema the code
was not written for could lose data. Released migrations are never edited;
a change is the next file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from asyncpg import Record
from asyncpg.pool import PoolConnectionProxy

__all__ = ["Migration", "MigrationError", "migrate", "migrations"]

#: The advisory lock every node takes before migrating ("collab:m" as a bigint).
MIGRATION_LOCK = int.from_bytes(b"collab:m", "big")
#: How long a node waits for another node's migrations before giving up.
MIGRATION_LOCK_TIMEOUT_S = 60.0
#: How long one migration may run (the pool's per-statement timeout is seconds).
MIGRATION_TIMEOUT_S = 600.0

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

_CREATE_TABLE = """
CREATE TABLE schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(OSError):
    """The database's schema is not one this collab can use (the message says why)."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: ``NNNN_<name>.sql``."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> tuple[Migration, ...]:
    """Every migration in the package, in order (versions 1, 2, … without gaps).

    Raises MigrationError if the package's files break that rule.
    """
    folder = resources.files("rooms").joinpath("migrations", "postgres")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE.fullmatch(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise MigrationError(
            "the PostgreSQL migrations shipped with collab are not numbered 0001, 0002, …"
        )
    return tuple(found)


async def migrate(
    conn: PoolConnectionProxy[Record], known: tuple[Migration, ...] | None = None
) -> list[Migration]:
    """Apply the migrations ``conn``'s database lacks (of ``known``: by
    default the package's), in one transaction; return those applied now.

    Raises MigrationError if the database records a migration that is not
    in ``known`` or differs from it; a driver error propagates (the store
    turns it into OSError).
    """
    known = migrations() if known is None else known
    async with conn.transaction():
        # Not lock_timeout's second: another node may be migrating.
        await conn.execute(f"SET LOCAL lock_timeout = '{int(MIGRATION_LOCK_TIMEOUT_S)}s'")
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK, timeout=MIGRATION_LOCK_TIMEOUT_S
        )
        # Created only if missing: CREATE TABLE IF NOT EXISTS needs the right
        # to create in the schema even when the table is there, and a user
        # with only reads and writes on collab's tables may run collab.
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        recorded = {int(r["version"]): (str(r["name"]), str(r["checksum"])) for r in rows}
        by_version = {m.version: m for m in known}
        for version, (name, checksum) in sorted(recorded.items()):
            migration = by_version.get(version)
            if migration is None:
                raise MigrationError(
                    f"the database has PostgreSQL migration {version:04d}_{name}, which this "
                    "collab does not know: a newer collab migrated it; run that version"
                )
            if checksum != migration.checksum:
                raise MigrationError(
                    f"PostgreSQL migration {version:04d}_{name} was applied with other text "
                    "than this collab ships: migrations must not change once released"
                )
        pending = [m for m in known if m.version not in recorded]
        for migration in pending:
            await conn.execute(migration.sql, timeout=MIGRATION_TIMEOUT_S)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    return pending
