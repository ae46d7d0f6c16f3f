"""A stop keeps what the server acknowledged (issue 14, findings 2 and 3;
protocol.md §11.3).

SIGTERM while the store cannot write (a lock another process holds, a full
disk, the data directory deleted) used to exit 0 and lose what was not
written: edits, also of users who had left, and with the directory gone,
everything. Now the stop waits ``--shutdown-grace-s`` for the final write,
then writes what the store lacks to a recovery file in the data directory
(0600) and exits 75; the next start replays the file, once, before it lets
anyone in.

Real ``collab serve`` processes with SQLite, real outages (see
test_store_outages.py). Clients are closed before a restart: a client that
reconnected would hand the server its own copy, and hide a replay that
lost something.
"""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

from tests.faults.test_store_outages import (
    Server,
    WriteLock,
    chat_code,
    clients,
    draw,
    exactly_once,
    fill_the_disk,
    has_shapes,
    shapes,
    stored_chat,
    stored_shapes,
    wait_saving,
    wait_store,
)
from tests.waiting import until

GRACE_S = 2.0
GRACE = ("--shutdown-grace-s", str(GRACE_S))
#: Exit codes of collab serve (collab.app.ExitCode).
EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_RECOVERY_FILE = 75


def recovery_files(srv: Server) -> list[Path]:
    return sorted(srv.data_dir.glob("collab-recovery-*.bin"))


async def stop_timed(srv: Server) -> tuple[int | None, float]:
    started = time.monotonic()
    code = await srv.stop()
    return code, time.monotonic() - started


def check_recovery_file(srv: Server) -> Path:
    files = recovery_files(srv)
    assert len(files) == 1, files
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert not list(srv.data_dir.glob(".collab-recovery-*")), "a temporary file was left"
    return files[0]


async def test_sigterm_during_a_write_lock_keeps_the_edits_in_a_recovery_file(tmp_path):
    srv = Server(tmp_path, *GRACE)
    await srv.start()
    try:
        async with clients() as group:
            ann = await group.join(srv.url, "lock-stop", "Ann")
            bob = await group.join(srv.url, "lock-stop", "Bob")
            acked = {"m-1": (await ann.send_chat("one", client_message_id="m-1"))["id"]}
            draw(ann, "saved")
            await has_shapes(bob, {"saved"})
            async with WriteLock(srv.db):
                draw(ann, "unsaved-ann")
                draw(bob, "unsaved-bob")
                await has_shapes(ann, {"unsaved-bob"})
                await has_shapes(bob, {"unsaved-ann"})
                await wait_saving([ann, bob], "delayed")
                expected = shapes(ann)
                code, took = await stop_timed(srv)
        assert code == EXIT_RECOVERY_FILE, srv.log()[-3000:]
        assert took < GRACE_S + 6, f"the stop took {took:.1f} s"
        recovery = check_recovery_file(srv)
        assert "the next start replays it" in srv.log()
        assert "final flush failed" not in srv.log()

        await srv.start()
        assert not recovery.exists()
        assert f"recovery file replayed file={recovery.name}" in srv.log()
        assert await stored_shapes(srv.url, "lock-stop") == expected
        exactly_once(await stored_chat(srv.url, "lock-stop"), acked)
        assert await srv.stop() == EXIT_OK
    finally:
        await srv.kill()


async def test_sigterm_with_a_full_disk_keeps_the_edits_of_users_who_left(tmp_path):
    srv = Server(tmp_path, *GRACE)
    await srv.start()
    try:
        async with clients() as group:
            ann = await group.join(srv.url, "disk-stop", "Ann")
            bob = await group.join(srv.url, "disk-stop", "Bob")
            acked = {"m-1": (await ann.send_chat("one", client_message_id="m-1"))["id"]}
            fill_the_disk(srv)
            for i in range(10):
                draw(bob, f"bob-{i}")
            await has_shapes(ann, {f"bob-{i}" for i in range(10)})
            await bob.close()  # Bob has left: his edits are in memory only
            await wait_store(srv, "failing")
            assert "disk I/O error" in srv.log()
            expected = shapes(ann)
            code, _ = await stop_timed(srv)
        assert code == EXIT_RECOVERY_FILE, srv.log()[-3000:]
        check_recovery_file(srv)

        await srv.start()  # a new process: the disk has room again
        assert recovery_files(srv) == []
        assert await stored_shapes(srv.url, "disk-stop") == expected
        exactly_once(await stored_chat(srv.url, "disk-stop"), acked)
        assert await srv.stop() == EXIT_OK
    finally:
        await srv.kill()


