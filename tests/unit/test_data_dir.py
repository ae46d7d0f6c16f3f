"""At rest (issue 13, finding 8): the SQLite store's directory and files are
the server user's alone, whatever the process's umask.

Session content is health information; a 0644 database file is readable by
every account on the host. The data directory is created 0700 and every file
collab writes in it (the database, its WAL and shared-memory files) is 0600;
an existing directory open to others is left alone but warned about.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from crdt.types import DocName, RoomId, Update
from rooms.store_sqlite import SqliteStore

ROOM, BOARD = RoomId("clinic-7/patient-jane-doe"), DocName("board")


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most services run with (files 0644, directories 0755)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def store_files(directory: Path) -> dict[str, int]:
    return {p.name: mode(p) for p in sorted(directory.iterdir())}


async def test_a_new_data_directory_is_0700_and_every_file_0600(tmp_path):
    data = tmp_path / "srv" / "data"
    store = await SqliteStore.open(data / "collab.sqlite3")
    try:
        await store.append(ROOM, BOARD, [Update(b"\x00\x00")])  # the WAL and SHM exist now
        files = store_files(data)
        assert {"collab.sqlite3", "collab.sqlite3-wal", "collab.sqlite3-shm"} <= files.keys()
        assert mode(data) == 0o700
        assert files == dict.fromkeys(files, 0o600)
    finally:
        await store.close()


async def test_existing_files_are_tightened_on_open(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    store = await SqliteStore.open(data / "collab.sqlite3")
    await store.append(ROOM, BOARD, [Update(b"\x00\x00")])
    await store.close()
    # An older collab (or a restore from backup) left them readable by all.
    for path in data.iterdir():
        path.chmod(0o644)
    again = await SqliteStore.open(data / "collab.sqlite3")
    try:
        await again.append(ROOM, BOARD, [Update(b"\x00\x00")])
        files = store_files(data)
        assert files and files == dict.fromkeys(files, 0o600)
    finally:
        await again.close()


async def test_an_existing_directory_open_to_others_is_kept_and_warned_about(tmp_path, caplog):
    data = tmp_path / "shared"
    data.mkdir()
    data.chmod(0o755)  # the operator's directory: collab does not change it
    caplog.set_level(logging.WARNING, logger="collab")
    store = await SqliteStore.open(data / "collab.sqlite3")
    await store.close()
    assert mode(data) == 0o755
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("group or others" in m and str(data) in m for m in warnings), warnings


async def test_a_private_existing_directory_is_not_warned_about(tmp_path, caplog):
    data = tmp_path / "private"
    data.mkdir(mode=0o700)
    caplog.set_level(logging.WARNING, logger="collab")
    store = await SqliteStore.open(data / "collab.sqlite3")
    await store.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
