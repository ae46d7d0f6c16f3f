"""The private line with two nodes on Redis (protocol.md §6.8): a participant
on node A and a facilitator on node B write to each other; the facilitator
on B is told of A's message (``private:message``, a signed room event); the
same ``clientMessageId`` sent through both nodes at once is stored once
(claimed with the append, as the chat's); a node where nobody has the thread
open writes to it and reads it from Redis; deleting the room removes the thread's keys."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from pycrdt import Array

from collab.client import CollabClient, CollabClientError
from collab.client_private import PrivateLine, thread_doc, thread_messages
from tests.conftest import ADMIN_KEY, mint

pytestmark = pytest.mark.slow

ROOM = "clinic-5-private"


def who(sub: str, role: str = "participant") -> dict[str, str]:
    return {"token": mint(ROOM, role=role, name=sub.title(), sub=sub)}


def chat(client: CollabClient) -> list[dict[str, Any]]:
    return client.doc.get("messages", type=Array).to_py() or []


async def test_a_thread_across_two_nodes(redis_server, in_process_nodes, clients) -> None:
    a, b = await in_process_nodes("A", "B")
    doc = thread_doc(ROOM, "ann")
    ann_a = await clients(a.url, ROOM, auth=who("ann"))
    ann_b = await clients(b.url, ROOM, auth=who("ann"))  # the same user on the other node
    fac_b = await clients(b.url, ROOM, auth=who("kim", "facilitator"))
    group_b = await clients(b.url, ROOM, "chat", auth=who("bob"))
    notices = PrivateLine(fac_b).notices()
    ann_thread = await clients(a.url, ROOM, doc, auth=who("ann"))
    kim_thread = await clients(b.url, ROOM, doc, auth=who("kim", "facilitator"))

    # Participant on A → facilitator on B, told by a notice and the update.
    ack = await PrivateLine(ann_a).send("Can I share something privately?")
    assert ack["doc"] == doc
    await fac_b.wait_for(lambda: [n["id"] for n in notices] == [ack["id"]], timeout_s=10)
    assert notices[0]["userId"] == "ann" and notices[0]["doc"] == doc
    await kim_thread.wait_for(lambda: len(thread_messages(kim_thread)) == 1, timeout_s=10)

    # Facilitator on B → participant on A.
    reply = await PrivateLine(kim_thread).send("Yes, go ahead.", to="ann")
    await ann_thread.wait_for(lambda: len(thread_messages(ann_thread)) == 2, timeout_s=10)
    assert thread_messages(ann_thread)[1]["id"] == reply["id"]

    # The same message id through both nodes at once: stored once.
    for i in range(5):
        first, second = await asyncio.gather(
            PrivateLine(ann_a).send(f"again {i}", client_message_id=f"same-{i}"),
            PrivateLine(ann_b).send(f"again {i}", client_message_id=f"same-{i}"),
        )
        assert sorted([first["duplicate"], second["duplicate"]]) == [False, True], i
        assert (first["id"], first["ts"]) == (second["id"], second["ts"]), i
    await kim_thread.wait_for(lambda: len(thread_messages(kim_thread)) == 7, timeout_s=10)
    ids = [m["id"] for m in thread_messages(kim_thread)]
    assert len(set(ids)) == 7

    # Another participant is refused on either node; the group chat holds nothing.
    for node in (a, b):
        with pytest.raises(CollabClientError) as info:
            await clients(node.url, ROOM, doc, auth=who("bob"), reconnection=False)
        assert info.value.code == "private_line_forbidden"
    await group_b.send_chat("group")
    await group_b.wait_for(lambda: len(chat(group_b)) == 1, timeout_s=10)
    assert [m["text"] for m in chat(group_b)] == ["group"]

    # The facilitator redacts on B; A's copy loses the text.
    await PrivateLine(fac_b).redact(doc, ack["id"])
    await ann_thread.wait_for(
        lambda: thread_messages(ann_thread)[0]["redacted"] is True, timeout_s=10
    )

    # A node where nobody has the thread open writes to it (twice: it loads
    # the thread, then catches up again) and reads it from Redis.
    c = (await in_process_nodes("C"))[0]
    fac_c = await clients(c.url, ROOM, auth=who("lee", "facilitator"))
    for text in ("From C.", "From C again."):
        await PrivateLine(fac_c).send(text, to="ann")
    await ann_thread.wait_for(lambda: len(thread_messages(ann_thread)) == 9, timeout_s=10)
    late = await clients(c.url, ROOM, doc, auth=who("lee", "facilitator"))
    assert len(thread_messages(late)) == 9
    listed = await PrivateLine(late).threads()
    assert [(t["doc"], t["userId"], t["messages"]) for t in listed["threads"]] == [(doc, "ann", 9)]

    # Deleting the room removes the thread's keys from Redis.
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.delete(f"{a.url}/api/rooms/{ROOM}") as resp,
    ):
        assert resp.status in (200, 204), await resp.text()
    redis = redis_server.client()
    try:
        keys = [k async for k in redis.scan_iter(f"collab:{{{ROOM}}}:doc:{doc}*")]
    finally:
        await redis.aclose()
    assert keys == []
