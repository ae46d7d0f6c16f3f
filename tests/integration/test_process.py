"""``collab serve`` as a real process: signals, shutdown flush, restart with SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import pytest
from pycrdt import Array, Map

from collab.client import CollabClient
from tests.boards import shapes
from tests.procs import CollabNode

pytestmark = pytest.mark.slow


@pytest.fixture
async def process(tmp_path):
    """``collab serve`` with the SQLite store; every restart keeps its data dir."""
    servers: list[CollabNode] = []

    def make(*extra: str) -> CollabNode:
        srv = CollabNode(
            tmp_path,
            "--store",
            "sqlite",
            "--log-level",
            "warning",
            *(extra or ("--dev",)),
            node_id="solo",
        )
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        await srv.kill()


def chat(client: CollabClient) -> list[dict]:
    return client.doc.get("messages", type=Array).to_py() or []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_restart_keeps_every_board_and_chat(process, sig):
    # A flush interval longer than the test: only the shutdown flush can save the data.
    srv = process("--dev", "--flush-interval-s", "600")
    await srv.start()
    board = CollabClient(srv.url, "clinic-7/group-a", auth={"name": "Ann"}, reconnection=False)
    chat_conn = CollabClient(
        srv.url, "clinic-7/group-a", "chat", auth={"name": "Ann"}, reconnection=False
    )
    other = CollabClient(srv.url, "other-room", auth={"name": "Bob"}, reconnection=False)
    for c in (board, chat_conn, other):
        await c.connect()
    for i in range(20):
        board.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect", "x": float(i)}
    other.doc.get("shapes", type=Map)["o"] = {"type": "ellipse"}
    for i in range(3):
        await chat_conn.send_chat(f"hello {i}")
    # The server holds the board once a second client sees it.
    probe = CollabClient(srv.url, "clinic-7/group-a", auth={"name": "P"}, reconnection=False)
    await probe.connect()
    await probe.wait_for(lambda: len(shapes(probe)) == 20)
    assert await srv.stop(sig) == 0
    for c in (board, chat_conn, other, probe):
        await c.close()

    await srv.start()
    fresh = CollabClient(srv.url, "clinic-7/group-a", auth={"name": "C"}, reconnection=False)
    fresh_chat = CollabClient(
        srv.url, "clinic-7/group-a", "chat", auth={"name": "C"}, reconnection=False
    )
    fresh_other = CollabClient(srv.url, "other-room", auth={"name": "C"}, reconnection=False)
    try:
        for c in (fresh, fresh_chat, fresh_other):
            await c.connect()
        assert shapes(fresh) == {f"s{i}": {"type": "rect", "x": float(i)} for i in range(20)}
        assert [m["text"] for m in chat(fresh_chat)] == ["hello 0", "hello 1", "hello 2"]
        assert all(m["authorName"] == "Ann" for m in chat(fresh_chat))
        assert shapes(fresh_other) == {"o": {"type": "ellipse"}}
    finally:
        for c in (fresh, fresh_chat, fresh_other):
            await c.close()
    assert await srv.stop() == 0


async def test_client_reconnects_after_restart_and_gets_everything(process):
    srv = process()
    await srv.start()
    ann = CollabClient(srv.url, "session", auth={"name": "Ann"})
    await ann.connect()
    ann.doc.get("shapes", type=Map)["before"] = {"type": "rect"}
    probe = CollabClient(srv.url, "session", auth={"name": "P"}, reconnection=False)
    await probe.connect()
    await probe.wait_for(lambda: "before" in shapes(probe))
    await probe.close()

    assert await srv.stop() == 0
    await ann.wait_for(lambda: not ann.synced.is_set(), timeout_s=10)
    ann.doc.get("shapes", type=Map)["while-down"] = {"type": "sticky", "text": "offline"}
    await srv.start()
    try:
        await ann.wait_synced(timeout_s=20)  # python-socketio reconnects by itself
        fresh = CollabClient(srv.url, "session", auth={"name": "B"}, reconnection=False)
        await fresh.connect()
        await fresh.wait_for(lambda: {"before", "while-down"} <= shapes(fresh).keys())
        await fresh.close()
    finally:
        await ann.close()
    with contextlib.suppress(Exception):
        assert await srv.stop() == 0


async def test_refuses_to_start_without_a_token_key(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collab",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert b"refusing to start without a token key" in err
    assert b"listening" not in out


@pytest.mark.parametrize(
    ("choice", "loop"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
async def test_serves_on_the_chosen_event_loop(process, choice, loop):
    srv = process("--dev", "--event-loop", choice, "--log-level", "info")
    await srv.start()
    assert f"loop={loop}" in srv.log()
    a = CollabClient(srv.url, "loop", auth={"name": "A"}, reconnection=False)
    b = CollabClient(srv.url, "loop", auth={"name": "B"}, reconnection=False)
    try:
        await a.connect()
        await b.connect()
        a.doc.get("shapes", type=Map)["s"] = {"type": "rect"}
        await b.wait_for(lambda: "s" in shapes(b))
    finally:
        await a.close()
        await b.close()
    assert await srv.stop() == 0
