"""Engine.IO's heartbeat from one timer (collab.heartbeat): every session is
pinged once per interval, on a WebSocket and by long-polling, a session that
answers stays, one that stops is closed, and no session holds a task of its
own for it."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp

from tests.rawsio import RawSocket
from tests.waiting import until


async def _pings(raw: RawSocket, count: int, *, answer: bool = True) -> list[float]:
    """The arrival times of the next ``count`` PINGs (answered with PONGs)."""
    times: list[float] = []
    while len(times) < count:
        msg = await asyncio.wait_for(raw.ws.receive(), 10)
        if msg.type is aiohttp.WSMsgType.BINARY:
            continue  # the handshake's attachments
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"the session ended: {msg.type}")
        if msg.data == "2":
            times.append(time.monotonic())
            if answer:
                await raw.ws.send_str("3")
    return times


async def test_a_websocket_session_is_pinged_each_interval_and_stays(server_factory):
    srv = await server_factory(ping_interval_s=1.0, ping_timeout_s=2.0)
    raw = await RawSocket.open(srv.url)
    try:
        assert (await raw.connect("/yjs|beat"))["connected"]
        times = await _pings(raw, 3)
        # A ping goes out at most a slot (a quarter of the interval here)
        # before the interval is over, never more often.
        assert all(b - a >= 0.7 for a, b in itertools.pairwise(times)), times
        assert len(srv.app.sync.connections) == 1
    finally:
        await raw.session.close()


async def test_a_session_that_stops_answering_is_closed(server_factory):
    srv = await server_factory(ping_interval_s=0.5, ping_timeout_s=1.0)
    raw = await RawSocket.open(srv.url)
    try:
        assert (await raw.connect("/yjs|beat"))["connected"]
        await _pings(raw, 2)  # answered: still there
        assert len(srv.app.sync.connections) == 1
        await raw.until_closed()  # then silent: engine.io's CLOSE, and the WebSocket ends
        await until(lambda: not srv.app.sync.connections, timeout_s=10)
        await until(lambda: not srv.app.sio.eio.sockets, timeout_s=10)
    finally:
        await raw.session.close()


async def test_a_polling_session_gets_its_pings_through_the_queue(server_factory):
    srv = await server_factory(ping_interval_s=0.5, ping_timeout_s=1.0)
    async with aiohttp.ClientSession() as http:
        await _poll_and_stop_answering(srv, http)


async def _poll_and_stop_answering(srv: object, http: aiohttp.ClientSession) -> None:
    srv: Any = srv
    base = srv.url + "/socket.io/?EIO=4&transport=polling"
    async with http.get(base) as r:
        opened = await r.text()
    assert opened.startswith("0{"), opened
    sid = opened.split('"sid":"', 1)[1].split('"', 1)[0]
    url = f"{base}&sid={sid}"
    async with http.post(url, data="40/yjs|beat,{}") as r:
        assert r.status == 200
    seen: list[str] = []
    for _ in range(3):  # the CONNECT answer, then pings, each answered
        async with http.get(url) as r:
            packets = (await r.text()).split("\x1e")
        seen += packets
        if "2" in packets:
            async with http.post(url, data="3") as r:
                assert r.status == 200
    assert any(p.startswith("40/yjs|beat,") for p in seen), seen
    assert seen.count("2") >= 1, seen
    assert sid in srv.app.sio.eio.sockets
    # Unanswered from here: the session ends, and leaves engine.io's table.
    await until(lambda: sid not in srv.app.sio.eio.sockets, timeout_s=10)
    # A session whose client says CLOSE leaves it too, though it never polls again.
    async with http.get(base) as r:
        other = (await r.text()).split('"sid":"', 1)[1].split('"', 1)[0]
    async with http.post(f"{base}&sid={other}", data="1") as r:
        assert r.status == 200
    await until(lambda: other not in srv.app.sio.eio.sockets, timeout_s=10)


async def test_no_session_holds_a_task_for_its_heartbeat(server_factory, client_factory):
    srv = await server_factory()
    before = asyncio.all_tasks()
    clients = [await client_factory(srv.url, f"idle-{i % 2}") for i in range(10)]
    await until(lambda: len(srv.app.sync.connections) == 10)
    for client in clients:
        await client.wait_synced()

    def heartbeat_tasks() -> list[str]:
        names = [getattr(t.get_coro(), "__qualname__", "") for t in asyncio.all_tasks() - before]
        return [n for n in names if "ping" in n.lower() or n == "wait_for"]

    # The connects' own tasks end (their handshake waits); a ping task never would.
    await until(lambda: not heartbeat_tasks(), timeout_s=5, what="no heartbeat task")
    assert srv.app.sessions.heartbeat is not None
    assert len(srv.app.sessions.heartbeat) == 10


async def test_a_session_that_ends_leaves_only_its_own_namespaces(
    server_factory, client_factory, monkeypatch
):
    # python-socketio's own end of a session walks every namespace the server
    # has (one per room and document); collab's ends the session's own.
    srv = await server_factory()
    others = [await client_factory(srv.url, f"room-{i}") for i in range(12)]
    leaving = await client_factory(srv.url, "room-0")
    await until(lambda: len(srv.app.sync.connections) == 13)
    sio = srv.app.sio
    assert len(sio.manager.rooms) >= 12
    ended: list[str] = []
    handle = sio._handle_disconnect

    async def counted(eio_sid: str, namespace: str, *args: Any) -> None:
        ended.append(namespace)
        await handle(eio_sid, namespace, *args)

    monkeypatch.setattr(sio, "_handle_disconnect", counted)
    await leaving.close()
    await until(lambda: len(srv.app.sync.connections) == 12)
    assert ended == ["/yjs|room-0"]
    assert len(srv.app.sessions.namespaces.of) == 12
    assert all(c.connected for c in others)
