"""PostgreSQL fixtures: one server for the whole session, started on first
use, and a fresh database per test.

Imported by tests/postgres/conftest.py and by the store contract tests
(tests/unit/test_store_contract.py); however many modules import
``postgres_server``, one server runs, stopped (by pid) and removed after
the last of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.prereqs import unavailable
from tests.procs import POSTGRES_BIN, PostgresProcess

__all__ = ["own_postgres", "postgres_database", "postgres_server", "require_postgres"]

#: The session's server and how many session fixtures hold it.
_shared: dict[str, tuple[PostgresProcess, int]] = {}


def require_postgres() -> None:
    """Skip (fail under COLLAB_TESTS_REQUIRE_ALL=1) without PostgreSQL or asyncpg."""
    if POSTGRES_BIN is None:
        unavailable(
            "PostgreSQL is not installed (README: Prerequisites; Debian: apt-get install "
            "postgresql); CI installs it"
        )
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        unavailable("asyncpg is not installed: pip install -e '.[postgres]' (make setup does)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresProcess]:
    """The session's PostgreSQL server (tests/procs.PostgresProcess)."""
    require_postgres()
    server, users = _shared.get("server", (None, 0))
    if server is None:
        server = PostgresProcess()
        try:
            server.start()
        except BaseException:
            server.remove()
            raise
    _shared["server"] = (server, users + 1)
    try:
        yield server
    finally:
        server, users = _shared.pop("server")
        if users > 1:
            _shared["server"] = (server, users - 1)
        else:
            server.remove()


@pytest.fixture
async def postgres_database(postgres_server: PostgresProcess) -> AsyncIterator[str]:
    """A new empty database on the session's server (its name), dropped after the test."""
    name = await postgres_server.create_database()
    yield name
    await postgres_server.drop_database(name)


@pytest.fixture
async def own_postgres() -> AsyncIterator[PostgresProcess]:
    """A PostgreSQL server of the test's own (it stops and starts it)."""
    require_postgres()
    server = PostgresProcess()
    try:
        await server.astart()
        yield server
    finally:
        await asyncio.to_thread(server.remove)
