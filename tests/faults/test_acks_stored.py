"""An acknowledged change to a room's meta is stored before its ack
(protocol.md §11.1): a facilitator's moderation and activities, a raised
hand, the breakout groups' records. The flush is 30 s away here and the
server is killed (SIGKILL: no stop, no recovery file) right after the acks;
the restarted server still has every change (a real ``collab serve`` on
SQLite, as tests/faults/test_store_outages.py)."""

from __future__ import annotations

from pycrdt import Map

from collab.client import CollabClient
from collab.client_activities import timer_of
from collab.client_breakouts import BreakoutClient, breakouts_of, group_state_of
from crdt.schemas import META_ROOT
from rooms.hands import META_HANDS_ROOT
from rooms.timer import TimerPhase
from tests.faults.test_store_outages import Clients, WriteLock, clients, server, wait_saving

ROOM = "acks-stored"
#: The periodic flush would write nothing before the kill.
LATE_FLUSH = ("--flush-interval-s", "30")


async def member(
    group: Clients, url: str, sub: str, role: str = "participant", room: str = ROOM
) -> CollabClient:
    """``sub`` on ``room``'s meta, with a token for the main room."""
    return await group.member(url, room, sub, role, token_room=ROOM)


def meta_root(client: CollabClient, root: str) -> dict:
    return dict(client.doc.get(root, type=Map).to_py() or {})


async def test_what_was_acknowledged_survives_a_kill(tmp_path):
    async with server(tmp_path, *LATE_FLUSH) as srv, clients() as group:
        fac = await member(group, srv.url, "kim", "facilitator")
        ann = await member(group, srv.url, "ann")
        await fac.call("mod:mute", {"userId": "ann", "muted": True})
        await fac.call("mod:notice", {"text": "back at ten"})
        await fac.call("mod:timer", {"action": "start", "seconds": 300})
        await ann.raise_hand()
        await BreakoutClient(fac).open([["ann"]], duration_s=3600)
        ack = await fac.call("mod:lock", {"locked": True})
        assert ack["state"]["saving"] == "ok"
        await srv.kill()

        await srv.start()
        again = await member(group, srv.url, "kim", "facilitator")
        await again.wait_for(lambda: bool(again.room_state), timeout_s=10)
        assert again.room_state["locked"] is True
        assert again.room_state["muted"] == ["ann"]
        assert meta_root(again, META_ROOT)["notice"] == "back at ten"
        assert timer_of(again).phase is TimerPhase.RUNNING
        assert set(meta_root(again, META_HANDS_ROOT)) == {"ann"}
        assert breakouts_of(again).state == "open"
        group_meta = await member(group, srv.url, "ann", room=f"{ROOM}/breakout-1")
        assert group_state_of(group_meta)["state"] == "open"


async def test_while_the_store_cannot_write_the_ack_says_saving_is_delayed(tmp_path):
    """Moderation goes on in a store outage (§11.2), without waiting for the
    store: its ack carries the room's saving state, which says the change
    is kept, not stored. Written once the store is back (the flush every
    0.1 s retries it)."""
    async with server(tmp_path) as srv, clients() as group:
        fac = await member(group, srv.url, "kim", "facilitator")
        await member(group, srv.url, "ann")
        async with WriteLock(srv.db):
            ack = await fac.call("mod:mute", {"userId": "ann", "muted": True})
            assert ack["state"]["saving"] == "delayed"
            assert ack["state"]["muted"] == ["ann"]
            ack = await fac.call("mod:lock", {"locked": True})  # no second wait
            assert ack["state"]["saving"] == "delayed"
        await wait_saving([fac], "ok")  # the room's changes are all stored
        await srv.kill()
        await srv.start()
        again = await member(group, srv.url, "kim", "facilitator")
        await again.wait_for(lambda: bool(again.room_state), timeout_s=10)
        assert again.room_state["muted"] == ["ann"] and again.room_state["locked"] is True
