"""Store outages (issue 14, findings 2, 3 and 7; protocol.md §11).

Real ``collab serve`` processes with SQLite, and real outages:

* a write lock another process holds (``BEGIN EXCLUSIVE`` on the database
  file, from this test process) for as long as the test needs;
* a full disk: the server process's file-size limit (``RLIMIT_FSIZE``, set
  from here with ``prlimit``) below what its next write needs, so SQLite's
  writes fail with ``disk I/O error``;
* the data directory removed under the running server.

Oracles: an acknowledged chat message is in the store exactly once (after
the outage and after a restart); every client and a fresh joiner converge;
what the server says about the outage (``room:state.saving``, ``/healthz``,
``/readyz``, ``/metrics``) is what happens. No sleeps: every wait is on a
condition with a deadline (tests.waiting.until, CollabClient.wait_for).

The helpers here are shared with tests/faults/test_shutdown.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sqlite3
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Array, Doc, Map

from collab.client import CollabClient, CollabClientError
from crdt.engine import engine_factory
from crdt.types import DocName, RoomId, UserId
from rooms.errors import RoomUnavailable
from rooms.identity import Identity, Role
from rooms.limits import Limits
from rooms.registry import RoomRegistry
from rooms.room import RoomState
from rooms.store_sqlite import SqliteStore
from tests.procs import CollabNode, free_port
from tests.scrape import scrape
from tests.waiting import until

#: A dev server on SQLite, flushing every 0.1 s, rooms kept loaded.
ARGS = (
    "--dev",
    "--store",
    "sqlite",
    "--log-level",
    "info",
    "--flush-interval-s",
    "0.1",
    "--unload-after-s",
    "60",
)


# -- helpers (shared with test_shutdown.py) ---------------------------------------------


class Server:
    """One ``collab serve`` on a fixed port and data directory, restartable."""

    def __init__(self, tmp_path: Path, *extra: str, node_id: str = "outage") -> None:
        self.tmp_path = tmp_path
        self.extra = extra
        self.node_id = node_id
        self.port = free_port()
        self.node: CollabNode | None = None

    @property
    def data_dir(self) -> Path:
        return self.tmp_path / self.node_id

    @property
    def db(self) -> Path:
        return self.data_dir / "collab.sqlite3"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.node is not None and self.node.proc is not None
        return self.node.proc.pid

    async def start(self, *more: str) -> CollabNode:
        self.node = CollabNode(
            self.tmp_path, *ARGS, *self.extra, *more, node_id=self.node_id, port=self.port
        )
        await self.node.start()
        return self.node

    async def stop(self) -> int | None:
        """SIGTERM; the exit code."""
        assert self.node is not None
        return await self.node.stop()

    def log(self) -> str:
        return self.node.log() if self.node is not None else ""

    async def kill(self) -> None:
        if self.node is not None:
            await self.node.kill()


@contextlib.asynccontextmanager
async def server(tmp_path: Path, *extra: str, node_id: str = "outage") -> AsyncIterator[Server]:
    srv = Server(tmp_path, *extra, node_id=node_id)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.kill()


class Clients:
    """CollabClients of a test, all closed at the end."""

    def __init__(self) -> None:
        self.all: list[CollabClient] = []

    async def join(self, url: str, room: str, name: str, doc: str = "board") -> CollabClient:
        client = CollabClient(url, room, doc, auth={"name": name})
        self.all.append(client)
        await client.connect()
        return client

    async def member(
        self,
        url: str,
        room: str,
        sub: str,
        role: str = "participant",
        *,
        doc: str = "meta",
        token_room: str | None = None,
    ) -> CollabClient:
        """``sub`` on ``room``'s ``doc`` with a stable user id: a ``--dev``
        token naming ``sub``, for ``token_room`` (``room`` if None)."""
        claims = {"room": token_room or room, "name": sub.title(), "role": role, "sub": sub}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{url}/dev/token", json=claims) as response,
        ):
            token = (await response.json())["token"]
        client = CollabClient(url, room, doc, auth={"token": token})
        self.all.append(client)
        await client.connect()
        return client

    async def close(self) -> None:
        for client in self.all:
            with contextlib.suppress(Exception):
                await client.close(drain_timeout_s=1)


@contextlib.asynccontextmanager
async def clients() -> AsyncIterator[Clients]:
    group = Clients()
    try:
        yield group
    finally:
        await group.close()


class WriteLock:
    """Another process's write lock on the SQLite database: ``BEGIN
    EXCLUSIVE`` from this test process, held until released. Reads go on
    (WAL); every write of the server waits for it, then fails."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.conn: sqlite3.Connection | None = None

    async def __aenter__(self) -> WriteLock:
        conn = sqlite3.connect(self.db, timeout=10, isolation_level=None, check_same_thread=False)
        await asyncio.to_thread(conn.execute, "BEGIN EXCLUSIVE")
        self.conn = conn
        return self

    async def release(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await asyncio.to_thread(conn.execute, "ROLLBACK")
            conn.close()

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


def limit_file_size(pid: int, limit: int | None) -> None:
    """Set (or lift, with None) the file-size limit of process ``pid``: a
    write past ``limit`` bytes then fails with EFBIG (SQLite: disk I/O error;
    Python ignores SIGXFSZ). Only the soft limit, so it can be lifted again."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    soft = resource.RLIM_INFINITY if limit is None else limit
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))


def fill_the_disk(srv: Server) -> None:
    """A file-size limit at what the server's database files hold now: every
    store write (an append to the WAL) fails, as on a full disk; its log,
    smaller, still has room."""
    limit = max(p.stat().st_size for p in srv.data_dir.iterdir() if p.is_file())
    assert srv.node is not None and srv.node.stderr_path.stat().st_size < limit // 2
    limit_file_size(srv.pid, limit)


async def get_json(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def health(srv: Server) -> dict[str, Any]:
    status, body = await get_json(srv.url + "/healthz")
    assert status == 200, body
    return body


async def store_is(srv: Server, state: str) -> bool:
    return (await health(srv)).get("storeStatus") == state


async def wait_store(srv: Server, state: str, timeout_s: float = 10.0) -> None:
    await until(lambda: store_is(srv, state), timeout_s=timeout_s, what=f"/healthz store {state}")


def saving(client: CollabClient) -> str | None:
    state = client.room_state.get("saving")
    return str(state) if state is not None else None


async def wait_saving(group: Sequence[CollabClient], state: str, timeout_s: float = 10.0) -> None:
    for client in group:
        await client.wait_for(lambda c=client: saving(c) == state, timeout_s=timeout_s)


def shapes(client: CollabClient) -> dict[str, Any]:
    return client.doc.get("shapes", type=Map).to_py() or {}


def draw(client: CollabClient, key: str, *, text_bytes: int = 0) -> None:
    """Add a shape (with ``text_bytes`` of text: a write that needs room)."""
    shape: dict[str, Any] = {"type": "rect", "x": len(key), "y": 1}
    if text_bytes:
        shape["text"] = key * (text_bytes // len(key))
    client.doc.get("shapes", type=Map)[key] = shape


async def has_shapes(client: CollabClient, keys: set[str], timeout_s: float = 10.0) -> None:
    await client.wait_for(lambda: keys <= set(shapes(client)), timeout_s=timeout_s)


async def chat_code(call: Awaitable[dict[str, Any]]) -> str:
    """The error code a chat send was refused with ("ok" if it was not)."""
    try:
        await call
    except CollabClientError as exc:
        return exc.code
    return "ok"


async def stored_chat(url: str, room: str) -> list[dict[str, Any]]:
    """The room's chat messages, as a fresh joiner reads them."""
    reader = CollabClient(url, room, "chat", auth={"name": "Reader"})
    try:
        await reader.connect()
        return [dict(m) for m in reader.doc.get("messages", type=Array).to_py() or []]
    finally:
        await reader.close(drain_timeout_s=1)


async def stored_shapes(url: str, room: str) -> dict[str, Any]:
    """The room's board, as a fresh joiner reads it."""
    joiner = CollabClient(url, room, auth={"name": "Joiner"})
    try:
        await joiner.connect()
        return shapes(joiner)
    finally:
        await joiner.close(drain_timeout_s=1)


def exactly_once(messages: list[dict[str, Any]], acked: dict[str, str]) -> None:
    """Every acknowledged message (clientMessageId → id) is there once."""
    by_cmid: dict[str, list[str]] = {}
    for m in messages:
        by_cmid.setdefault(str(m.get("clientMessageId")), []).append(str(m.get("id")))
    for cmid, message_id in acked.items():
        assert by_cmid.get(cmid) == [message_id], (cmid, by_cmid.get(cmid))


async def metric(srv: Server, name: str) -> float:
    return (await scrape(srv.url)).get(name, float("nan"))


# -- chat ---------------------------------------------------------------------------


async def test_chat_while_the_store_is_locked_is_refused_at_once_then_stored_once(tmp_path):
    """Finding 2/3: an ack took SQLite's 5 s busy wait. Refused within the
    short wait now, retryable; the retry with the same id is stored once."""
    async with server(tmp_path) as srv, clients() as group:
        ann = await group.join(srv.url, "lock-chat", "Ann")
        acked = {"m-before": (await ann.send_chat("before", client_message_id="m-before"))["id"]}
        async with WriteLock(srv.db):
            started = time.monotonic()
            code = await chat_code(ann.send_chat("during", client_message_id="m-during"))
            took = time.monotonic() - started
            assert code == "store_unavailable"
            assert took < 3.0, f"a refused chat took {took:.1f} s"
            await wait_store(srv, "failing")
            status, ready = await get_json(srv.url + "/readyz")
            assert status == 503 and ready["ready"] is False and ready["storeStatus"] == "failing"
            assert (await health(srv))["status"] == "degraded"
        await wait_store(srv, "ok")
        status, ready = await get_json(srv.url + "/readyz")
        assert status == 200 and ready["ready"] is True
        ack = await ann.send_chat("during", client_message_id="m-during")
        again = await ann.send_chat("during", client_message_id="m-during")
        assert again["duplicate"] and again["id"] == ack["id"]
        acked["m-during"] = ack["id"]
        exactly_once(await stored_chat(srv.url, "lock-chat"), acked)
        assert await metric(srv, "collab_store_write_failures_total") >= 1
        assert await srv.stop() == 0
        await srv.start()
        exactly_once(await stored_chat(srv.url, "lock-chat"), acked)


async def test_a_user_whose_chat_waits_on_the_store_keeps_drawing_for_the_group(tmp_path):
    """Finding 2/3: with every handler awaited in the session's read loop, a
    chat waiting on the store froze its sender's drawing for everyone. The
    chat runs in the session's lane now: the drawing reaches the group while
    the chat still waits."""
    async with server(tmp_path) as srv, clients() as group:
        ann = await group.join(srv.url, "lane", "Ann")
        bob = await group.join(srv.url, "lane", "Bob")
        async with WriteLock(srv.db):
            chat = asyncio.ensure_future(
                chat_code(ann.send_chat("waits", client_message_id="m-wait"))
            )
            await asyncio.sleep(0)  # the chat goes out first, on the same socket
            for i in range(5):
                draw(ann, f"during-{i}")
            await has_shapes(bob, {f"during-{i}" for i in range(5)}, timeout_s=5)
            assert not chat.done(), "the drawing reached Bob only after the chat's answer"
            assert await asyncio.wait_for(chat, 10) == "store_unavailable"
        await wait_store(srv, "ok")
        assert await chat_code(ann.send_chat("waits", client_message_id="m-wait")) == "ok"
        assert shapes(bob) == shapes(ann)


# -- board edits: delayed, then read-only ----------------------------------------------


async def test_board_edits_go_on_through_a_short_outage_and_are_saved_after(tmp_path):
    """Saving delayed: edits go on in memory, every member is told, /healthz
    and /metrics show it; when the store is back everything is written."""
    async with server(tmp_path, "--store-delay-window-s", "30") as srv, clients() as group:
        ann = await group.join(srv.url, "delayed", "Ann")
        bob = await group.join(srv.url, "delayed", "Bob")
        assert saving(ann) == "ok"
        draw(ann, "before")
        await has_shapes(bob, {"before"})
        async with WriteLock(srv.db):
            for i in range(5):
                draw(ann, f"during-{i}")
            await has_shapes(bob, {f"during-{i}" for i in range(5)})
            await wait_saving([ann, bob], "delayed")
            await wait_store(srv, "failing")
            metrics = await scrape(srv.url)
            assert metrics["collab_store_up"] == 0
            assert metrics["collab_store_write_failures_total"] >= 1
            assert metrics["collab_store_writes_delayed_total"] >= 1
            assert metrics["collab_unsaved_updates"] >= 5
            assert metrics['collab_rooms_saving{state="delayed"}'] == 1
            assert metrics["collab_oldest_unsaved_seconds"] > 0
        await wait_saving([ann, bob], "ok")
        metrics = await scrape(srv.url)
        assert metrics["collab_oldest_unsaved_seconds"] == 0
        assert metrics["collab_unsaved_updates"] == 0
        assert await stored_shapes(srv.url, "delayed") == shapes(ann) == shapes(bob)
        assert await srv.stop() == 0
        await srv.start()
        assert await stored_shapes(srv.url, "delayed") == shapes(ann)


async def test_past_the_delay_window_the_room_is_read_only_until_the_store_is_back(tmp_path):
    """Past store_delay_window_s: board edits and chat refused
    store_unavailable, everyone told read_only; joins still work; when the
    store takes writes again, everything is written and writes resume."""
    async with server(tmp_path, "--store-delay-window-s", "1") as srv, clients() as group:
        ann = await group.join(srv.url, "readonly", "Ann")
        bob = await group.join(srv.url, "readonly", "Bob")
        draw(ann, "before")
        await has_shapes(bob, {"before"})
        async with WriteLock(srv.db):
            draw(ann, "kept")
            await has_shapes(bob, {"kept"})
            await wait_saving([ann, bob], "delayed")
            await wait_saving([ann, bob], "read_only", timeout_s=10)
            draw(bob, "refused")
            await bob.wait_for(
                lambda: any(e.get("code") == "store_unavailable" for e in bob.errors)
            )
            assert await chat_code(ann.send_chat("no", client_message_id="m-no")) == (
                "store_unavailable"
            )
            # A joiner is let in (reads work) and sees what the room kept, not the refused edit.
            cy = await group.join(srv.url, "readonly", "Cy")
            await wait_saving([cy], "read_only")
            assert set(shapes(cy)) == {"before", "kept"}
            # Refusals for the outage are not held against the session.
            assert bob.connected
        await wait_saving([ann, cy], "ok")
        draw(cy, "after")
        await has_shapes(ann, {"after"})
        assert await chat_code(ann.send_chat("no", client_message_id="m-no")) == "ok"
        stored = await stored_shapes(srv.url, "readonly")
        assert {"before", "kept", "after"} <= set(stored)
        assert "refused" not in stored
        assert await srv.stop() == 0
        await srv.start()
        assert await stored_shapes(srv.url, "readonly") == stored


# -- a full disk, a deleted data directory ---------------------------------------------------


async def test_a_full_disk_is_an_outage_and_nothing_is_lost(tmp_path):
    """Finding 2/3 (disk full: "disk I/O error"): seen and reported, chat
    refused, edits kept, including those of a user who left; all written
    once there is room again."""
    async with server(tmp_path, "--store-delay-window-s", "30") as srv, clients() as group:
        ann = await group.join(srv.url, "disk", "Ann")
        bob = await group.join(srv.url, "disk", "Bob")
        acked = {"m-1": (await ann.send_chat("one", client_message_id="m-1"))["id"]}
        fill_the_disk(srv)
        try:
            for i in range(40):  # 80 KB: more than the disk has left
                draw(bob, f"bob-{i}", text_bytes=2000)
            await has_shapes(ann, {f"bob-{i}" for i in range(40)})
            await bob.close()  # Bob leaves; his edits are only in memory
            await wait_store(srv, "failing")
            await wait_saving([ann], "delayed")
            assert await chat_code(ann.send_chat("two", client_message_id="m-2")) == (
                "store_unavailable"
            )
        finally:
            limit_file_size(srv.pid, None)
        await wait_store(srv, "ok")
        await wait_saving([ann], "ok")
        acked["m-2"] = (await ann.send_chat("two", client_message_id="m-2"))["id"]
        assert await srv.stop() == 0
        await srv.start()
        assert set(await stored_shapes(srv.url, "disk")) == {f"bob-{i}" for i in range(40)}
        exactly_once(await stored_chat(srv.url, "disk"), acked)
        assert "disk I/O error" in srv.log() or "disk is full" in srv.log()


async def test_a_removed_data_directory_is_an_outage_not_a_silent_loss(tmp_path):
    """Finding 2/3: the data directory deleted under a running server went
    unnoticed (/healthz ok, chat acknowledged into an unlinked file). It is
    an outage now, and nothing is recreated behind the operator's back."""
    async with server(tmp_path) as srv, clients() as group:
        ann = await group.join(srv.url, "gone", "Ann")
        await ann.send_chat("kept", client_message_id="m-1")
        await wait_store(srv, "ok")
        _remove_tree(srv.data_dir)
        await wait_store(srv, "failing")
        status, _ = await get_json(srv.url + "/readyz")
        assert status == 503
        assert await chat_code(ann.send_chat("lost?", client_message_id="m-2")) == (
            "store_unavailable"
        )
        draw(ann, "in-memory")
        await wait_saving([ann], "delayed")
        assert not srv.data_dir.exists(), "the store recreated its directory"


def _remove_tree(path: Path) -> None:
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


# -- joins answer ---------------------------------------------------------------------------


def _shape(key: str) -> bytes:
    doc = Doc(client_id=zlib.crc32(key.encode()))
    doc.get("shapes", type=Map)[key] = {"type": "rect"}
    return bytes(doc.get_update())


async def test_a_join_whose_room_cannot_load_is_refused_room_unavailable(tmp_path):
    """Finding 7: a join that found its room unloading waited for the old
    copy's flush, which waits for the store: for as long as the outage
    lasts. Now it is refused room_unavailable after join_timeout_s, the
    load goes on, and a join after the outage finds everything.

    In process (a RoomRegistry on a real SqliteStore, locked by a second
    connection): the room must be caught unloading, which a process gives no
    handle on."""
    store = await SqliteStore.open(tmp_path / "collab.sqlite3")
    registry = RoomRegistry(
        store=store,
        engine_factory=engine_factory("pycrdt"),
        limits=Limits(),
        unload_after_s=0,
        flush_interval_s=0.1,  # how often the old copy retries its flush
        join_timeout_s=0.5,
    )
    ann = Identity(UserId("u-ann"), "Ann", Role.PARTICIPANT)
    room_id, board = RoomId("r"), DocName("board")
    lock = WriteLock(tmp_path / "collab.sqlite3")
    try:
        doc = await registry.join(room_id, board, "m1", ann)
        doc.receive_update(_shape("kept"), ann)
        old = registry.rooms[room_id]
        await lock.__aenter__()
        registry.leave(doc, "m1")  # unload_after_s=0: the unload starts, its flush waits
        await until(lambda: old.state is RoomState.UNLOADING, what="the room unloading")
        started = time.monotonic()
        with pytest.raises(RoomUnavailable):
            await registry.join(room_id, board, "m2", ann)
        assert time.monotonic() - started < 2.0
        await lock.release()
        await until(lambda: old.state is RoomState.UNLOADED, what="the old copy stored")
        fresh = await registry.join(room_id, board, "m3", ann)
        assert fresh.engine.read_map("shapes") == {"kept": {"type": "rect"}}
    finally:
        await lock.release()
        await registry.close(grace_s=5)
        await store.close()
