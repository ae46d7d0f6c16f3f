"""What collab's client borrows from python-socketio and python-engineio.

``collab.upstream.SocketIOClient`` works around a fault of python-socketio's client (a
message task that outlives its connection) through private names. These
tests drive the real classes, without a network, and fail loudly when an
upgrade moves those names or fixes the fault upstream (then the workaround
can go). Also here: the backoff schedule and the client's state table.
"""

from __future__ import annotations

import asyncio
import random

import pytest
import socketio

from collab.reconnect import TRANSITIONS as _TRANSITIONS
from collab.reconnect import Backoff, ClientState
from collab.upstream import SocketIOClient as _SocketIOClient
from tests.waiting import until

NAMESPACE = "/yjs|r"
#: A BINARY_EVENT header announcing one attachment, as the server sends it.
HEADER = f'51-{NAMESPACE},["sync-update",{{"_placeholder":true,"num":0}}]'
ATTACHMENT = b"\x01\x02\x00\x01\x00"


def client(cls: type[socketio.AsyncClient]) -> socketio.AsyncClient:
    sio = cls(reconnection=False, handle_sigint=False)
    received: list[object] = []
    sio.on("sync-update", received.append, namespace=NAMESPACE)
    sio.received = received
    return sio


async def end_between_header_and_attachment(sio: socketio.AsyncClient) -> None:
    """What Engine.IO's client does when a connection ends after a binary
    event's header was handled and before its attachment's task ran."""
    sio.eio.state = "connected"
    await sio._handle_eio_message(HEADER)
    assert sio._binary_packet is not None
    await sio._handle_eio_disconnect("transport error")
    sio.eio.state = "disconnected"  # engine.io's _reset, right after
    await sio._handle_eio_message(ATTACHMENT)


async def test_stock_client_still_fails_on_an_attachment_after_the_end():
    """If this fails, python-socketio handles it now: drop the override of
    ``_handle_eio_message`` in ``collab.upstream.SocketIOClient``."""
    sio = client(socketio.AsyncClient)
    with pytest.raises(ValueError):
        await end_between_header_and_attachment(sio)


async def test_an_attachment_after_the_end_is_dropped():
    sio = client(_SocketIOClient)
    await end_between_header_and_attachment(sio)
    assert sio.received == []
    assert sio._binary_packet is None
    assert sio.ended.is_set()


async def test_a_header_after_the_end_does_not_reach_the_next_connection():
    sio = client(_SocketIOClient)
    sio.eio.state = "disconnected"
    await sio._handle_eio_message(HEADER)  # a task that ran after the end
    assert sio._binary_packet is None


async def test_each_connection_gets_a_send_queue_of_its_own():
    sio = client(_SocketIOClient)
    old = sio.eio.queue
    await old.put("a packet the writer never accounted for")
    await sio._handle_eio_connect()
    assert sio.eio.queue is not old
    await asyncio.wait_for(sio.eio.queue.join(), 1)
    assert not sio.ended.is_set()


async def test_stock_engineio_client_still_drops_the_none_that_ends_its_writer():
    """The server's CLOSE: ``disconnect(abort=True)`` queues the None that
    ends the writer, then ``_reset`` empties the queue. If this fails,
    python-engineio keeps it: drop the None that ``settle`` queues."""
    sio = client(socketio.AsyncClient)
    eio = sio.eio
    eio.state, eio.current_transport = "connected", "polling"  # no WebSocket to close
    await eio.disconnect(abort=True)
    assert eio.state == "disconnected"
    assert eio.queue.empty()


async def test_settle_ends_a_writer_left_waiting_by_the_end():
    """What the reader waits for after the server's CLOSE: a writer waiting
    on an empty queue. ``settle`` ends it, and so the reader, at once."""
    sio = client(_SocketIOClient)
    eio = sio.eio
    eio.state, eio.ping_interval, eio.ping_timeout = "connected", 25, 20
    writer = asyncio.ensure_future(eio._write_loop())
    eio.write_loop_task = writer

    async def reader() -> None:  # the end of Engine.IO's read loop
        await writer

    eio.read_loop_task = asyncio.ensure_future(reader())
    await until(lambda: eio.queue._getters, what="the writer waits on the queue")
    eio.state = "disconnected"  # what disconnect(abort=True) left
    await asyncio.wait_for(sio.settle(), 1)
    assert writer.result() is None and eio.read_loop_task.result() is None
    assert eio.write_loop_task is None  # the writer's own last step


def test_the_private_names_it_relies_on_are_there():
    sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    for name in ("_handle_eio_connect", "_handle_eio_message", "_handle_eio_disconnect"):
        assert asyncio.iscoroutinefunction(getattr(sio, name)), name
    assert sio.eio.handlers["message"] == sio._handle_eio_message
    assert hasattr(sio, "_binary_packet")
    assert hasattr(sio.eio, "read_loop_task") and hasattr(sio.eio, "queue")
    assert hasattr(sio.eio, "write_loop_task")
    assert callable(sio.eio.create_queue)
    assert sio.reason.SERVER_DISCONNECT and sio.reason.CLIENT_DISCONNECT


def test_backoff_is_full_jitter_under_an_exponential_bound():
    backoff = Backoff(base_s=0.5, max_s=5.0)
    assert [backoff.bound(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.bound(10_000) == 5.0
    rng = random.Random(7)
    delays = [backoff.delay(3, rng) for _ in range(1000)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert min(delays) < 0.4 and max(delays) > 3.6, "spread over the whole range"
    for bad in ((0, 1), (2, 1), (-1, 1)):
        with pytest.raises(ValueError):
            Backoff(*bad)


def test_every_state_can_stop_and_nothing_leaves_stopped():
    assert set(_TRANSITIONS) == set(ClientState)
    for state, targets in _TRANSITIONS.items():
        assert state is ClientState.STOPPED or ClientState.STOPPED in targets
    assert _TRANSITIONS[ClientState.STOPPED] == frozenset()
