"""``--log-format`` and ``--access-log`` in a real ``collab serve`` process
(issue 13, finding 8: the access log recorded client addresses with room paths).

Each process gets the same requests: the session page of a room whose id
names a patient, with a query, a Referer and a User-Agent of its own; the
admin API's OpenAPI document;
``/healthz``; a bad Engine.IO request; and a board connection. Then its
whole log is read: every line is one record in the chosen format, and the
access lines say what the mode promises and nothing more.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from collab.client import CollabClient
from tests.conftest import SECRET, mint
from tests.procs import CollabNode
from tests.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOM_PATH = "/r/clinic-7/patient-jane-doe"
QUERY_MARK = "QUERYMARK-71aa"
AGENT_MARK = "AGENTMARK-0c3e"
REFERER_MARK = "REFERERMARK-9d12"
#: A text line: time, level, logger (collab/logs.py FORMAT).
STAMPED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S")
#: The scrubbed access line, whole.
SCRUBBED = re.compile(
    r"request method=(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|OTHER) status=\d{3} "
    r"duration_ms=\d+\.\d bytes=\d+"
)
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _file(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.touch(mode=0o600)
    path.write_text(text)
    return path


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., CollabNode]]:
    nodes: list[CollabNode] = []

    def make(*args: str) -> CollabNode:
        node = CollabNode(
            tmp_path,
            "--jwt-secret-file",
            str(_file(tmp_path, "jwt-secret", SECRET)),
            *args,
            node_id=f"logs-{len(nodes)}",
        )
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.kill()


async def traffic(node: CollabNode) -> None:
    """The same requests for every mode; returns once they are answered."""
    headers = {"User-Agent": AGENT_MARK, "Referer": f"https://platform.example/{REFERER_MARK}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{node.url}{ROOM_PATH}?{QUERY_MARK}=1") as resp:
            assert resp.status == 200
        async with http.get(f"{node.url}/api/openapi.json") as resp:
            assert resp.status == 200
        async with http.get(f"{node.url}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{node.url}/socket.io/?EIO=3&transport=polling") as resp:
            assert resp.status == 400
    board = CollabClient(
        node.url, "other-room", auth={"token": mint("other-room")}, reconnection=False
    )
    await board.connect()
    await board.close()


def access_lines_text(log: str) -> list[str]:
    return [line for line in log.splitlines() if " aiohttp.access " in line]


def records(log: str) -> list[dict[str, str]]:
    parsed = [json.loads(line) for line in log.splitlines()]
    for record in parsed:
        assert set(record) <= {"ts", "level", "logger", "message", "exception", "stack"}, record
        assert {"ts", "level", "logger", "message"} <= set(record), record
        assert TS.fullmatch(record["ts"]), record
    return parsed


#: What a request says about who asked for what (the room is in the path).
REQUEST_MARKS = ("patient-jane-doe", QUERY_MARK, AGENT_MARK, REFERER_MARK)


def assert_names_no_one(lines: list[str]) -> None:
    """No line names the room, the query, the client's headers or address."""
    for line in lines:
        for mark in (*REQUEST_MARKS, "127.0.0.1"):
            assert mark not in line, line


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_access_log_off_writes_no_access_line(serve, log_format):
    node = serve("--log-format", log_format, "--access-log", "off", "--log-level", "debug")
    await node.start()
    await traffic(node)
    assert await node.stop() == 0
    log = node.log()
    assert "connected sid=" in log, "the server's own records are written"
    if log_format == "text":
        assert all(STAMPED.match(line) for line in log.splitlines())
        assert access_lines_text(log) == []
    else:
        assert [r for r in records(log) if r["logger"] == "aiohttp.access"] == []
    for mark in REQUEST_MARKS:
        assert mark not in log


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_scrubbed_access_log_has_method_status_time_and_size_only(serve, log_format):
    node = serve("--log-format", log_format, "--access-log", "scrubbed")
    await node.start()
    await traffic(node)
    assert await node.stop() == 0
    log = node.log()
    if log_format == "text":
        assert all(STAMPED.match(line) for line in log.splitlines())
        lines = access_lines_text(log)
        messages = [line.partition(" aiohttp.access ")[2] for line in lines]
    else:
        access = [r for r in records(log) if r["logger"] == "aiohttp.access"]
        messages = lines = [r["message"] for r in access]
    # The page, the admin API, /healthz, the refused handshake, the board's socket.
    assert len(messages) >= 5, log
    for message in messages:
        assert SCRUBBED.fullmatch(message), message
    assert any(m.startswith("request method=GET status=200 ") for m in messages)
    assert any(" status=400 " in m for m in messages)
    assert_names_no_one(lines)
    for mark in REQUEST_MARKS:
        assert mark not in log


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_full_access_log_is_aiohttps_line(serve, log_format):
    node = serve("--log-format", log_format, "--access-log", "full")
    await node.start()
    await traffic(node)
    await until(lambda: AGENT_MARK in node.log(), what="the access lines written")
    assert await node.stop() == 0
    log = node.log()
    if log_format == "text":
        lines = access_lines_text(log)
    else:
        lines = [r["message"] for r in records(log) if r["logger"] == "aiohttp.access"]
    page = [line for line in lines if ROOM_PATH in line]
    assert len(page) == 1, lines
    assert "127.0.0.1" in page[0] and QUERY_MARK in page[0] and AGENT_MARK in page[0]
    assert '" 200 ' in page[0]


async def test_an_access_log_that_is_on_is_written_at_any_log_level(serve):
    node = serve("--access-log", "scrubbed", "--log-level", "warning")
    await node.start()
    await traffic(node)
    assert await node.stop() == 0
    log = node.log()
    assert "connected sid=" not in log, "info records are not written at warning"
    assert len(access_lines_text(log)) >= 5


async def test_json_log_is_one_object_per_line_for_every_record(serve):
    """Startup, connections, warnings (a refused Engine.IO request) and
    shutdown: each a JSON object on its own line."""
    node = serve("--log-format", "json", "--log-level", "debug")
    await node.start()
    await traffic(node)
    assert await node.stop() == 0
    parsed = records(node.log())
    messages = [r["message"] for r in parsed]
    assert any(m.startswith("started node=") for m in messages)
    assert any(m.startswith("listening on http://127.0.0.1:") for m in messages)
    assert any(m.startswith("connected sid=") for m in messages)
    assert any(r["level"] == "WARNING" and r["logger"] == "collab.polling" for r in parsed)
    assert messages[-1] == "stopped"
    assert all(r["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") for r in parsed)
