"""Hostile HTTP long-polling clients (collab.polling, protocol.md §1, §8).

Every request a client can send on Engine.IO's path is answered at once: an
oversized POST gets 413 and its connection is closed, a body engine.io
cannot take gets 400, and either ends its session without waiting for a poll
that may never come. An upgrade must name its session's Engine.IO version.
Nothing a client sends logs a traceback or its content; floods are counted
(``collab_bad_requests_total``) and logged once per address, reason and
minute. Shutdown never waits for a polling request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import importlib.metadata
import inspect
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import engineio.async_drivers.aiohttp
import engineio.async_server
import engineio.async_socket
import engineio.base_server
import engineio.payload
import pytest
from aiohttp import web_protocol, web_request
from pycrdt import Map

from collab.client import CollabClient
from collab.polling import MAX_PACKETS, POLLING_GUARD, Reason, check_payload
from collab.transport import FrameLimits
from tests.boards import shapes
from tests.procs import CollabNode
from tests.scrape import scrape
from tests.waiting import until

pytestmark = pytest.mark.timeout(120)

EIO_POLLING = "/socket.io/?EIO=4&transport=polling"
#: Put into hostile requests; it must never reach a log.
SECRET = "s3cr3t-board-text"
_keys = count()


# -- clients ---------------------------------------------------------------


@dataclass
class Polling:
    """One Engine.IO session over HTTP long-polling, driven by hand."""

    http: aiohttp.ClientSession
    url: str
    sid: str
    max_payload: int

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str) -> Polling:
        async with http.get(url + EIO_POLLING) as resp:
            assert resp.status == 200, await resp.text()
            text = await resp.text()
        assert text.startswith("0{"), text
        hello = json.loads(text[1:])
        return cls(http, url, hello["sid"], hello["maxPayload"])

    @property
    def target(self) -> str:
        return f"{EIO_POLLING}&sid={self.sid}"

    async def post(self, body: str | bytes, **headers: str) -> tuple[int, str]:
        async with self.http.post(self.url + self.target, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def get(self, timeout_s: float = 30.0) -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self.http.get(self.url + self.target, timeout=timeout) as resp:
            return resp.status, await resp.text()

    async def connect(self, namespace: str) -> None:
        """Connect a Socket.IO namespace and read its CONNECT answer."""
        assert await self.post(f"40{namespace},{{}}") == (200, "OK")
        received = ""
        while f"40{namespace}," not in received:
            status, text = await self.get(timeout_s=10)
            assert status == 200, text
            received += text


@dataclass
class Answer:
    status: int
    body: bytes
    closed: bool  # the server closed the connection after answering


class RawHTTP:
    """One HTTP/1.1 request written by hand on its own connection: a body
    that is cut short, chunked or compressed, exactly as a hostile client
    sends it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def send(
        cls, url: str, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> RawHTTP:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        head = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        return cls(reader, writer)

    async def answer(self, timeout_s: float = 10.0) -> Answer:
        """The response, and whether the server then closed the connection;
        TimeoutError if either does not come within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                status = int(head.split(" ", 2)[1])
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await self.reader.readexactly(length)
                rest = await self.reader.read()  # b"" once the server closes
            return Answer(status, body, closed=rest == b"")
        finally:
            await self.close()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def oversized_post(url: str, sid: str, limit: int, how: str = "declared") -> Awaitable[RawHTTP]:
    """Send a POST whose body is over ``limit``: declared so (and cut short),
    chunked without a length, or gzip that inflates past it."""
    target = f"{EIO_POLLING}&sid={sid}"
    plain = {"Content-Type": "text/plain;charset=UTF-8"}
    if how == "declared":
        headers = {**plain, "Content-Length": str(limit + 1)}
        return RawHTTP.send(url, "POST", target, headers, b"4" + b"x" * 1023)
    if how == "chunked":
        headers = {**plain, "Transfer-Encoding": "chunked"}
        return RawHTTP.send(url, "POST", target, headers, b"400\r\n4" + b"x" * 1023 + b"\r\n")
    assert how == "inflated"
    packed = gzip.compress(b"4" + b"x" * limit)
    headers = {**plain, "Content-Encoding": "gzip", "Content-Length": str(len(packed))}
    return RawHTTP.send(url, "POST", target, headers, packed)


async def bystander(client_factory: Any, url: str) -> CollabClient:
    """A WebSocket client in another room, to show it is not affected."""
    return await client_factory(url, "bystander")


async def assert_unaffected(client_factory: Any, url: str, witness: CollabClient) -> None:
    """``witness`` is still connected and what it draws reaches a newcomer."""
    assert witness.connected
    key = f"after-{next(_keys)}"
    witness.doc.get("shapes", type=Map)[key] = {"type": "rect"}
    late = await client_factory(url, "bystander")
    await late.wait_for(lambda: key in shapes(late))


def guard_lines(caplog: pytest.LogCaptureFixture, reason: str | None = None) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "collab.polling"]
    return [m for m in lines if reason is None or f"reason={reason} " in m]


def assert_clean(caplog: pytest.LogCaptureFixture) -> None:
    """No traceback and no content in any record."""
    assert not [r for r in caplog.records if r.exc_info], "a record carries a traceback"
    assert "Traceback" not in caplog.text
    assert SECRET not in caplog.text


async def session_gone(srv: Any, p: Polling) -> None:
    """The session is over on the server, and a poll on it is refused at once."""
    await until(lambda: p.sid not in srv.app.sio.eio.sockets, timeout_s=5, what="session gone")
    assert (await p.get(timeout_s=5))[0] == 400


def fds(node: CollabNode) -> int:
    assert node.proc is not None
    return len(os.listdir(f"/proc/{node.proc.pid}/fd"))


def log_lines(node: CollabNode) -> list[str]:
    """The node's log without the access log (one line per request)."""
    return [line for line in node.log().splitlines() if " aiohttp.access " not in line]


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


@pytest.fixture
async def node(tmp_path: Path) -> Any:
    """``collab serve --dev`` as a real process (its log at warning and up is
    what an operator reads)."""
    nodes: list[CollabNode] = []

    async def make(*extra: str) -> CollabNode:
        started = CollabNode(
            tmp_path, "--dev", "--store", "memory", *extra, node_id=f"n{len(nodes)}"
        )
        nodes.append(started)
        await started.start()
        return started

    yield make
    for each in nodes:
        await each.kill()


# -- oversized POSTs -------------------------------------------------------


@pytest.mark.parametrize("how", ["declared", "chunked", "inflated"])
async def test_an_oversized_post_gets_413_its_connection_closed_and_its_session_ended(
    server, client_factory, http, caplog, how
):
    witness = await bystander(client_factory, server.url)
    p = await Polling.open(http, server.url)
    await p.connect("/yjs|big")
    await until(lambda: len(server.app.sync.connections) == 2)

    answer = await (await oversized_post(server.url, p.sid, p.max_payload, how)).answer()

    assert answer.status == 413
    assert answer.closed  # at once: no waiting for a poll, no lingering read
    await session_gone(server, p)
    await until(lambda: len(server.app.sync.connections) == 1)  # only the witness
    await assert_unaffected(client_factory, server.url, witness)
    [line] = guard_lines(caplog, "too_large")
    assert f"sid={p.sid}" in line and "limit=" in line
    assert_clean(caplog)


async def test_an_oversized_post_also_answers_the_pending_poll(server, client_factory, http):
    witness = await bystander(client_factory, server.url)
    guard = server.app.web_app[POLLING_GUARD]
    p = await Polling.open(http, server.url)
    poll = asyncio.create_task(p.get())
    await until(lambda: p.sid in guard.polls, what="the poll is pending")

    answer = await (await oversized_post(server.url, p.sid, p.max_payload)).answer()

    assert (answer.status, answer.closed) == (413, True)
    assert await asyncio.wait_for(poll, 5) == (200, "1")  # CLOSE, not a 45 s wait
    await session_gone(server, p)
    await assert_unaffected(client_factory, server.url, witness)


async def test_a_post_at_the_limit_is_read_and_one_byte_more_is_refused(server, http):
    p = await Polling.open(http, server.url)
    # The limit holds an attachment as large as a document, in base64 (protocol.md
    # §1): one and a PONG beside it fill it exactly. engine.io ignores a PONG's
    # data; an attachment no packet announced is refused (invalid_packet), and
    # the session goes on.
    attachment = "b" + "A" * (4 * ((p.max_payload - 100) // 4))
    body = attachment + "\x1e3" + "x" * (p.max_payload - len(attachment) - 2)
    assert len(body) == p.max_payload
    assert await p.post(body) == (200, "OK")
    assert not server.app.sio.eio.sockets[p.sid].closed
    answer = await (await oversized_post(server.url, p.sid, p.max_payload)).answer()
    assert (answer.status, answer.closed) == (413, True)
    await session_gone(server, p)


async def test_a_stalled_body_gets_408_within_the_ping_timeout(server_factory, http, caplog):
    srv = await server_factory(ping_interval_s=30, ping_timeout_s=1)
    p = await Polling.open(http, srv.url)
    headers = {"Content-Type": "text/plain;charset=UTF-8", "Content-Length": "1000"}
    started = time.monotonic()
    answer = await (await RawHTTP.send(srv.url, "POST", p.target, headers, b"4abc")).answer()
    assert (answer.status, answer.closed) == (408, True)
    assert time.monotonic() - started < 5
    await session_gone(srv, p)
    assert len(guard_lines(caplog, "body_timeout")) == 1


# -- bodies engine.io cannot take ------------------------------------------


async def test_sixteen_packets_pass_and_seventeen_end_the_session(
    server, client_factory, http, caplog
):
    witness = await bystander(client_factory, server.url)
    p = await Polling.open(http, server.url)
    assert await p.post("\x1e".join(["3"] * MAX_PACKETS)) == (200, "OK")
    assert not server.app.sio.eio.sockets[p.sid].closed

    status, text = await p.post("\x1e".join(["3"] * (MAX_PACKETS + 1)))

    assert (status, text) == (400, '"Too many packets"')  # not 200 "OK" and dropped
    await session_gone(server, p)
    await assert_unaffected(client_factory, server.url, witness)
    [line] = guard_lines(caplog, "too_many_packets")
    assert f"packets={MAX_PACKETS + 1} limit={MAX_PACKETS}" in line
    assert_clean(caplog)


INVALID_BODIES = {
    "not-utf-8": (b"4\xff\xfe" + SECRET.encode(), "bad_payload"),
    "binary-garbage": (bytes(range(256)) * 4 + SECRET.encode(), "bad_payload"),
    "not-a-packet": ("x" + SECRET, "bad_payload"),
    "empty-packet": ("3\x1e\x1e3", "bad_payload"),
    "bad-base64": ("bA", "bad_payload"),
    "deep-json": ("4" + "[" * 100_000, "bad_payload"),
    "empty-jsonp-form": ("d=", "bad_payload"),
    "unknown-type": ("9" + SECRET, "bad_packet_type"),
    "type-past-noop": ("7" + SECRET, "bad_packet_type"),
    "client-open": ("0{}", "bad_packet_type"),
    "client-ping": ("2", "bad_packet_type"),
    "client-noop": ("6", "bad_packet_type"),
}


@pytest.mark.parametrize("case", sorted(INVALID_BODIES))
async def test_an_invalid_body_gets_400_and_ends_its_session(
    server, client_factory, http, caplog, case
):
    body, reason = INVALID_BODIES[case]
    witness = await bystander(client_factory, server.url)
    p = await Polling.open(http, server.url)
    await p.connect("/yjs|bodies")
    await until(lambda: len(server.app.sync.connections) == 2)

    status, _ = await p.post(body, **{"Content-Type": "application/octet-stream"})

    assert status == 400
    await session_gone(server, p)
    await until(lambda: len(server.app.sync.connections) == 1)
    await assert_unaffected(client_factory, server.url, witness)
    # One line, for this refusal (the poll of session_gone is the other).
    assert len(guard_lines(caplog, reason)) == 1
    assert len(guard_lines(caplog)) == 1 + len(guard_lines(caplog, "unknown_session"))
    assert_clean(caplog)


async def test_bad_socketio_messages_over_polling_end_nothing_and_log_no_content(
    server, client_factory, http, caplog
):
    witness = await bystander(client_factory, server.url)
    p = await Polling.open(http, server.url)
    await p.connect("/yjs|messages")
    bad = [
        "49" + SECRET,  # no such Socket.IO packet type
        f'44/yjs|messages,{{"message":"{SECRET}"}}',  # CONNECT_ERROR from a client
        "42" + "[" * 100_000,  # JSON too deep to decode
    ]

    assert await p.post("\x1e".join(bad)) == (200, "OK")  # as over a WebSocket: it goes on

    assert not server.app.sio.eio.sockets[p.sid].closed
    assert await p.post("3") == (200, "OK")
    assert_clean(caplog)
    await assert_unaffected(client_factory, server.url, witness)


async def test_a_handler_failing_during_a_post_is_one_line_without_content(
    server, client_factory, http, caplog
):
    """Whatever raises below engine.io while it serves a polling request
    (here a handler registered to fail, standing for any bug a message can
    reach): engine.io would log its traceback, message and all; it is one
    counted line of the request's instead, and the session goes on."""
    witness = await bystander(client_factory, server.url)
    namespace = "/yjs|faults"

    async def failing(_sid: str, *_args: Any) -> None:
        raise RuntimeError(SECRET)

    server.app.sio.on("fail", failing, namespace=namespace)
    p = await Polling.open(http, server.url)
    await p.connect(namespace)

    event = f'42{namespace},["fail","{SECRET}"]'
    assert await p.post("\x1e".join([event, event])) == (200, "OK")

    assert not server.app.sio.eio.sockets[p.sid].closed
    assert await p.post("3") == (200, "OK")
    [line] = guard_lines(caplog, "bad_message")
    assert f"sid={p.sid}" in line and "faults=2 error=RuntimeError" in line
    assert_clean(caplog)
    metrics = await scrape(server.url)
    assert metrics['collab_bad_requests_total{reason="bad_message"}'] == 1
    await assert_unaffected(client_factory, server.url, witness)


async def test_engineio_errors_outside_a_polling_request_lose_their_traceback(server, caplog):
    """engine.io's other records with a traceback (a handler error on a
    handshake, its service task) stay, as one line with the error's class."""
    assert server.app.sio.eio.logger is logging.getLogger("engineio.server")
    try:
        raise RuntimeError(SECRET)
    except RuntimeError:
        logging.getLogger("engineio.server").exception("connect async handler error")
    [record] = [r for r in caplog.records if r.name == "engineio.server"]
    assert record.getMessage() == "connect async handler error error=RuntimeError"
    assert_clean(caplog)


# -- polls, upgrades, transports -------------------------------------------


async def test_a_second_poll_while_one_is_pending_ends_the_session(server, client_factory, http):
    witness = await bystander(client_factory, server.url)
    guard = server.app.web_app[POLLING_GUARD]
    p = await Polling.open(http, server.url)
    first = asyncio.create_task(p.get())
    await until(lambda: p.sid in guard.polls, what="the first poll is pending")

    assert await p.get(timeout_s=5) == (400, '"Overlapping poll"')

    assert await asyncio.wait_for(first, 5) == (200, "1")
    await session_gone(server, p)
    assert guard.polls == frozenset()
    await assert_unaffected(client_factory, server.url, witness)


async def test_a_client_close_answers_its_pending_poll_at_once(server, http):
    guard = server.app.web_app[POLLING_GUARD]
    p = await Polling.open(http, server.url)
    poll = asyncio.create_task(p.get())
    await until(lambda: p.sid in guard.polls, what="the poll is pending")

    assert await p.post("1") == (200, "OK")  # CLOSE

    assert (await asyncio.wait_for(poll, 5))[0] == 200  # not after ping interval + timeout
    await session_gone(server, p)


@pytest.mark.parametrize("version", ["", "EIO=3&"])
async def test_an_upgrade_must_name_the_sessions_engineio_version(
    server, client_factory, http, caplog, version
):
    witness = await bystander(client_factory, server.url)
    p = await Polling.open(http, server.url)
    ws_url = server.url.replace("http", "ws", 1) + "/socket.io/?"

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(f"{ws_url}{version}transport=websocket&sid={p.sid}")

    assert refused.value.status == 400
    [line] = guard_lines(caplog, "bad_version")
    assert "upgrade=yes" in line
    # The polling session goes on, and upgrades when it asks properly.
    socket = server.app.sio.eio.sockets[p.sid]
    assert await p.post("3") == (200, "OK")
    async with http.ws_connect(f"{ws_url}EIO=4&transport=websocket&sid={p.sid}") as ws:
        await ws.send_str("2probe")
        assert await asyncio.wait_for(ws.receive_str(), 5) == "3probe"
        await ws.send_str("5")
        await until(lambda: socket.upgraded, what="upgraded")
        # engine.io's own refusal (HTTP on an upgraded session) is counted too.
        assert (await p.post("3"))[0] == 400
        metrics = await scrape(server.url)
        assert metrics['collab_bad_requests_total{reason="refused"}'] == 1
        assert metrics['collab_bad_requests_total{reason="bad_version"}'] == 1
    await assert_unaffected(client_factory, server.url, witness)


async def test_with_polling_off_a_polling_handshake_is_refused_and_websockets_sync(
    server_factory, client_factory, http, caplog
):
    srv = await server_factory(transports=("websocket",))
    async with http.get(srv.url + EIO_POLLING) as resp:
        assert resp.status == 400
    assert srv.app.sio.eio.sockets == {}
    a = await client_factory(srv.url, "ws-only")
    b = await client_factory(srv.url, "ws-only")
    a.doc.get("shapes", type=Map)["square"] = {"type": "rect"}
    await b.wait_for(lambda: "square" in shapes(b))
    metrics = await scrape(srv.url)
    assert metrics['collab_bad_requests_total{reason="bad_transport"}'] == 1
    assert len(guard_lines(caplog, "bad_transport")) == 1


# -- floods and logs -------------------------------------------------------


async def bad_requests(url: str, http: aiohttp.ClientSession, limit: int, n: int) -> None:
    """``n`` each of four kinds of bad request, none needing a session."""

    async def unknown_session(i: int) -> None:
        target = f"{EIO_POLLING}&sid={SECRET}{i}"
        async with http.post(url + target, data="4" + SECRET) as resp:
            assert resp.status == 400

    async def old_version(_i: int) -> None:
        async with http.get(url + f"/socket.io/?EIO=3&transport=polling&t={SECRET}") as resp:
            assert resp.status == 400

    async def bad_transport(_i: int) -> None:
        async with http.get(url + f"/socket.io/?EIO=4&transport={SECRET}") as resp:
            assert resp.status == 400

    async def too_large(i: int) -> None:
        answer = await (await oversized_post(url, f"{SECRET}{i}", limit)).answer()
        assert (answer.status, answer.closed) == (413, True)

    for kind in (unknown_session, old_version, bad_transport, too_large):
        for start in range(0, n, 50):
            await asyncio.gather(*(kind(i) for i in range(start, min(n, start + 50))))


async def test_a_thousand_bad_requests_are_counted_and_logged_in_a_few_lines(
    server, client_factory, http, caplog
):
    witness = await bystander(client_factory, server.url)
    guard = server.app.web_app[POLLING_GUARD]
    before = await scrape(server.url)
    assert {before[f'collab_bad_requests_total{{reason="{r.value}"}}'] for r in Reason} == {0}

    await bad_requests(server.url, http, guard.max_body_bytes, 250)

    after = await scrape(server.url)
    for reason in ("unknown_session", "bad_version", "bad_transport", "too_large"):
        assert after[f'collab_bad_requests_total{{reason="{reason}"}}'] == 250
        assert len(guard_lines(caplog, reason)) == 1  # the first of this minute
    assert len(caplog.records) <= 10
    assert_clean(caplog)
    # When the minute is over, one line per (address, reason) sums up the rest.
    guard.flush(time.monotonic() + guard.incidents.window_s)
    summaries = [m for m in guard_lines(caplog) if "repeated" in m]
    assert len(summaries) == 4
    assert all("remote=127.0.0.1 count=249 " in m for m in summaries)
    await assert_unaffected(client_factory, server.url, witness)


@pytest.mark.slow
async def test_a_real_process_logs_a_flood_in_a_few_clean_lines(node, client_factory, http):
    srv = await node()
    witness = await bystander(client_factory, srv.url)
    limit = (await Polling.open(http, srv.url)).max_payload
    baseline = fds(srv)

    await bad_requests(srv.url, http, limit, 200)
    for _batch in range(4):  # and bad bodies on 200 live sessions
        sessions = await asyncio.gather(*(Polling.open(http, srv.url) for _ in range(50)))
        bodies = [b"4\xff" + SECRET.encode(), "9" + SECRET] * 25
        for p, body in zip(sessions, bodies, strict=True):
            assert (await p.post(body))[0] == 400

    metrics = await scrape(srv.url)
    assert metrics['collab_bad_requests_total{reason="bad_payload"}'] == 100
    assert metrics['collab_bad_requests_total{reason="bad_packet_type"}'] == 100
    await http.close()
    await until(lambda: fds(srv) <= baseline, what="descriptors back to their baseline")
    await assert_unaffected(client_factory, srv.url, witness)
    assert await srv.stop() == 0
    assert "Traceback" not in srv.log()
    lines = log_lines(srv)  # the access log names each request; nothing else may
    assert SECRET not in "\n".join(lines)
    firsts = [line for line in lines if "bad engine.io request reason=" in line]
    assert len(firsts) == 6  # the first per reason (one address) ...
    summaries = [line for line in lines if "bad engine.io requests repeated" in line]
    assert len(summaries) == 6  # ... and the rest summed up when the server stops
    assert len(lines) <= 40  # 1,200 bad requests; before collab.polling, ~18 lines each


@pytest.mark.slow
async def test_fifty_oversized_posts_leave_no_descriptor_open(node, client_factory, http):
    srv = await node()
    witness = await bystander(client_factory, srv.url)
    baseline = fds(srv)
    sessions = [await Polling.open(http, srv.url) for _ in range(50)]
    await http.close()  # its pooled connections are not part of the flood
    await until(lambda: fds(srv) <= baseline, what="the pool closed")

    sent = await asyncio.gather(*(oversized_post(srv.url, p.sid, p.max_payload) for p in sessions))
    answers = await asyncio.gather(*(each.answer() for each in sent))

    assert {(a.status, a.closed) for a in answers} == {(413, True)}
    await until(lambda: fds(srv) <= baseline, what="descriptors back to their baseline")
    async with aiohttp.ClientSession() as again:
        for p in sessions:
            gone = dataclasses.replace(p, http=again)
            assert (await gone.get(timeout_s=5))[0] == 400  # every session is gone
    await assert_unaffected(client_factory, srv.url, witness)
    assert "Traceback" not in srv.log()


@pytest.mark.slow
async def test_sigterm_stops_a_node_with_polling_requests_outstanding(node, http):
    srv = await node()
    baseline = fds(srv)
    pollers = [await Polling.open(http, srv.url) for _ in range(50)]
    polls = [asyncio.create_task(p.get(timeout_s=60)) for p in pollers]
    oversized = [await Polling.open(http, srv.url) for _ in range(50)]
    posts = await asyncio.gather(
        *(oversized_post(srv.url, p.sid, p.max_payload) for p in oversized)
    )
    stalled_sessions = [await Polling.open(http, srv.url) for _ in range(10)]
    stalled = [
        await RawHTTP.send(
            srv.url,
            "POST",
            p.target,
            {"Content-Type": "text/plain;charset=UTF-8", "Content-Length": "1000"},
            b"4abc",
        )
        for p in stalled_sessions
    ]
    # Every poll and stalled body has reached the server and waits there.
    await until(lambda: fds(srv) >= baseline + 60, what="requests outstanding")

    started = time.monotonic()
    code = await srv.stop(signal.SIGTERM)
    elapsed = time.monotonic() - started

    assert code == 0
    assert elapsed < 5, f"SIGTERM took {elapsed:.1f} s"
    assert {(a.status, a.closed) for a in await asyncio.gather(*(p.answer() for p in posts))} == {
        (413, True)
    }
    assert {a.status for a in await asyncio.gather(*(s.answer() for s in stalled))} == {503}
    # A NOOP (the client polls again, fails and reconnects), or 503 for a
    # poll that reached the server once it was stopping.
    results = await asyncio.gather(*polls, return_exceptions=True)
    assert all(r in ((200, "6"), (503, '"Server shutting down"')) for r in results), results
    assert "Traceback" not in srv.log()


@pytest.mark.slow
async def test_overlong_request_lines_and_headers_log_one_line_each_kind(node):
    srv = await node()
    huge = "a" * 10_000 + SECRET

    async def send(request: bytes) -> int:
        host, port = srv.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)
            return int(head.split(b" ")[1])
        finally:
            writer.close()

    for _ in range(100):
        assert await send(f"GET /socket.io/?{huge} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) == 400
        assert await send(f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n".encode()) == 400
        many = "".join(f"X-{i}: 1\r\n" for i in range(200))
        assert await send(f"GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode()) == 400

    assert await srv.stop() == 0
    log = srv.log()
    assert "Traceback" not in log
    assert SECRET not in log and "aaaaaaaaaa" not in log
    parse_errors = [line for line in log_lines(srv) if "bad HTTP request remote=" in line]
    assert len(parse_errors) == 2, parse_errors  # LineTooLong, BadHttpMessage: the first each
    summaries = [line for line in log_lines(srv) if "bad HTTP requests repeated" in line]
    assert sorted(s.split("count=")[1].split()[0] for s in summaries) == ["199", "99"]


# -- the decoder, without a network ----------------------------------------


def test_check_payload_holds_text_packets_to_a_text_frame():
    frames = FrameLimits.of(max_message_bytes=4096, max_document_bytes=1 << 20)
    text = "3" + "x" * (frames.text_bytes - 1)
    assert check_payload(text.encode(), frames) is None
    problem = check_payload((text + "x").encode(), frames)
    assert problem is not None and problem.reason is Reason.TOO_LARGE
    wide = "3" + "é" * (frames.text_bytes // 2)  # two bytes a character
    problem = check_payload(wide.encode(), frames)
    assert problem is not None and problem.reason is Reason.TOO_LARGE
    # An attachment (base64) is held to the body's limit only.
    assert check_payload(("b" + "A" * (2 * frames.text_bytes)).encode(), frames) is None


def test_check_payload_at_the_packet_limit_and_one_past_it():
    assert check_payload(b"") is None
    assert check_payload("\x1e".join(["3"] * MAX_PACKETS).encode()) is None
    problem = check_payload("\x1e".join(["3"] * (MAX_PACKETS + 1)).encode())
    assert problem is not None and problem.reason is Reason.TOO_MANY_PACKETS
    assert check_payload(b"d=3%1E40%2Fyjs%7Croom%2C%7B%7D") is None  # a JSONP form post
    assert check_payload(b"40/yjs|room,{}\x1ebAAEC\x1e1") is None  # message, binary, close
    for body, _reason in INVALID_BODIES.values():
        raw = body if isinstance(body, bytes) else body.encode()
        problem = check_payload(raw)
        assert problem is not None and problem.reason.value == _reason
        assert SECRET not in problem.detail


def test_the_borrowed_internals_are_still_there():
    """collab.polling leans on these; an upgrade that moves one fails here."""
    assert importlib.metadata.version("python-engineio").startswith("4.")
    driver = engineio.async_drivers.aiohttp._async
    assert {"create_route", "translate_request", "websocket"} <= driver.keys()
    params = inspect.signature(driver["translate_request"]).parameters
    assert list(params) == ["request"]
    handle = inspect.signature(engineio.async_server.AsyncServer.handle_request)
    assert [p.kind for p in handle.parameters.values()][1:] == [
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    ]
    assert "translate_request(*args, **kwargs)" in inspect.getsource(
        engineio.async_server.AsyncServer.handle_request
    )
    assert callable(engineio.base_server.BaseServer._cors_headers)
    assert engineio.payload.Payload.max_decode_packets == MAX_PACKETS == 16
    close = inspect.signature(engineio.async_socket.AsyncSocket.close).parameters
    assert {"wait", "abort", "reason"} <= close.keys()
    # receive() takes CLOSE, PONG, MESSAGE, UPGRADE and raises on the rest.
    receive = inspect.getsource(engineio.async_socket.AsyncSocket.receive)
    assert "UnknownPacketError" in receive and "packet.PING" not in receive
    assert "handler error" in inspect.getsource(engineio.async_server.AsyncServer._trigger_event)
    assert hasattr(engineio.base_server.BaseServer.reason, "TRANSPORT_ERROR")
    # aiohttp: the request's protocol closes at once; handle_error's record.
    assert callable(web_protocol.RequestHandler.force_close)
    assert isinstance(web_request.BaseRequest.protocol, property)
    assert "Error handling request from %s" in inspect.getsource(
        web_protocol.RequestHandler.handle_error
    )
