"""collab.front: Engine.IO opens on a WebSocket are served by collab's own
WebSocket server, every other connection by aiohttp, and what a WebSocket
client may send is held to RFC 6455 and collab's frame limits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import struct
from collections.abc import AsyncIterator

import aiohttp
import engineio
import pytest
import socketio

import collab.ws_connection
from collab.packet_queue import Outbox
from collab.upstream import emit_to, send_ack
from collab.ws_frames import FrameReader
from tests.boards import DrawingDoc, shapes
from tests.rawsio import RawSocket
from tests.waiting import until
from tests.wsframes import client_frame

_OPEN = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"


def _head(extra: str = "", key: str | None = None) -> bytes:
    key = key or base64.b64encode(os.urandom(16)).decode()
    return (
        _OPEN + "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


class _Raw:
    """A WebSocket client on a bare TCP stream, for frames aiohttp's client will not send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str, head: bytes | None = None) -> tuple[_Raw, bytes]:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head or _head())
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return cls(reader, writer), answer

    async def frame(self) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
        n = second & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first & 0x0F, await self.reader.readexactly(n)

    async def text(self) -> str:
        while True:
            opcode, payload = await self.frame()
            if opcode == 1:
                return payload.decode()

    async def close_code(self) -> int:
        """The code of the server's close frame (skipping what comes before it)."""
        while True:
            opcode, payload = await self.frame()
            if opcode == 8:
                return int(struct.unpack("!H", payload[:2])[0])

    @classmethod
    @contextlib.asynccontextmanager
    async def session(cls, url: str) -> AsyncIterator[_Raw]:
        """A WebSocket whose Engine.IO open has been read; closed after."""
        raw, answer = await cls.open(url)
        try:
            assert answer.startswith(b"HTTP/1.1 101 "), answer
            await raw.text()  # the OPEN
            yield raw
        finally:
            raw.close()

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def close(self) -> None:
        self.writer.close()


async def test_a_websocket_open_is_served_by_collab_and_other_requests_by_aiohttp(server):
    door = server.app.front
    raw = await RawSocket.open(server.url)
    try:
        assert (await raw.connect("/yjs|front"))["connected"]
        assert door.opened == 1
        # One connection a request (no keep-alive): each is handed over.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            async with http.get(server.url + "/healthz") as answer:
                assert answer.status == 200
            # Long-polling (what browsers start with) is aiohttp's, as before.
            async with http.get(server.url + "/socket.io/?EIO=4&transport=polling") as answer:
                assert answer.status == 200
                assert (await answer.text()).startswith("0{")
        assert door.handed_over == 2
        assert door.opened == 1
    finally:
        await raw.session.close()


async def test_the_open_answers_as_engine_io_does(server):
    raw, answer = await _Raw.open(server.url, _head(key="dGhlIHNhbXBsZSBub25jZQ=="))
    try:
        assert answer.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer  # RFC 6455 §1.3
        opening = await raw.text()
        assert opening[0] == "0"
        fields = json.loads(opening[1:])
        assert fields["upgrades"] == []
        assert fields["maxPayload"] == server.app.sio.eio.max_http_buffer_size
        assert fields["sid"] in server.app.sio.eio.sockets
    finally:
        raw.close()


