"""Session activities across two nodes on Redis (protocol.md §6.6): a timer
started and a bring-here asked on one node reach members and late joiners
on the other through meta's replication; the leader's view and a pointer
cross in awareness; both nodes' clocks answer ``time:now``."""

from __future__ import annotations

import pytest

from collab.client import CollabClient
from collab.client_activities import Activities, bring_here_of, follow_of, timer_of
from rooms.timer import TimerPhase
from tests.conftest import mint

pytestmark = pytest.mark.slow

ROOM = "clinic-5/activities"
AREA = {"x": 40.0, "y": -60.0, "w": 800.0, "h": 450.0}


def state_of(client: CollabClient, user: str) -> dict:
    for state in client.awareness.values():
        if isinstance(state, dict) and state.get("user", {}).get("id") == user:
            return state
    return {}


async def test_activities_cross_nodes(in_process_nodes, clients):
    a, b = await in_process_nodes("A", "B")
    fac_a = await clients(a.url, ROOM, auth={"token": mint(ROOM, role="facilitator", sub="fa")})
    par_b = await clients(b.url, ROOM, auth={"token": mint(ROOM, sub="pb")})
    meta_b = await clients(b.url, ROOM, "meta", auth={"token": mint(ROOM, sub="pb")})
    lead = Activities(fac_a)

    # The timer, set by node A's clock, is read on node B.
    started = (await lead.start_timer(300, label="Role-play", chime=True))["timer"]
    await meta_b.wait_for(lambda: timer_of(meta_b).phase is TimerPhase.RUNNING, timeout_s=10)
    assert timer_of(meta_b).ends_at_ms == started["endsAt"]
    paused = (await lead.pause_timer())["timer"]
    await meta_b.wait_for(lambda: timer_of(meta_b).phase is TimerPhase.PAUSED, timeout_s=10)
    assert timer_of(meta_b).remaining_ms == paused["remainingMs"]
    # Node B's members get room:state with B's clock after A's change.
    await par_b.wait_for(lambda: par_b.room_state.get("serverTime", 0) >= paused["at"])
    clock_b = await Activities(par_b).measure_offset()
    assert abs(clock_b) < 1000

    # Follow me and bring here, asked on A, reach B's members.
    await lead.follow(True)
    await meta_b.wait_for(lambda: follow_of(meta_b).get("on") is True, timeout_s=10)
    view = {"x": 1.0, "y": 2.0, "w": 1024.0, "h": 576.0, "k": 0.75}
    await lead.publish_view(**view)
    await par_b.wait_for(lambda: state_of(par_b, "fa").get("view") == view, timeout_s=10)
    await lead.bring_here(**AREA)
    await meta_b.wait_for(lambda: bring_here_of(meta_b).get("seq") == 1, timeout_s=10)
    assert {k: bring_here_of(meta_b)[k] for k in AREA} == AREA

    # A participant's pointer on B is drawn on A.
    pointer = Activities(par_b)
    await pointer.point([(1.0, 1.0), (5.0, 8.0)])
    await fac_a.wait_for(
        lambda: state_of(fac_a, "pb").get("pointer", {}).get("points") == [[1, 1], [5, 8]],
        timeout_s=10,
    )

    # A late joiner on B finds all of it.
    late = await clients(b.url, ROOM, "meta", auth={"token": mint(ROOM, sub="late")})
    assert timer_of(late).phase is TimerPhase.PAUSED
    assert follow_of(late)["by"] == "fa" and bring_here_of(late)["seq"] == 1
    # And a facilitator on B carries on the timer A paused.
    fac_b = await clients(b.url, ROOM, auth={"token": mint(ROOM, role="facilitator", sub="fb")})
    resumed = (await Activities(fac_b).resume_timer())["timer"]
    assert resumed["by"] == "fb" and resumed["seq"] == paused["seq"] + 1
    meta_a = await clients(a.url, ROOM, "meta", auth={"token": mint(ROOM, sub="ma")})
    await meta_a.wait_for(lambda: timer_of(meta_a).phase is TimerPhase.RUNNING, timeout_s=10)
