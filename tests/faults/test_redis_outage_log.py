"""A node's log during Redis failures has no asyncio complaint (issue 14,
finding 7b): no "Unclosed Pipeline client" (a pipeline left holding its
connection when a command before its EXEC failed), no "Task exception was
never retrieved"."""

from __future__ import annotations

import pytest
from pycrdt import Map

from collab.client import CollabClientError
from tests.boards import shapes
from tests.conftest import mint
from tests.redis.conftest import clients, node_factory  # noqa: F401 (fixtures)
from tests.redis.outages import asyncio_complaints, restart, send_until_stored, until_status

pytestmark = pytest.mark.slow


async def _acl(redis, *rules: str) -> None:
    client = redis.client()
    try:
        await client.execute_command("ACL", "SETUSER", "default", *rules)
    finally:
        await client.aclose()


async def test_failed_appends_leave_no_unclosed_pipeline(
    redis_server,
    node_factory,  # noqa: F811 (fixtures)
    clients,  # noqa: F811 (fixtures)
):
    """Redis answers the append pipeline's first command with an error (here
    an ACL denial of SCRIPT EXISTS, as a server still loading answers
    LOADING): the appends fail and are retried, and nothing leaks."""
    a = await node_factory(redis_server.url, "A")
    author = await clients(a.url, "leaky")
    chat = await clients(a.url, "leaky", "chat", auth={"token": mint("leaky", sub="ann")})
    author.doc.get("shapes", type=Map)["first"] = {"type": "rect"}
    await send_until_stored(chat, "first", "first")

    await _acl(redis_server, "-script|exists")
    author.doc.get("shapes", type=Map)["second"] = {"type": "rect"}
    with pytest.raises(CollabClientError) as refused:
        await chat.send_chat("refused", client_message_id="refused")
    assert refused.value.code == "store_unavailable"  # the append pipeline failed
    await _acl(redis_server, "+script|exists")
    await send_until_stored(chat, "refused", "refused")

    b = await node_factory(redis_server.url, "B")
    probe = await clients(b.url, "leaky")
    await probe.wait_for(lambda: set(shapes(probe)) == {"first", "second"}, timeout_s=10)
    assert asyncio_complaints(a.log()) == []


async def test_an_outage_with_writes_leaves_no_complaint(
    redis_server,
    tmp_path,
    node_factory,  # noqa: F811 (fixtures)
    clients,  # noqa: F811 (fixtures)
):
    """Redis killed while a node writes and publishes, then back: the node's
    log has no asyncio complaint."""
    a = await node_factory(redis_server.url, "A")
    author = await clients(a.url, "down")
    chat = await clients(a.url, "down", "chat")
    await author.set_awareness({"cursor": [1, 2]})
    await redis_server.stop()
    await until_status(a.url, "degraded")
    for i in range(20):
        author.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect"}
        await author.set_awareness({"cursor": [i, i]})
    with pytest.raises(CollabClientError) as refused:
        await chat.send_chat("while down", client_message_id="down")
    assert refused.value.code == "store_unavailable"
    server = await restart(redis_server, tmp_path)
    try:
        await until_status(a.url, "ok")
        await send_until_stored(chat, "while down", "down")
        b = await node_factory(server.url, "B")
        probe = await clients(b.url, "down")
        await probe.wait_for(lambda: len(shapes(probe)) == 20, timeout_s=10)
        assert asyncio_complaints(a.log()) == []
    finally:
        await server.stop()