async def test_a_client_ping_gets_its_pong_and_a_fragmented_message_is_one_message(server):
    async with _Raw.session(server.url) as raw:
        raw.send(client_frame(0x9, b"hello"))
        assert await raw.frame() == (0xA, b"hello")
        # A Socket.IO CONNECT in three fragments, a ping between two of them.
        connect = b'40/yjs|frag,{"name":"f"}'
        raw.send(client_frame(0x1, connect[:5], fin=False))
        raw.send(client_frame(0x9, b"", fin=True))
        raw.send(client_frame(0x0, connect[5:12], fin=False))
        raw.send(client_frame(0x0, connect[12:], fin=True))
        assert await raw.frame() == (0xA, b"")
        answer = await raw.text()
        assert answer.startswith("40/yjs|frag,"), answer


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (client_frame(0x1, b"2probe", masked=False), 1002),  # unmasked
        (bytes([0xC1]) + client_frame(0x1, b"2")[1:], 1002),  # a reserved bit
        (client_frame(0x3, b"x"), 1002),  # a reserved opcode
        (client_frame(0x0, b"x"), 1002),  # a continuation of nothing
        (client_frame(0x9, b"x" * 126), 1002),  # a long control frame
        (client_frame(0x1, b"4\xff\xfe"), 1007),  # text that is not UTF-8
    ],
    ids=["unmasked", "rsv", "opcode", "continuation", "long-ping", "utf8"],
)
async def test_a_malformed_frame_ends_only_its_connection(server, client_factory, frame, code):
    other = await client_factory(server.url, "malformed")
    async with _Raw.session(server.url) as raw:
        raw.send(frame)
        assert await raw.close_code() == code
        assert await raw.reader.read() == b""  # and the connection is closed
        await until(lambda: len(server.app.sio.eio.sockets) == 1)
        assert other.connected


async def test_a_frame_past_its_limit_is_refused_from_its_header(server_factory):
    srv = await server_factory(max_message_bytes=4096)
    async with _Raw.session(srv.url) as raw:
        # Only the header of a 1 GiB binary frame: refused before any of it comes.
        raw.send(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 30) + os.urandom(4))
        assert await raw.close_code() == 1009


async def test_a_client_close_is_answered_and_ends_the_session(server):
    async with _Raw.session(server.url) as raw:
        assert len(server.app.sio.eio.sockets) == 1
        raw.send(client_frame(0x8, struct.pack("!H", 1000)))
        assert await raw.close_code() == 1000
        await until(lambda: not server.app.sio.eio.sockets)
        await until(lambda: not server.app.websockets.open)


async def test_a_refused_open_gets_engine_io_s_401(server_factory):
    srv = await server_factory(max_sessions_per_address=1)
    first, answer = await _Raw.open(srv.url)
    try:
        assert answer.startswith(b"HTTP/1.1 101 ")
        second, refused = await _Raw.open(srv.url)
        assert refused.startswith(b"HTTP/1.1 401 ")
        body = await second.reader.read()
        assert json.loads(body)["code"] == "too_many_connections"
        assert len(srv.app.sio.eio.sockets) == 1
    finally:
        first.close()


async def test_an_origin_it_cannot_vouch_for_goes_to_engine_io(server_factory):
    srv = await server_factory(cors_origins=("https://clinic.example",))
    door = srv.app.front
    _, refused = await _Raw.open(srv.url, _head("Origin: https://elsewhere.example\r\n"))
    assert refused.startswith(b"HTTP/1.1 400 ")  # engine.io's refusal, as before
    assert door.handed_over == 1 and door.opened == 0
    _, served = await _Raw.open(srv.url, _head("Origin: https://clinic.example\r\n"))
    assert served.startswith(b"HTTP/1.1 101 ")
    assert door.opened == 1


