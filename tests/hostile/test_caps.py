"""Finding 6 of issue 12: caps on sockets and rooms.

One socket with a ``prefix/*`` token joined 1,000 rooms in 2 s and left 1,001
room records; 1,000 join/leave cycles wrote 2,000 audit rows; 300 sockets
with one ``sub`` all connected; 500 WebSockets from one address were
accepted; Engine.IO sessions that never sent a Socket.IO CONNECT stayed open.
Each is now capped (protocol.md §8), answered ``too_many_connections`` (or
``rate_limited`` for an address that keeps failing to authenticate)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import SECRET, mint
from tests.hostile.resources import open_fds
from tests.prereqs import second_loopback_address
from tests.rawsio import RawSocket
from tests.waiting import until


@pytest.fixture
async def srv(server_factory):
    return await server_factory(dev=False, jwt_secret=SECRET, unload_after_s=0)


async def test_one_session_joins_at_most_its_documents(srv) -> None:
    raw = await RawSocket.open(srv.url)
    token = mint("clinic/*", sub="u-wanderer")
    try:
        for i in range(16):
            assert (await raw.connect(f"/yjs|clinic/r{i}", {"token": token}))["connected"]
        refused = await raw.connect("/yjs|clinic/r16", {"token": token})
        assert not refused["connected"]
        assert refused["data"]["code"] == "too_many_connections"
        # Leaving one makes room for another.
        await raw.disconnect_namespace("/yjs|clinic/r0")
        await until(lambda: len(srv.app.sync.connections) == 15, what="one left")
        assert (await raw.connect("/yjs|clinic/r16", {"token": token}))["connected"]
    finally:
        await raw.close()


async def test_rooms_only_joined_leave_no_record(srv, client_factory) -> None:
    from pycrdt import Map

    token = mint("clinic/*", sub="u-visitor")
    for i in range(30):
        raw = await RawSocket.open(srv.url)
        assert (await raw.connect(f"/yjs|clinic/visited-{i}", {"token": token}))["connected"]
        await raw.close()
    writer = await client_factory(srv.url, "clinic/written", auth={"token": token})
    writer.doc.get("shapes", type=Map)["s"] = {"type": "rect"}
    await writer.close()
    registry = srv.registry
    await until(lambda: not registry.rooms, what="every room unloaded")
    assert await registry.store.list_rooms() == ["clinic/written"]
    assert [i.room for i in await registry.store.list_room_infos()] == ["clinic/written"]


async def test_join_and_leave_churn_writes_bounded_audit(srv) -> None:
    raw = await RawSocket.open(srv.url)
    token = mint("churn", sub="u-churn")
    try:
        for _ in range(300):
            assert (await raw.connect("/yjs|churn", {"token": token}))["connected"]
            await raw.disconnect_namespace("/yjs|churn")
        await until(lambda: not srv.app.sync.connections, what="all left")
    finally:
        await raw.close()
    await srv.registry.flush_audit()
    rows = await srv.registry.store.read_audit("churn")
    assert len(rows) <= 4, [(r.action, r.detail) for r in rows]
    srv.app.sync.reporter.flush(everything=True)
    await srv.registry.flush_audit()
    rows = await srv.registry.store.read_audit("churn")
    assert len(rows) <= 4
    assert {r.action for r in rows} == {"connect", "disconnect"}
    assert any("repeats=299" in r.detail for r in rows), [r.detail for r in rows]


async def test_one_user_has_at_most_its_connections_to_a_room(srv) -> None:
    token = mint("busy", sub="u-same")
    sockets = []
    try:
        for _ in range(24):
            raw = await RawSocket.open(srv.url)
            sockets.append(raw)
            assert (await raw.connect("/yjs|busy", {"token": token}))["connected"]
        raw = await RawSocket.open(srv.url)
        sockets.append(raw)
        refused = await raw.connect("/yjs|busy", {"token": token})
        assert refused["data"]["code"] == "too_many_connections"
        # Another user is not affected.
        other = await raw.connect("/yjs|busy", {"token": mint("busy", sub="u-other")})
        assert other["connected"]
    finally:
        for raw in sockets:
            await raw.close()


async def test_a_room_has_at_most_its_connections(server_factory) -> None:
    srv = await server_factory(max_room_connections=3)
    sockets = [await RawSocket.open(srv.url) for _ in range(4)]
    try:
        for raw in sockets[:3]:
            assert (await raw.connect("/yjs|small", {"name": "x"}))["connected"]
        refused = await sockets[3].connect("/yjs|small", {"name": "x"})
        assert refused["data"]["code"] == "too_many_connections"
        assert (await sockets[3].connect("/yjs|elsewhere", {"name": "x"}))["connected"]
    finally:
        for raw in sockets:
            await raw.close()


async def test_an_address_has_at_most_its_sessions(server_factory) -> None:
    srv = await server_factory(max_sessions_per_address=5)
    fds = open_fds()
    sockets = [await RawSocket.open(srv.url) for _ in range(5)]
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await RawSocket.open(srv.url)
        assert refused.value.status == 401
        async with aiohttp.ClientSession() as http:  # long-polling too
            response = await http.get(f"{srv.url}/socket.io/?EIO=4&transport=polling")
            assert response.status == 401
            assert "too_many_connections" in await response.text()
        # Another address is not affected.
        other = await RawSocket.open(srv.url, local_addr=second_loopback_address())
        await other.close()
        # A session that ends frees its place.
        await sockets.pop().close()
        await until(lambda: len(srv.app.sessions.sessions) == 4, what="one session ended")
        sockets.append(await RawSocket.open(srv.url))
    finally:
        for raw in sockets:
            await raw.close()
    await until(lambda: not srv.app.sessions.sessions, what="every session ended")
    await until(lambda: open_fds() <= fds, what="descriptors back to their baseline")


async def test_a_session_without_a_document_is_closed(server_factory) -> None:
    srv = await server_factory(connect_timeout_s=0.3)
    silent = await RawSocket.open(srv.url)  # answers nothing, connects nothing
    leaver = await RawSocket.open(srv.url)
    try:
        assert (await leaver.connect("/yjs|r", {"name": "x"}))["connected"]
        await silent.until_closed()
        assert len(srv.app.sessions.sessions) == 1, "the one with a document stays"
        await leaver.disconnect_namespace("/yjs|r")
        await leaver.until_closed()
        await until(lambda: not srv.app.sessions.sessions, what="both sessions gone")
        assert srv.app.sio.eio.sockets == {}
    finally:
        await silent.close()
        await leaver.close()


async def test_an_address_that_keeps_failing_is_refused_unread(server_factory) -> None:
    srv = await server_factory(dev=False, jwt_secret=SECRET, max_failed_connects_per_min=5)
    raw = await RawSocket.open(srv.url)
    try:
        for _ in range(5):
            refused = await raw.connect("/yjs|r", {"token": "not-a-token"})
            assert refused["data"]["code"] == "invalid_token"
        # Now even a good token is refused from this address, unread.
        refused = await raw.connect("/yjs|r", {"token": mint("r", sub="u-ok")})
        assert refused["data"]["code"] == "rate_limited"
        # Another address is not affected.
        other = await RawSocket.open(srv.url, local_addr=second_loopback_address())
        try:
            assert (await other.connect("/yjs|r", {"token": mint("r", sub="u-ok")}))["connected"]
        finally:
            await other.close()
    finally:
        await raw.close()
    # The refused connects are a few audit rows, not one each.
    await srv.registry.flush_audit()
    assert len(await srv.registry.store.read_audit("r")) <= 3


async def test_a_polling_session_without_a_document_is_closed(server_factory) -> None:
    """Ended at once, not with engine.io's close that waits for a poll."""
    srv = await server_factory(connect_timeout_s=0.3)
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{srv.url}/socket.io/?EIO=4&transport=polling")
        sid = (await response.text()).split('"sid":"')[1].split('"')[0]
        await until(lambda: not srv.app.sessions.sessions, what="the session closed")
        assert sid not in srv.app.sio.eio.sockets
        poll = await http.get(f"{srv.url}/socket.io/?EIO=4&transport=polling&sid={sid}")
        assert poll.status == 400


async def test_behind_a_trusted_proxy_each_forwarded_client_is_counted(server_factory) -> None:
    srv = await server_factory(max_sessions_per_address=2, trusted_proxies=("127.0.0.1",))
    url = f"{srv.url}/socket.io/?EIO=4&transport=polling"

    async def handshake(http: aiohttp.ClientSession, client: str) -> int:
        response = await http.get(url, headers={"X-Forwarded-For": client})
        await response.read()
        return response.status

    async with aiohttp.ClientSession() as http:
        assert [await handshake(http, "203.0.113.1") for _ in range(3)] == [200, 200, 401]
        assert await handshake(http, "203.0.113.2") == 200
        # The walk from the right stops at what is not an address: what a
        # client wrote before the proxy's own hop is never read.
        assert await handshake(http, "bogus, 203.0.113.3") == 200
    assert sorted(srv.app.sessions.per_address) == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
