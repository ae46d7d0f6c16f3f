"""Breakout groups with two nodes on Redis (protocol.md §6.7): groups opened
on node A admit their members on node B (the main room's meta, loaded there
from the store), and only to their own group; a broadcast and the close
sent to A reach B's group connections (each group room's meta replicates),
and the close ends them there; the timer set on A closes B's groups too."""

from __future__ import annotations

import asyncio

import pytest

from collab.client import ClientState, CollabClientError
from collab.client_breakouts import BreakoutClient, breakouts_of, group_state_of
from rooms.names import META
from tests.conftest import mint
from tests.waiting import until

pytestmark = pytest.mark.slow

ROOM = "clinic-5/breakouts"


def who(sub: str, role: str = "participant") -> dict[str, str]:
    return {"token": mint(ROOM, role=role, name=sub.title(), sub=sub)}


async def refused(make, *args, **kw) -> str:
    with pytest.raises(CollabClientError) as info:
        await make(*args, **kw)
    return info.value.code


async def test_breakouts_across_nodes(redis_server, in_process_nodes, clients):
    a, b = await in_process_nodes("A", "B")
    fac_a = await clients(a.url, ROOM, auth=who("kim", "facilitator"))
    ann_b = await clients(b.url, ROOM, auth=who("ann"))
    bob_b = await clients(b.url, ROOM, "meta", auth=who("bob"))
    await ann_b.set_awareness({"cursor": [1, 2]})
    await bob_b.set_awareness({"cursor": [3, 4]})
    breakouts = BreakoutClient(fac_a)

    def seen_on_a() -> set[str]:
        room = a.registry.rooms[ROOM]
        return {
            user
            for doc in room.docs.values()
            for entry in doc.awareness.snapshot()
            for user in ("ann", "bob")
            if f'"id":"{user}"' in (entry.state or "")
        }

    await until(lambda: seen_on_a() == {"ann", "bob"}, what="B's awareness on A")
    # Random groups on A are made of the participants connected to B.
    ack = await breakouts.open(random=True, count=2, duration_s=3600)
    groups = {m: grp["name"] for grp in ack["breakouts"]["groups"] for m in grp["members"]}
    assert set(groups) == {"ann", "bob"} and len(set(groups.values())) == 2
    await bob_b.wait_for(lambda: breakouts_of(bob_b).state == "open", timeout_s=10)

    mine = await clients(b.url, f"{ROOM}/{groups['ann']}", "meta", auth=who("ann"))
    board = await clients(b.url, f"{ROOM}/{groups['ann']}", auth=who("ann"))
    code = await refused(clients, b.url, f"{ROOM}/{groups['bob']}", auth=who("ann"))
    assert code == "not_in_group"
    await clients(a.url, f"{ROOM}/{groups['bob']}", auth=who("kim", "facilitator"))

    await breakouts.broadcast("two minutes left")
    await mine.wait_for(
        lambda: group_state_of(mine).get("text") == "two minutes left", timeout_s=10
    )

    await breakouts.close()
    for client in (mine, board):
        await until(lambda c=client: c.state is ClientState.STOPPED, what="closed on B")
        assert client.stop_reason.code == "breakout_closed"
    code = await refused(clients, b.url, f"{ROOM}/{groups['ann']}", auth=who("ann"))
    assert code == "breakout_closed"


async def test_a_timer_set_on_one_node_closes_the_groups_on_the_other(
    redis_server, in_process_nodes, clients
):
    a, b = await in_process_nodes("A", "B")
    fac_a = await clients(a.url, ROOM, auth=who("kim", "facilitator"))
    await BreakoutClient(fac_a).open([["ann"]], duration_s=2)
    # At once: the ack means A's writes are in Redis (B reads them as it loads).
    mine = await clients(b.url, f"{ROOM}/breakout-1", auth=who("ann"))
    await until(
        lambda: mine.state is ClientState.STOPPED, timeout_s=15, what="the timer closed B's group"
    )
    assert mine.stop_reason.code == "breakout_closed"
    meta_b = await clients(b.url, ROOM, "meta", auth=who("ann"))
    await meta_b.wait_for(lambda: breakouts_of(meta_b).state == "closed", timeout_s=10)


async def test_a_group_change_published_while_the_other_node_loads_the_group(
    redis_server, in_process_nodes, clients
):
    """A write to a group's meta that node B hears while it loads that meta
    (subscribed, the store read before the write) is applied once the load ends, and
    the join goes on: it is not handed on as a policy change before the
    group's meta is in its room (that raised KeyError and refused the join
    with internal_error)."""
    a, b = await in_process_nodes("A", "B")
    fac_a = await clients(a.url, ROOM, auth=who("kim", "facilitator"))
    ann_b = await clients(b.url, ROOM, "meta", auth=who("ann"))
    breakouts = BreakoutClient(fac_a)
    await breakouts.open([["ann"]], duration_s=3600)
    # As the app does: ann joins her group once her room says it is open.
    await ann_b.wait_for(lambda: breakouts_of(ann_b).state == "open", timeout_s=10)
    group = f"{ROOM}/breakout-1"
    store, replication = b.registry.store, b.registry.replication
    reading, release = asyncio.Event(), asyncio.Event()
    load = store.load

    async def read_before_the_write(room, doc):
        stored = await load(room, doc)
        if room == group and doc == META:
            reading.set()
            await release.wait()
        return stored

    store.load = read_before_the_write
    joining = asyncio.create_task(clients(b.url, group, "meta", auth=who("ann")))
    await until(lambda: reading.is_set() or joining.done(), what="B reads the group's meta")
    assert not joining.done(), joining.result()
    await breakouts.broadcast("five minutes left")
    held = replication._waiting[(group, META)].envelopes
    await until(
        lambda: any(b"five minutes left" in envelope.payload for envelope in held),
        what="B holds A's write while it loads",
    )
    release.set()
    mine = await asyncio.wait_for(joining, timeout=10)
    assert group_state_of(mine)["text"] == "five minutes left"
    assert group_state_of(mine)["state"] == "open"
