"""The Python client after the server ended its connection.

Calls in flight fail as the connection ends, not when their timeouts run
out. The server closes a connection with an Engine.IO CLOSE (here: a client
that keeps sending past its rate); python-engineio's client answers it with
``disconnect(abort=True)``, whose ``_reset`` empties the send queue, and with
it the None that ends its writer; its reader then waits for the writer,
which waits for a packet for the longer of the ping interval and timeout,
plus 5 s (30 s against collab's defaults).
``close()``, and a reconnect, wait for that reader
(``collab.upstream.SocketIOClient.settle``): they must not wait out the
writer's timeout.

A real server in this process (``tests/conftest.py: start_server``).
"""

from __future__ import annotations

import asyncio

from collab.client import ClientState, CollabClientError
from tests.waiting import until


async def test_a_client_the_server_closed_closes_at_once(server_factory, client_factory):
    srv = await server_factory(chat_burst=1, max_refusals_per_min=2)
    chat = await client_factory(srv.url, "R", "chat", reconnection=False)
    codes = []
    for i in range(4):
        try:
            await chat.send_chat(f"m{i}", timeout_s=5)
        except CollabClientError as exc:
            codes.append(exc.code)
        if not chat.connected:
            break
    await until(lambda: chat.state is ClientState.STOPPED, what="the server closed the client")
    assert "rate_limited" in codes
    assert chat.stop_reason is not None and chat.stop_reason.code == "rate_limited"
    # The writer's timeout is 30 s; a close that waits it out fails here.
    await asyncio.wait_for(chat.close(), timeout=5)


async def test_calls_in_flight_when_the_server_closes_fail_at_once(server_factory, client_factory):
    """Their acks can no longer come: each call raises ``connection_lost``
    as the connection ends, not when its own timeout runs out."""
    srv = await server_factory(chat_burst=1, max_refusals_per_min=2)
    chat = await client_factory(srv.url, "R", "chat", reconnection=False)

    async def one(i: int) -> str:
        try:
            await chat.send_chat(f"m{i}", timeout_s=60)
        except CollabClientError as exc:
            return exc.code
        return "ok"

    codes = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(20))), timeout=10)
    assert codes.count("ok") == 1
    assert "rate_limited" in codes and "connection_lost" in codes
    assert set(codes) == {"ok", "rate_limited", "connection_lost"}
    await until(lambda: chat.state is ClientState.STOPPED, what="the client stopped")
