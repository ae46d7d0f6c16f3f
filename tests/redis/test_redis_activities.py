"""Session activities with two nodes on Redis (protocol.md §6.6): the hands
queue and the notice are meta's, so a hand raised on one node is seen and
lowered on the other; a reaction sent to one node reaches the room's
connections on the other (a control envelope on the room's meta channel,
signed with the cluster key: protocol.md §10.3); a message sent on one node
is deleted by its author on the other."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Array, Map

from collab.client import CollabClient
from tests.conftest import mint

pytestmark = pytest.mark.slow

ROOM = "clinic-5/activities"


def who(sub: str, role: str = "participant") -> dict[str, str]:
    return {"token": mint(ROOM, role=role, name=sub.title(), sub=sub)}


def queue(client: CollabClient) -> list[str]:
    return [h.user_id for h in client.raised_hands()]


def messages(client: CollabClient) -> list[dict[str, Any]]:
    return client.doc.get("messages", type=Array).to_py() or []


async def test_hands_notices_reactions_and_deletions_across_nodes(
    redis_server, in_process_nodes, clients
):
    a, b = await in_process_nodes("A", "B")
    ann_a = await clients(a.url, ROOM, auth=who("ann"))
    ann_chat_b = await clients(b.url, ROOM, "chat", auth=who("ann"))
    bob_b = await clients(b.url, ROOM, auth=who("bob"))
    fac_b = await clients(b.url, ROOM, "meta", auth=who("kim", "facilitator"))
    meta_a = await clients(a.url, ROOM, "meta", auth=who("eve", "observer"))
    chat_a = await clients(a.url, ROOM, "chat", auth=who("ann"))
    heard = {c: c.listen("reaction") for c in (ann_a, bob_b, fac_b, meta_a)}

    # Raised on A, then on B: one queue, in raising order, on both nodes.
    await ann_a.raise_hand()
    await fac_b.wait_for(lambda: queue(fac_b) == ["ann"], timeout_s=10)
    await bob_b.raise_hand()
    await meta_a.wait_for(lambda: queue(meta_a) == ["ann", "bob"], timeout_s=10)
    # Lowered by the facilitator on B, seen on A.
    await fac_b.lower_hands("ann")
    await meta_a.wait_for(lambda: queue(meta_a) == ["bob"], timeout_s=10)

    # The notice set on B reaches A.
    await fac_b.set_notice("Recorded for supervision.")
    await meta_a.wait_for(
        lambda: (
            meta_a.doc.get("meta", type=Map).to_py().get("notice") == "Recorded for supervision."
        ),
        timeout_s=10,
    )

    # A reaction sent to A reaches the room's connections on both nodes, once each.
    ack = await ann_a.send_reaction("slow-down")
    expected = {"userId": "ann", "kind": "slow-down", "ts": ack["ts"]}
    for client, got in heard.items():
        await client.wait_for(lambda got=got: len(got) >= 1, timeout_s=10)
    # And one sent to B reaches A: after it, nothing more from the first.
    await bob_b.send_reaction("heart")
    for client, got in heard.items():
        await client.wait_for(lambda got=got: len(got) >= 2, timeout_s=10)
        assert got[0] == expected
        assert [r["kind"] for r in got] == ["slow-down", "heart"]
    # Reactions are published, never stored: no key of Redis holds one.
    redis = redis_server.client()
    try:
        dumps = [await redis.dump(k) async for k in redis.scan_iter("*")]
    finally:
        await redis.aclose()
    assert len(dumps) > 3  # the room's documents, its epoch, ...
    assert not [d for d in dumps if b"slow-down" in d]

    # A message sent on A is deleted by its author on B.
    sent = await chat_a.send_chat("SHARED-TOO-SOON-8841")
    await ann_chat_b.wait_for(lambda: len(messages(ann_chat_b)) == 1, timeout_s=10)
    await ann_chat_b.delete_chat(sent["id"])
    await chat_a.wait_for(lambda: messages(chat_a)[0].get("deleted") is True, timeout_s=10)
    assert messages(chat_a)[0]["text"] == ""

    # The state is Redis's: a node that joins the room later has it all.
    late = await clients(b.url, ROOM, "meta", auth=who("zoe"))
    assert queue(late) == ["bob"]
    assert late.doc.get("meta", type=Map).to_py()["notice"] == "Recorded for supervision."
