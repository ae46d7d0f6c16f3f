"""``collab serve --store postgres`` as a real process on a real PostgreSQL
server: what it stores survives a restart of the node, an outage of the
server is one like SQLite's (protocol.md §11: chat refused
``store_unavailable``, board edits kept in memory with saving "delayed",
everything stored once when the server is back), and a start it cannot make
says why in one line, without the password.

The oracles are tests/faults/test_store_outages.py's (reused from there).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from collab.client import CollabClient
from tests.conftest import ADMIN_KEY, SECRET, mint
from tests.faults.test_store_outages import (
    chat_code,
    clients,
    draw,
    exactly_once,
    get_json,
    has_shapes,
    shapes,
    stored_chat,
    stored_shapes,
    wait_saving,
    wait_store,
)
from tests.procs import CollabNode, free_port
from tests.scrape import scrape
from tests.waiting import until

pytestmark = pytest.mark.slow


class Node:
    """One ``collab serve --store postgres`` on a fixed port and data
    directory, restartable (each start a new process)."""

    def __init__(self, tmp_path: Path, *args: str, node_id: str = "pg") -> None:
        self.tmp_path = tmp_path
        self.args = args
        self.node_id = node_id
        self.port = free_port()
        self.node: CollabNode | None = None
        self.logs: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.node = CollabNode(
            self.tmp_path,
            "--store",
            "postgres",
            "--log-level",
            "info",
            *self.args,
            node_id=self.node_id,
            port=self.port,
        )
        await self.node.start()

    async def stop(self) -> int | None:
        assert self.node is not None
        return await self.node.stop()

    def log(self) -> str:
        return self.node.log() if self.node is not None else ""

    async def kill(self) -> None:
        if self.node is not None:
            await self.node.kill()


async def rows(url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


# -- everything stored, read back after a restart ---------------------------------------


async def test_a_node_on_postgres_keeps_boards_chat_room_records_and_audit_across_restarts(
    tmp_path, postgres_server, postgres_database
):
    """Board edits (compacted past a small bound), chat, the room's record
    and the audit log are in PostgreSQL after a stop, and a new process
    serves all of it. The password comes from a file and never reaches the
    log; the stop needs no recovery file."""
    secret = tmp_path / "pg-password"
    secret.write_text(postgres_server.PASSWORD + "\n")
    secret.chmod(0o600)
    node = Node(
        tmp_path,
        "--jwt-secret",
        SECRET,
        "--admin-key",
        ADMIN_KEY,
        "--postgres-url",
        postgres_server.url(postgres_database, password=False),
        "--postgres-password-file",
        str(secret),
        "--flush-interval-s",
        "0.2",
        "--compact-after-updates",
        "5",
    )
    room = "clinic-7/pg"
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    await node.start()
    made: list[CollabClient] = []

    async def join(name: str, role: str = "participant") -> CollabClient:
        token = mint(room, role=role, name=name, sub=name.lower())
        client = CollabClient(node.url, room, auth={"token": token})
        made.append(client)
        await client.connect()
        return client

    try:
        async with aiohttp.ClientSession(headers=admin) as http:
            body = {"id": room, "title": "On PostgreSQL", "retentionDays": 12}
            async with http.post(node.url + "/api/rooms", json=body) as resp:
                assert resp.status == 201, await resp.text()
        ann = await join("Ann", "facilitator")
        bob = await join("Bob")
        for i in range(12):
            draw(ann if i % 2 else bob, f"shape-{i}")
        await has_shapes(ann, {f"shape-{i}" for i in range(12)})
        acked = {}
        for i in range(3):
            ack = await bob.send_chat(f"message {i}", client_message_id=f"m-{i}")
            acked[f"m-{i}"] = ack["id"]
        board = shapes(ann)
        for client in made:
            await client.close(drain_timeout_s=1)
        assert await node.stop() == 0
        assert not list((tmp_path / node.node_id).glob("collab-recovery-*")), "nothing unsaved"

        url = postgres_server.url(postgres_database)
        assert await rows(url, "SELECT title, retention_days FROM rooms WHERE room = $1", room) == [
            ("On PostgreSQL", 12.0)
        ]
        assert await rows(
            url, "SELECT count(*) FROM snapshots WHERE room = $1 AND doc = 'board'", room
        ) == [(1,)], "compacted past --compact-after-updates"
        actions = {a for (a,) in await rows(url, "SELECT action FROM audit WHERE room = $1", room)}
        assert {"create", "connect", "disconnect"} <= actions

        await node.start()
        assert await stored_shapes_as(node.url, room) == board
        exactly_once(await stored_chat_as(node.url, room), acked)
        async with aiohttp.ClientSession(headers=admin) as http:
            async with http.get(node.url + "/api/rooms") as resp:
                listed = {r["id"]: r for r in (await resp.json())["rooms"]}
            assert listed[room]["title"] == "On PostgreSQL"
            assert listed[room]["retentionDays"] == 12
            async with http.get(node.url + "/api/rooms/clinic-7%2Fpg/audit") as resp:
                records = (await resp.json())["records"]
            assert {"create", "connect"} <= {r["action"] for r in records}
        assert await node.stop() == 0
        assert postgres_server.PASSWORD not in node.log()
    finally:
        await asyncio.gather(*(c.close(drain_timeout_s=1) for c in made), return_exceptions=True)
        await node.kill()


async def stored_shapes_as(url: str, room: str) -> dict[str, Any]:
    """The board as a fresh joiner with a token reads it."""
    client = CollabClient(url, room, auth={"token": mint(room, name="Reader", sub="reader")})
    try:
        await client.connect()
        return shapes(client)
    finally:
        await client.close(drain_timeout_s=1)


async def stored_chat_as(url: str, room: str) -> list[dict[str, Any]]:
    """The chat as a fresh joiner with a token reads it."""
    from pycrdt import Array

    client = CollabClient(url, room, "chat", auth={"token": mint(room, name="Reader", sub="r")})
    try:
        await client.connect()
        return [dict(m) for m in client.doc.get("messages", type=Array).to_py() or []]
    finally:
        await client.close(drain_timeout_s=1)


# -- an outage ------------------------------------------------------------------------------


async def test_while_postgres_is_down_chat_is_refused_edits_wait_and_nothing_is_lost(
    tmp_path, own_postgres
):
    """PostgreSQL stops (a fast shutdown: sessions cut, the port closed):
    the node notices with nothing to write, refuses chat at once
    (store_unavailable), keeps board edits in memory, including those of a
    user who left, says "delayed"; when PostgreSQL is back it stores
    everything once, the refused message's retry is stored once, and a new
    process reads it all."""
    pg = own_postgres
    database = await pg.create_database()
    node = Node(
        tmp_path,
        "--dev",
        "--postgres-url",
        pg.url(database),
        "--flush-interval-s",
        "0.1",
        "--unload-after-s",
        "60",
        "--store-delay-window-s",
        "60",
    )
    room = "pg-outage"
    await node.start()
    try:
        async with clients() as group:
            ann = await group.join(node.url, room, "Ann")
            bob = await group.join(node.url, room, "Bob")
            acked = {
                "m-before": (await ann.send_chat("before", client_message_id="m-before"))["id"]
            }
            draw(ann, "before")
            await has_shapes(bob, {"before"})
            await wait_saving([ann, bob], "ok")

            await pg.astop()
            await wait_store(node, "failing")  # noticed with nothing to write
            status, ready = await get_json(node.url + "/readyz")
            assert status == 503 and ready["storeStatus"] == "failing"
            started = time.monotonic()
            code = await chat_code(ann.send_chat("during", client_message_id="m-during"))
            assert code == "store_unavailable"
            assert time.monotonic() - started < 3.0, "a refused chat is answered at once"
            for i in range(5):
                draw(ann, f"during-{i}")
            draw(bob, "bob-left")
            await has_shapes(ann, {"bob-left"})
            await has_shapes(bob, {f"during-{i}" for i in range(5)})
            await bob.close(drain_timeout_s=1)  # Bob leaves: his edit is only in memory
            await wait_saving([ann], "delayed")
            metrics = await scrape(node.url)
            assert metrics["collab_store_up"] == 0
            assert metrics["collab_unsaved_updates"] >= 6
            assert metrics['collab_rooms_saving{state="delayed"}'] == 1

            async def failed_rounds() -> bool:
                return (await scrape(node.url))["collab_store_write_failures_total"] >= 20

            # An outage of many flush rounds, not one failed write.
            await until(failed_rounds, timeout_s=15, what="20 failed store writes")
            await pg.astart()
            await wait_store(node, "ok", timeout_s=15)
            await wait_saving([ann], "ok", timeout_s=15)
            ack = await ann.send_chat("during", client_message_id="m-during")
            again = await ann.send_chat("during", client_message_id="m-during")
            assert again["duplicate"] and again["id"] == ack["id"]
            acked["m-during"] = ack["id"]
            expected = shapes(ann)
            assert {"before", "bob-left"} | {f"during-{i}" for i in range(5)} <= set(expected)
            assert await stored_shapes(node.url, room) == expected
            exactly_once(await stored_chat(node.url, room), acked)

        assert await node.stop() == 0
        # Stored once: no update was written twice by the retries.
        ((total, distinct),) = await rows(
            pg.url(database), "SELECT count(*), count(DISTINCT data) FROM updates"
        )
        assert total == distinct
        log = node.log()
        assert "store writes failing" in log and "store writes again" in log
        assert pg.PASSWORD not in log

        await node.start()
        assert await stored_shapes(node.url, room) == expected
        exactly_once(await stored_chat(node.url, room), acked)
    finally:
        await node.kill()


# -- a start that cannot be made ---------------------------------------------------------


async def serve_refused(tmp_path: Path, *args: str) -> str:
    """``collab serve`` with ``args``, which must fail with exit code 1 and
    one line on stderr, no traceback; that output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collab",
        "serve",
        "--dev",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        "--log-level",
        "warning",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = (out + err).decode(errors="replace")
    assert proc.returncode == 1, text
    assert "Traceback" not in text, text
    return text


async def test_a_start_on_postgres_that_fails_says_why_without_the_password(
    tmp_path, postgres_server, postgres_database
):
    wrong = postgres_server.url(postgres_database).replace(postgres_server.PASSWORD, "bad-pw-123")
    text = await serve_refused(tmp_path, "--store", "postgres", "--postgres-url", wrong)
    assert (
        "cannot start: PostgreSQL refused the credentials at postgresql://collab@127.0.0.1" in text
    )
    assert "bad-pw-123" not in text

    both = tmp_path / "pw"
    both.write_text("x\n")
    text = await serve_refused(
        tmp_path,
        "--store",
        "postgres",
        "--postgres-url",
        postgres_server.url(postgres_database),
        "--postgres-password-file",
        str(both),
    )
    assert "both in the URL and in --postgres-password-file" in text
    assert postgres_server.PASSWORD not in text

    closed = f"postgresql://collab@127.0.0.1:{free_port()}/collab"
    text = await serve_refused(tmp_path, "--store", "postgres", "--postgres-url", closed)
    assert "cannot reach PostgreSQL at postgresql://collab@127.0.0.1" in text
