"""Chat through ``chat:send``: stamped by the server, ordered, idempotent."""

from __future__ import annotations

import asyncio

import pytest
from pycrdt import Array, Map

from collab.client import CollabClient, CollabClientError


def messages(client: CollabClient) -> list[dict]:
    return client.doc.get("messages", type=Array).to_py() or []


async def test_messages_are_stamped_and_ordered(server, client_factory):
    ann = await client_factory(server.url, "group", "chat", auth={"name": "Ann"})
    bob = await client_factory(
        server.url, "group", "chat", auth={"name": "Bob", "role": "facilitator"}
    )
    acks = []
    for i in range(10):
        sender = ann if i % 2 == 0 else bob
        acks.append(await sender.send_chat(f"message {i}"))
    await ann.wait_for(lambda: len(messages(ann)) == 10)
    await bob.wait_for(lambda: len(messages(bob)) == 10)
    for view in (messages(ann), messages(bob)):
        assert [m["text"] for m in view] == [f"message {i}" for i in range(10)]
        assert [m["id"] for m in view] == [a["id"] for a in acks]
        assert [m["authorName"] for m in view] == ["Ann", "Bob"] * 5
        assert [m["role"] for m in view] == ["participant", "facilitator"] * 5
        assert all(m["redacted"] is False for m in view)
        timestamps = [m["ts"] for m in view]
        assert timestamps == sorted(timestamps)
        assert len({m["authorId"] for m in view}) == 2
    assert all(a["duplicate"] is False for a in acks)


async def test_author_cannot_be_forged(server, client_factory):
    ann = await client_factory(server.url, "forge", "chat", auth={"name": "Ann"})
    ack = await ann.call(
        "chat:send",
        {
            "text": "hi",
            "clientMessageId": "c1",
            "authorName": "Admin",
            "role": "facilitator",
            "ts": 0,
            "authorId": "someone-else",
        },
    )
    await ann.wait_for(lambda: len(messages(ann)) == 1)
    stored = messages(ann)[0]
    assert stored["id"] == ack["id"]
    assert stored["authorName"] == "Ann"
    assert stored["role"] == "participant"
    assert stored["authorId"] != "someone-else"
    assert stored["ts"] > 1_600_000_000_000


async def test_resent_client_message_id_is_not_duplicated(server, client_factory):
    ann = await client_factory(server.url, "retry", "chat", auth={"name": "Ann"})
    first = await ann.send_chat("once", client_message_id="retry-1")
    again = await ann.send_chat("once", client_message_id="retry-1")
    assert again["id"] == first["id"]
    assert again["duplicate"] is True and first["duplicate"] is False
    concurrent = await asyncio.gather(
        *(ann.send_chat("burst", client_message_id="retry-2") for _ in range(5))
    )
    assert len({a["id"] for a in concurrent}) == 1
    await ann.send_chat("after", client_message_id="retry-3")
    await ann.wait_for(lambda: len(messages(ann)) == 3)
    assert [m["text"] for m in messages(ann)] == ["once", "burst", "after"]


async def test_chat_sent_from_board_namespace_reaches_chat_members(server, client_factory):
    board = await client_factory(server.url, "mixed", auth={"name": "Ann"})
    reader = await client_factory(server.url, "mixed", "chat")
    ack = await board.send_chat("from the board connection")
    await reader.wait_for(lambda: len(messages(reader)) == 1)
    assert messages(reader)[0]["id"] == ack["id"]
    assert board.doc.get("messages", type=Array).to_py() in ([], None), "the board doc is untouched"


async def test_late_chat_joiner_gets_history(server, client_factory):
    ann = await client_factory(server.url, "history", "chat", auth={"name": "Ann"})
    for i in range(5):
        await ann.send_chat(f"m{i}")
    late = await client_factory(server.url, "history", "chat")
    assert [m["text"] for m in messages(late)] == [f"m{i}" for i in range(5)]


async def test_observer_is_read_only(server, client_factory):
    writer = await client_factory(server.url, "watch", auth={"name": "P"})
    observer = await client_factory(server.url, "watch", auth={"name": "O", "role": "observer"})
    with pytest.raises(CollabClientError) as info:
        await observer.send_chat("may I?")
    assert info.value.code == "permission_denied"
    observer.doc.get("shapes", type=Map)["sneaky"] = {"type": "rect"}
    await observer.wait_for(lambda: len(observer.errors) == 1)
    assert observer.errors[0]["code"] == "permission_denied"
    writer.doc.get("shapes", type=Map)["legit"] = {"type": "rect"}
    await observer.wait_for(lambda: "legit" in (observer.doc.get("shapes", type=Map).to_py() or {}))
    assert "sneaky" not in (writer.doc.get("shapes", type=Map).to_py() or {})
    assert server.app.registry.rooms["watch"].docs["board"].engine.read_map("shapes").keys() == {
        "legit"
    }
