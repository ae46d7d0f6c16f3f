"""The Python client fails over between nodes (issue 14, finding 7).

``CollabClient`` takes several URLs. A lost connection or a failed connect
is followed by a connect to the next URL after a full-jitter exponential
backoff; the document is kept, and the handshake sends what the node
missed. Two real ``collab serve`` nodes share a real redis-server started
by the test. Also here: a node that goes away while it is sending large
binary events leaves no "Task exception was never retrieved" (python-socketio's
client used to die with ``ValueError`` on the attachment: see
``collab.upstream.SocketIOClient``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pycrdt import Map

from collab.client import Backoff, ClientState, CollabClient, CollabClientError
from tests.boards import shapes
from tests.conftest import mint
from tests.procs import CollabNode, free_port
from tests.redis.conftest import node_factory  # noqa: F401 (fixtures)
from tests.waiting import until

pytestmark = pytest.mark.slow

#: Quick retries: the tests wait on conditions, this only keeps them short.
FAST = Backoff(base_s=0.05, max_s=0.5)


@pytest.fixture
async def complaints(caplog: pytest.LogCaptureFixture) -> AsyncIterator[list[str]]:
    """What asyncio and python-socketio report about this process's tasks:
    exceptions nobody retrieved (the event loop's handler) and error logs."""
    found: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        found.append(f"{context.get('message')}: {context.get('exception')!r}")

    loop.set_exception_handler(handler)
    caplog.set_level(logging.ERROR)
    try:
        yield found
    finally:
        loop.set_exception_handler(previous)


def reported(found: list[str], caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()  # a task that died unobserved is reported when it is collected
    return found + [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name.split(".")[0] in ("asyncio", "socketio", "engineio", "collab", "aiohttp")
    ]


def failover_client(urls: list[str], room: str, name: str, **kwargs: Any) -> CollabClient:
    kwargs.setdefault("backoff", FAST)
    return CollabClient(urls, room, auth={"token": mint(room, name=name, sub=name)}, **kwargs)


@pytest.fixture
async def made() -> Any:
    clients: list[CollabClient] = []
    yield clients
    await asyncio.gather(*(c.close(drain_timeout_s=1) for c in clients), return_exceptions=True)


async def test_a_client_keeps_editing_through_a_node_killed_and_continues_on_another(
    redis_server,
    node_factory,  # noqa: F811 (fixtures)
    made,
    complaints,
    caplog,
):
    a = await node_factory(redis_server.url, "A")
    b = await node_factory(redis_server.url, "B")
    ann = failover_client([a.url, b.url], "relay", "ann")
    bob = failover_client([b.url], "relay", "bob")
    made += [ann, bob]
    await ann.connect()
    await bob.connect()
    assert ann.url == a.url
    board = ann.doc.get("shapes", type=Map)

    def edit(prefix: str, count: int) -> list[str]:
        keys = [f"{prefix}-{i}" for i in range(count)]
        for key in keys:
            board[key] = {"type": "rect", "x": float(len(key))}
        return keys

    expected = edit("before", 20)
    await bob.wait_for(lambda: set(expected) <= shapes(bob).keys(), timeout_s=10)

    await a.kill()
    expected += edit("while-dying", 20)  # sent into a dead socket, or kept offline
    await until(lambda: not ann.connected, what="ann noticed node A is gone")
    expected += edit("offline", 20)
    await ann.wait_for(lambda: ann.connected and ann.synced.is_set(), timeout_s=20)
    assert ann.url == b.url
    expected += edit("after", 20)
    bob.doc.get("shapes", type=Map)["from-bob"] = {"type": "ellipse"}

    await bob.wait_for(lambda: set(expected) <= shapes(bob).keys(), timeout_s=15)
    await ann.wait_for(lambda: "from-bob" in shapes(ann), timeout_s=15)
    assert shapes(ann) == shapes(bob)
    joiner = failover_client([b.url], "relay", "cy")
    made.append(joiner)
    await joiner.connect()
    assert shapes(joiner) == shapes(ann)
    # One connection lost, one more made (no reconnect loop), to B.
    assert ann.connects == 2, ann.connects
    assert ann.refusals == [] and ann.errors == []
    assert reported(complaints, caplog) == []


async def test_with_every_node_down_a_client_backs_off_then_connects_when_one_comes_up(
    tmp_path, made, complaints, caplog
):
    ports = [free_port(), free_port()]
    backoff = Backoff(base_s=0.05, max_s=0.4)
    client = CollabClient(
        [f"http://127.0.0.1:{p}" for p in ports], "late", auth={"name": "Ann"}, backoff=backoff
    )
    made.append(client)
    connecting = asyncio.ensure_future(client.connect(timeout_s=120))
    await until(lambda: client.attempts >= 6, timeout_s=30, what="several attempts")
    assert client.state in (ClientState.CONNECTING, ClientState.WAITING)
    # Backing off: over a window of 2 s, waits average 0.2 s once at their
    # bound. A client without backoff makes hundreds of attempts (each one is
    # refused at once); a slow machine makes fewer, never more.
    loop = asyncio.get_running_loop()
    start, before = loop.time(), client.attempts
    await asyncio.sleep(2.0)  # a measuring window, not a synchronization
    made_in_window = client.attempts - before
    elapsed = loop.time() - start
    assert 1 <= made_in_window <= 2 + elapsed / 0.1, (made_in_window, elapsed)
    assert not connecting.done()

    node = CollabNode(tmp_path, "--store", "memory", "--dev", node_id="late", port=ports[1])
    await node.start()
    try:
        await asyncio.wait_for(connecting, 30)
        assert client.url.endswith(f":{ports[1]}")
        assert client.connects == 1
        client.doc.get("shapes", type=Map)["hello"] = {"type": "rect"}
        other = CollabClient(node.url, "late", auth={"name": "Bob"}, reconnection=False)
        made.append(other)
        await other.connect()
        await other.wait_for(lambda: "hello" in shapes(other))
    finally:
        await client.close(drain_timeout_s=1)
        await node.stop()
    assert reported(complaints, caplog) == []


async def test_close_stops_a_client_that_is_waiting_to_reconnect(made, complaints, caplog):
    client = CollabClient(
        [f"http://127.0.0.1:{free_port()}"],
        "nowhere",
        auth={"name": "Ann"},
        backoff=Backoff(base_s=30, max_s=60),  # waits far longer than the test
    )
    made.append(client)
    connecting = asyncio.ensure_future(client.connect(timeout_s=120))
    await until(lambda: client.state is ClientState.WAITING, what="waiting to retry")
    await asyncio.wait_for(client.close(), 5)
    assert client.state is ClientState.STOPPED
    with pytest.raises(CollabClientError) as failed:
        await asyncio.wait_for(connecting, 5)
    assert failed.value.code == "connect_failed"
    assert reported(complaints, caplog) == []


async def test_a_node_going_away_mid_binary_event_leaves_no_task_errors(
    redis_server,
    node_factory,  # noqa: F811 (fixtures)
    made,
    complaints,
    caplog,
):
    """Large ``sync-update``s (a header frame and a 900 KB attachment each)
    are relayed to four clients, which keep sending small edits, when their
    node stops. A client whose sending fails first stops reading with frames
    still buffered: its connection ends between an event's header and its
    attachment. They all fail over to the other node, converge, and nothing
    is reported."""
    a = await node_factory(redis_server.url, "A", "--update-bytes-burst", str(64 << 20))
    b = await node_factory(redis_server.url, "B")
    writer = failover_client([a.url, b.url], "big", "writer")
    readers = [failover_client([a.url, b.url], "big", f"reader{i}") for i in range(4)]
    made += [writer, *readers]
    for client in (writer, *readers):
        await client.connect()
    streaming = True

    async def small_edits(reader: CollabClient, name: str) -> None:
        marks = reader.doc.get("marks", type=Map)
        i = 0
        while streaming:
            i += 1
            marks[name] = i
            await asyncio.sleep(0.002)  # pacing a workload, not synchronization

    editing = [asyncio.ensure_future(small_edits(r, f"r{i}")) for i, r in enumerate(readers)]
    big = writer.doc.get("big", type=Map)
    stop: asyncio.Task[Any] | None = None
    try:
        for i in range(24):
            big["payload"] = f"{i:04d}" + "x" * 900_000  # replaces the last: the board stays small
            await asyncio.sleep(0.01)  # pacing, as above
            if i == 8:
                stop = asyncio.ensure_future(a.stop())  # SIGTERM: sockets close with 1001
    finally:
        streaming = False
        await asyncio.gather(*editing)
    assert stop is not None
    await stop
    last = big["payload"][:4]
    for reader in readers:
        await reader.wait_for(
            lambda r=reader: (
                r.connected and str(r.doc.get("big", type=Map).get("payload", ""))[:4] == last
            ),
            timeout_s=30,
        )
        assert reader.url == b.url
    await until(
        lambda: all(shapes_of(r, "marks") == shapes_of(writer, "marks") for r in readers),
        timeout_s=15,
        what="every reader's edits everywhere",
    )
    assert reported(complaints, caplog) == []


def shapes_of(client: CollabClient, root: str) -> dict[str, Any]:
    return client.doc.get(root, type=Map).to_py() or {}
