"""Fixtures of the PostgreSQL tests (tests/postgres/fixtures.py)."""

from __future__ import annotations

from tests.postgres.fixtures import own_postgres, postgres_database, postgres_server  # noqa: F401
