"""The server log under attack (issue 12, "Logs and audit under attack").

A real ``collab serve`` process at log level info gets hostile input: an admin
path with an encoded newline, a flood of bad admin keys, an event name with a
newline, a token whose display name is a marker, chat text, packets that
fail to decode inside the Socket.IO library. Its log must stay one record per
line, each line stamped, without a traceback, with no content and no client
string in clear, and the flood must cost a handful of lines, not one each.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from crdt.types import RoomId
from rooms.names import BOARD, CHAT, namespace_for
from tests.conftest import ADMIN_KEY, SECRET, mint
from tests.procs import CollabNode
from tests.rawsio import RawSocket
from tests.waiting import until

pytestmark = pytest.mark.timeout(120)

ROOM = RoomId("clinic-7/group-a")
#: What a forged line would start with: the log's own prefix.
FORGED = "2026-01-01 00:00:00,000 CRITICAL collab.admin "
PATH_MARK = "PATHMARK-c41d"
EVENT_MARK = "EVENTMARK-9b2e"
NAME_MARK = "NAMEMARK-5a80"
CHAT_MARK = "CHATMARK-e613"
PACKET_MARK = "PACKETMARK-77f0"
#: The stamp every line of the log starts with (collab/cli.py's format).
STAMPED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S")

FLOOD = 1000


@pytest.fixture
async def node(tmp_path) -> AsyncIterator[CollabNode]:
    srv = CollabNode(
        tmp_path,
        "--jwt-secret",
        SECRET,
        "--admin-key",
        ADMIN_KEY,
        "--log-level",
        "info",
        node_id="hostile",
    )
    await srv.start()
    yield srv
    await srv.kill()


def line_count(node: CollabNode) -> int:
    return len(node.log().splitlines())


async def admin_get(http: aiohttp.ClientSession, url: URL, key: str) -> int:
    async with http.get(url, headers={"Authorization": f"Bearer {key}"}) as resp:
        await resp.read()
        return resp.status


def check_log(node: CollabNode) -> str:
    """The whole log, after asserting what holds for every line of it."""
    text = node.log()
    assert "Traceback" not in text
    assert "^^^" not in text  # no source excerpt either
    for line in text.splitlines():
        assert STAMPED.match(line), line
    return text


def only_escaped(text: str, mark: str) -> bool:
    """Whether every occurrence of ``mark`` follows an escaped newline and the
    forged prefix (the line it tried to start is part of another line)."""
    return text.count(mark) == text.count("\\n" + FORGED + mark)


async def test_a_flood_of_bad_admin_keys_costs_a_handful_of_lines(node):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
        before = line_count(node)
        rooms_url = URL(f"{node.url}/api/rooms")
        statuses = await asyncio.gather(
            *(admin_get(http, rooms_url, f"wrong-key-{i}") for i in range(FLOOD))
        )
        assert statuses == [401] * FLOOD
        flood = node.log().splitlines()[before:]
        assert 1 <= len(flood) <= 3, flood[:10]
        assert "admin" in flood[0]  # the first failure is logged
        # /metrics counts every one of them.
        async with http.get(f"{node.url}/metrics") as resp:
            metrics = await resp.text()
    assert f"collab_admin_auth_failures_total {FLOOD}.0" in metrics
    assert await node.stop() == 0
    # The rest are summed up in one line (at the latest when the server stops).
    summary = [line for line in check_log(node).splitlines()[before:] if "repeats=" in line]
    assert len(summary) == 1 and f"repeats={FLOOD - 1} " in summary[0], summary


async def test_client_strings_cannot_forge_a_log_line(node):
    async with aiohttp.ClientSession() as http:
        # An admin path whose %0A would start a forged line (the first failure
        # of this address: logged, the path quoted).
        forged_path = f"{node.url}/api/rooms/x%0A{FORGED.replace(' ', '%20')}{PATH_MARK}/audit"
        assert await admin_get(http, URL(forged_path, encoded=True), "wrong") == 401
    # An event name with a newline (python-socketio hands it over decoded).
    raw = await RawSocket.open(node.url)
    try:
        token = mint(ROOM, name="Ann", sub="user-ann")
        board = namespace_for(ROOM, BOARD)
        assert (await raw.connect(board, {"token": token}))["connected"]
        await raw.ws.send_str(f"42{board}," + json.dumps([f"ev\n{FORGED}{EVENT_MARK}", 1]))
        error = await raw.next_text(f'42{board},["collab:error"')
        assert "unknown_event" in error
    finally:
        await raw.close()
    await until(lambda: EVENT_MARK in node.log(), what="the refused event logged")
    assert await node.stop() == 0
    text = check_log(node)
    assert only_escaped(text, PATH_MARK)
    assert only_escaped(text, EVENT_MARK)


async def test_content_never_reaches_the_log(node):
    raw = await RawSocket.open(node.url)
    try:
        # A participant whose display name is a marker, and chat text.
        # Platforms often make the sub an e-mail address: logs name it by a pseudonym.
        token = mint(ROOM, name=f"Ann {NAME_MARK}", sub="ann.patient@example.org")
        chat = namespace_for(ROOM, CHAT)
        assert (await raw.connect(chat, {"token": token}))["connected"]
        message = {"text": f"my {CHAT_MARK} story", "clientMessageId": "m-1"}
        await raw.ws.send_str(f"42{chat},1" + json.dumps(["chat:send", message]))
        ack = json.loads((await raw.next_text(f"43{chat},1"))[len(f"43{chat},1") :])
        assert ack[0]["ok"] is True, ack
        # A name that is not a valid display name is refused, and not logged.
        bad = mint(ROOM, name=f"Ann\n{FORGED}{NAME_MARK}", sub="user-bad")
        reply = await raw.connect(namespace_for(ROOM, BOARD), {"token": bad})
        assert not reply["connected"]
    finally:
        await raw.close()
    await until(lambda: "chat message" in node.log(), what="the chat message logged")
    assert await node.stop() == 0
    text = check_log(node)
    assert NAME_MARK not in text
    assert CHAT_MARK not in text
    assert "ann.patient" not in text
    assert re.search(r"connected sid=\S+ room=\S+ doc=chat user=h-[0-9a-f]{12} ", text)


async def test_an_exception_from_client_input_leaves_no_traceback_or_text(node):
    # Packets whose decoding fails inside python-socketio (over long-polling
    # the library decodes them itself): exceptions raised by client input.
    board = namespace_for(ROOM, BOARD)
    bodies = [
        f'42{board},{{"{PACKET_MARK}": \n',
        f"42{board},{PACKET_MARK}",
        f'451-{board},["{PACKET_MARK}",{{"_placeholder":true,"num":7}}]',
        f"4{PACKET_MARK}",
    ]
    async with aiohttp.ClientSession() as http:
        for body in bodies:  # a session each: a bad packet may end one
            async with http.get(f"{node.url}/socket.io/?EIO=4&transport=polling") as resp:
                sid = json.loads((await resp.text())[1:])["sid"]
            poll = f"{node.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
            # The server handles a POST's packets before it answers it.
            async with http.post(poll, data=body) as resp:
                await resp.read()
    assert await node.stop() == 0
    text = check_log(node)
    assert PACKET_MARK not in text