async def test_a_deleted_data_directory_is_given_back_whole_and_replayed_once(tmp_path):
    """Everything the server held survives the directory's deletion (the
    recovery file then holds every loaded document), and a file replayed a
    second time (a crash after storing it, before deleting it) adds nothing:
    each acknowledged chat message is there once."""
    srv = Server(tmp_path, *GRACE)
    await srv.start()
    try:
        async with clients() as group:
            ann = await group.join(srv.url, "gone-stop", "Ann")
            acked = {
                cmid: (await ann.send_chat(text, client_message_id=cmid))["id"]
                for cmid, text in (("m-1", "one"), ("m-2", "two"))
            }
            draw(ann, "before")
            await until(lambda: stored_has(srv, "gone-stop", "before"), what="the shape stored")
            for child in srv.data_dir.iterdir():
                child.unlink()
            srv.data_dir.rmdir()
            await wait_store(srv, "failing")
            draw(ann, "after")
            assert await chat_code(ann.send_chat("three", client_message_id="m-3")) == (
                "store_unavailable"
            )
            await wait_saving([ann], "delayed")
            expected = shapes(ann)
            code, _ = await stop_timed(srv)
        assert code == EXIT_RECOVERY_FILE, srv.log()[-3000:]
        recovery = check_recovery_file(srv)
        assert stat.S_IMODE(srv.data_dir.stat().st_mode) == 0o700
        saved = recovery.read_bytes()

        await srv.start()
        assert await stored_shapes(srv.url, "gone-stop") == expected
        exactly_once(await stored_chat(srv.url, "gone-stop"), acked)
        assert await srv.stop() == EXIT_OK

        # A crash between storing and deleting: the same file again.
        recovery.write_bytes(saved)
        recovery.chmod(0o600)
        await srv.start()
        assert not recovery.exists()
        assert await stored_shapes(srv.url, "gone-stop") == expected
        messages = await stored_chat(srv.url, "gone-stop")
        exactly_once(messages, acked)
        assert len(messages) == len(acked)
        assert await srv.stop() == EXIT_OK
    finally:
        await srv.kill()


async def stored_has(srv: Server, room: str, key: str) -> bool:
    """Whether the store has ``key`` in the room's board (read from the file,
    as the next start would)."""
    import sqlite3

    from pycrdt import Doc, Map

    def read() -> bool:
        conn = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT data FROM updates WHERE room = ? AND doc = 'board' ORDER BY seq", (room,)
            ).fetchall()
        finally:
            conn.close()
        doc: Doc = Doc()
        for (data,) in rows:
            doc.apply_update(data)
        return key in (doc.get("shapes", type=Map).to_py() or {})

    return await asyncio.to_thread(read)


async def test_a_clean_stop_exits_0_and_leaves_no_recovery_file(tmp_path):
    srv = Server(tmp_path, *GRACE)
    await srv.start()
    try:
        async with clients() as group:
            ann = await group.join(srv.url, "clean", "Ann")
            draw(ann, "x")
            await ann.send_chat("hi", client_message_id="m-1")
            code, _ = await stop_timed(srv)
        assert code == EXIT_OK, srv.log()[-3000:]
        assert recovery_files(srv) == []
        assert " ERROR " not in srv.log()
        await srv.start()
        assert set(await stored_shapes(srv.url, "clean")) == {"x"}
        assert await srv.stop() == EXIT_OK
    finally:
        await srv.kill()


async def test_a_damaged_recovery_file_stops_the_start_and_names_itself(tmp_path):
    """Starting without a recovery file that cannot be read would drop what
    it holds, silently: the start refuses, saying which file, until an
    operator moves it aside."""
    srv = Server(tmp_path, *GRACE)
    srv.data_dir.mkdir(mode=0o700)
    damaged = srv.data_dir / "collab-recovery-20260101T000000.000Z-outage.bin"
    damaged.write_bytes(b"collab-recovery\n" + b"\x00" * 40)
    try:
        try:
            await srv.start()
        except RuntimeError:
            pass
        else:
            raise AssertionError("the server started past a damaged recovery file")
        assert srv.node is not None and srv.node.proc is not None
        assert await asyncio.wait_for(srv.node.proc.wait(), 30) == EXIT_START_FAILED
        assert damaged.name in srv.log() and "move it aside" in srv.log()
        damaged.rename(tmp_path / damaged.name)
        await srv.start()
        assert await srv.stop() == EXIT_OK
    finally:
        await srv.kill()