async def test_a_slow_request_head_goes_to_aiohttp(server, monkeypatch):
    monkeypatch.setattr(collab.ws_connection, "HEAD_TIMEOUT_S", 0.2)
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # not done yet
        await until(lambda: server.app.front.handed_over == 1)
        writer.write(b"\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert answer.startswith(b"HTTP/1.1 200 ")
    finally:
        writer.close()


async def test_a_session_whose_peer_does_not_read_holds_packets_in_its_outbox(server):
    async with _Raw.session(server.url) as raw:
        (socket,) = server.app.sio.eio.sockets.values()
        (connection,) = server.app.websockets.open
        connection.pause_writing()  # as the transport does past its high-water mark
        await socket.send(engineio.packet.Packet(engineio.packet.MESSAGE, data="held"))
        assert socket.queue.qsize() == 1
        connection.resume_writing()
        assert socket.queue.qsize() == 0
        assert await raw.text() == "4held"


async def test_the_server_s_sends_go_to_the_outbox_in_order_held_or_not(server, monkeypatch):
    """python-socketio's sends (install_direct_sends) and a sync step's ack
    (send_ack) are put in the session's Outbox: written at once, or held
    in order while the peer does not read; engine.io's send is not used."""
    ns = "/yjs|direct"
    async with _Raw.session(server.url) as raw:
        raw.send(client_frame(1, f"40{ns},{{}}".encode()))
        connected = await raw.text()
        while not connected.startswith(f"40{ns},"):
            connected = await raw.text()
        sid = json.loads(connected[len(f"40{ns},") :])["sid"]
        (socket,) = server.app.sio.eio.sockets.values()
        (connection,) = server.app.websockets.open
        sio = server.app.sio

        async def not_this_way(*args: object) -> None:
            raise AssertionError("sent through engine.io's send")

        monkeypatch.setattr(sio.eio, "send", not_this_way)
        await sio._send_packet(
            socket.sid, sio.packet_class(socketio.packet.EVENT, namespace=ns, data=["probe", 0])
        )
        connection.pause_writing()
        await emit_to(sio, "probe", {"n": 1}, to=sid, namespace=ns)
        await send_ack(sio, socket.sid, ns, 7, b"\x00\x00")
        assert socket.queue.qsize() == 3  # the event, the ack's header and its attachment
        connection.resume_writing()
        await emit_to(sio, "probe", {"n": 2}, to=sid, namespace=ns)
        assert socket.queue.qsize() == 0
        texts: list[str] = []
        attachments: list[bytes] = []
        last_was_ack = False
        while len(texts) < 4:
            opcode, payload = await raw.frame()
            # (The server's own sync step and room state may come between.)
            if opcode == 1 and payload.startswith((f'42{ns},["probe"'.encode(), b"461-")):
                texts.append(payload.decode())
                last_was_ack = payload.startswith(b"461-")
            elif opcode == 2 and last_was_ack:
                attachments.append(payload)
                last_was_ack = False
            else:
                last_was_ack = False
        assert attachments == [b"\x00\x00"]
        assert texts == [
            f'42{ns},["probe",0]',
            f'42{ns},["probe",{{"n":1}}]',
            f'461-{ns},7[{{"_placeholder":true,"num":0}}]',
            f'42{ns},["probe",{{"n":2}}]',
        ]


async def test_a_client_that_does_not_read_gets_no_pongs_to_pile_up(server):
    async with _Raw.session(server.url) as raw:
        (connection,) = server.app.websockets.open
        connection.pause_writing()  # as the transport does past its high-water mark
        # A flood of PINGs, as the transport would hand it over.
        connection.data_received(b"".join(client_frame(0x9, b"flood") for _ in range(100)))
        connection.resume_writing()
        raw.send(client_frame(0x9, b"later"))
        assert await raw.frame() == (0xA, b"later")  # the first thing it gets


async def test_an_open_that_fails_ends_its_connection_and_leaves_no_session(server, monkeypatch):
    door = server.app.front
    good = door.opening

    def broken(sid: str) -> bytes:
        raise RuntimeError("broken")

    monkeypatch.setattr(door, "opening", broken)
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(_head())
    assert await asyncio.wait_for(reader.read(), 10) == b""  # cut, no 101
    writer.close()
    await until(lambda: not server.app.sio.eio.sockets and not server.app.sessions.sessions)
    monkeypatch.setattr(door, "opening", good)
    raw = await RawSocket.open(server.url)  # and the next one opens
    try:
        assert (await raw.connect("/yjs|after"))["connected"]
    finally:
        await raw.close()


async def test_an_ended_connection_is_freed_without_the_cyclic_collector(server):
    """A connection, its frame reader, Outbox and engine.io socket are freed
    by reference counting once it ends, not left in reference cycles for the
    cyclic collector (whose collections walk every live object: thousands of
    connections' worth)."""
    kinds = (
        collab.ws_connection.Connection,
        Outbox,
        engineio.async_socket.AsyncSocket,
        FrameReader,
    )

    def live() -> list[object]:
        return [o for o in gc.get_objects() if isinstance(o, kinds)]

    gc.collect()
    earlier = live()  # other servers' (of this process), held: their ids stay theirs
    known = {id(o) for o in earlier}

    def left() -> list[str]:
        return [type(o).__name__ for o in live() if id(o) not in known]

    gc.disable()
    try:
        for k in range(5):
            raw = await RawSocket.open(server.url)
            assert (await raw.connect(f"/yjs|cycles-{k}"))["connected"]
            assert left()
            await raw.close()
        await until(lambda: not left(), timeout_s=5, what="the ended connections freed")
    finally:
        gc.enable()


async def test_an_open_is_answered_in_its_read_and_one_that_waits_goes_on_in_a_task(
    server, monkeypatch
):
    """Engine.IO's open runs in the read that brings the request head (its
    connect handler does not wait); a connect handler that waits goes on in
    a task, and the 101 follows when it is done."""
    eio = server.app.sio.eio
    handler = eio.handlers["connect"]
    gate = asyncio.get_running_loop().create_future()
    waited: list[str] = []

    async def waits(sid: str, environ: dict) -> object:
        waited.append(sid)
        await gate
        return await handler(sid, environ)

    door = server.app.front
    in_task = door.opens_in_task
    raw = await RawSocket.open(server.url)  # no wait: within the read
    try:
        assert (await raw.connect("/yjs|before"))["connected"]
        assert door.opens_in_task == in_task
    finally:
        await raw.close()
    monkeypatch.setitem(eio.handlers, "connect", waits)
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(_head())
        await until(lambda: len(waited) == 1)
        assert door.opens_in_task == in_task + 1
        head = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
        done, _ = await asyncio.wait({head}, timeout=0.2)
        assert not done, "the 101 before the connect handler was done"
        gate.set_result(None)
        assert (await asyncio.wait_for(head, 10)).startswith(b"HTTP/1.1 101")
    finally:
        writer.close()
    monkeypatch.setitem(eio.handlers, "connect", handler)
    raw = await RawSocket.open(server.url)  # and again within the read
    try:
        assert (await raw.connect("/yjs|after"))["connected"]
        assert door.opens_in_task == in_task + 1
    finally:
        await raw.close()


async def test_updates_are_handled_in_the_read_and_one_that_waits_goes_on_in_a_task(
    server_factory, client_factory
):
    """An update's header and attachment are handled within the read that
    brings them (no task, no loop turn); one whose check waits for a worker
    thread goes on in a task, and what came behind it waits its turn."""
    srv = await server_factory()
    door = srv.app.front
    reader = await client_factory(srv.url, "front")
    ns = "/yjs|front"
    header = client_frame(1, f'451-{ns},["sync-update",{{"_placeholder":true,"num":0}}]'.encode())
    async with _Raw.session(srv.url) as raw:
        raw.send(client_frame(1, f"40{ns},{{}}".encode()))
        while not (await raw.text()).startswith(f"40{ns},"):
            pass
        drawing = DrawingDoc()
        # Past IN_THREAD_BYTES: its structural check runs in a worker thread.
        big = drawing.put("big", {"type": "path", "points": "x" * (20 << 10)})
        small = drawing.put("small", {"type": "rect"})  # after "big", in the same write
        in_read, in_task = door.handled_in_read, door.resumed_in_task
        raw.send(header + client_frame(2, big) + header + client_frame(2, small))
        await reader.wait_for(lambda: {"big", "small"} <= set(shapes(reader)))
        assert door.resumed_in_task == in_task + 1
        assert door.handled_in_read == in_read + 2  # "small" waited in the inbox
        raw.send(header + client_frame(2, drawing.put("alone", {"type": "rect"})))
        await reader.wait_for(lambda: "alone" in shapes(reader))
        assert door.handled_in_read == in_read + 4
        assert door.resumed_in_task == in_task + 1
        assert set(shapes(reader)) >= {"big", "small", "alone"}


class _Panic(BaseException):
    """As pycrdt's PanicException: a BaseException, not an Exception."""


async def test_what_a_handling_in_the_read_raises_is_contained(
    server_factory, client_factory, monkeypatch, caplog
):
    """An update's handling that raises (a BaseException, as pycrdt's panic
    is), in the read or after it went on in a task, ends nothing: the
    connection reads on, the next update is handled, the log names the
    error's class and never the update."""
    srv = await server_factory()
    sessions = srv.app.sessions
    reader = await client_factory(srv.url, "contained")
    ns = "/yjs|contained"
    header = client_frame(1, f'451-{ns},["sync-update",{{"_placeholder":true,"num":0}}]'.encode())
    handle = sessions._fast_update
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def raises_at_once(session, data):
        session.update_to = None
        raise _Panic("secret-board-content")

    async def raises_in_a_task(session, data):
        session.update_to = None
        await gate
        raise _Panic("secret-board-content")

    async with _Raw.session(srv.url) as raw:
        raw.send(client_frame(1, f"40{ns},{{}}".encode()))
        while not (await raw.text()).startswith(f"40{ns},"):
            pass
        drawing = DrawingDoc()
        in_task = srv.app.front.resumed_in_task
        for patched in (raises_at_once, raises_in_a_task):
            monkeypatch.setattr(sessions, "_fast_update", patched)
            caplog.clear()
            raw.send(header + client_frame(2, drawing.put("lost", {"type": "rect"})))
            if patched is raises_in_a_task:
                await until(lambda: srv.app.front.resumed_in_task == in_task + 1)
                gate.set_result(None)
            await until(lambda: "message refused" in caplog.text)
            assert "_Panic" in caplog.text and "secret" not in caplog.text
            monkeypatch.setattr(sessions, "_fast_update", handle)
            name = f"after-{patched.__name__}"
            raw.send(header + client_frame(2, drawing.put(name, {"type": "rect"})))
            await reader.wait_for(lambda name=name: name in shapes(reader))


def record_writes(monkeypatch) -> list[bytes]:
    """What each connection hands its transport, write by write."""
    writes: list[bytes] = []
    write_out = collab.ws_connection.Connection._write_out

    def recorded(self: collab.ws_connection.Connection) -> None:
        if self._out:
            writes.append(b"".join(self._out))
        write_out(self)

    monkeypatch.setattr(collab.ws_connection.Connection, "_write_out", recorded)
    return writes


def sync_step_1(ns: str) -> bytes:
    step = f'451-{ns},0["sync-step-1",{{"_placeholder":true,"num":0}}]'
    return client_frame(1, step.encode()) + client_frame(2, b"\x00")


def one_write_with_both_steps(writes: list[bytes], ns: str) -> bytes:
    ack, server_step = f"461-{ns},0".encode(), f'451-{ns},1["sync-step-1"'.encode()
    with_ack = [w for w in writes if ack in w]
    assert len(with_ack) == 1, writes
    (written,) = with_ack
    assert server_step in written, writes
    assert written.index(ack) < written.index(server_step)
    return written


async def test_the_ack_of_the_client_s_step_and_the_server_s_step_leave_in_one_write(
    server, monkeypatch
):
    """The answer to the client's sync-step-1 and the server's own step (with
    the awareness and the room's state) are handed to the transport together."""
    writes = record_writes(monkeypatch)
    ns = "/yjs|one-write"
    async with _Raw.session(server.url) as raw:
        raw.send(client_frame(1, f"40{ns},{{}}".encode()))
        while not (await raw.text()).startswith(f"40{ns},"):
            pass
        before = len(writes)
        raw.send(sync_step_1(ns))
        while '"room:state"' not in await raw.text():
            pass
    handshake = writes[before:]
    assert len(handshake) == 1, handshake
    one_write_with_both_steps(handshake, ns)


async def test_the_steps_leave_together_when_the_connect_was_written_in_the_same_turn(
    server, monkeypatch
):
    """A client that sends its step with its CONNECT, in one TCP segment: the
    CONNECT's answer is begun first in the turn, and its end-of-turn write
    must not carry the step's ack ahead of the server's step."""
    writes = record_writes(monkeypatch)
    ns = "/yjs|one-write-pipelined"
    async with _Raw.session(server.url) as raw:
        raw.send(client_frame(1, f"40{ns},{{}}".encode()) + sync_step_1(ns))
        while '"room:state"' not in await raw.text():
            pass
    written = one_write_with_both_steps(writes, ns)
    assert f"40{ns},".encode() in written
