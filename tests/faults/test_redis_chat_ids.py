"""A chat message's ``clientMessageId`` is claimed in Redis, atomically with its
append (issue 14, finding 7a): the same id sent through two nodes at once is
stored once, and one of the two acks says ``duplicate: true`` with the stored
id and time (protocol.md §6.1)."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import mint
from tests.redis.conftest import clients, node_factory  # noqa: F401 (fixtures)
from tests.redis.outages import asyncio_complaints, exactly_once, messages

pytestmark = pytest.mark.slow


async def test_concurrent_retries_through_two_nodes_store_one_message(
    redis_server,
    node_factory,  # noqa: F811 (fixtures)
    clients,  # noqa: F811 (fixtures)
):
    a = await node_factory(redis_server.url, "A", "--chat-burst", "100")
    b = await node_factory(redis_server.url, "B", "--chat-burst", "100")
    token = {"token": mint("twice", name="Ann", sub="ann")}
    on_a = await clients(a.url, "twice", "chat", auth=token)
    on_b = await clients(b.url, "twice", "chat", auth=token)  # the same user, another node
    stored = []
    for i in range(20):
        first, second = await asyncio.gather(
            on_a.send_chat(f"hello {i}", client_message_id=f"same-{i}"),
            on_b.send_chat(f"hello {i}", client_message_id=f"same-{i}"),
        )
        assert sorted([first["duplicate"], second["duplicate"]]) == [False, True], (
            i,
            first,
            second,
        )
        assert (first["id"], first["ts"]) == (second["id"], second["ts"]), i
        stored.append(first["id"])
    for client in (on_a, on_b):
        await client.wait_for(lambda c=client: len(messages(c)) >= 20, timeout_s=10)
    late = await clients(a.url, "twice", "chat")
    exactly_once(messages(late), stored)
    exactly_once(messages(on_a), stored)
    exactly_once(messages(on_b), stored)
    # A retry later, on either node, is a duplicate too.
    again = await on_b.send_chat("hello 3", client_message_id="same-3")
    assert again["duplicate"] is True and again["id"] == stored[3]
    for node in (a, b):
        assert asyncio_complaints(node.log()) == []
