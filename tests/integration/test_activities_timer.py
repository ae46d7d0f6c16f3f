"""The shared timer on a live server (protocol.md §6.6): facilitators only,
every input checked with a typed error, audited without its label, kept in
meta (so it is the same after a reconnect and a restart), and the server's
clock for clients (``time:now``, ``room:state.serverTime``)."""

from __future__ import annotations

import logging
import time

import pytest

from collab.client import CollabClient, CollabClientError
from collab.client_activities import Activities, timer_of
from rooms.timer import MAX_TIMER_LABEL_CHARS, MAX_TIMER_S, TimerPhase
from tests.conftest import ADMIN_KEY, SECRET, mint

ROOM = "group-timer"
LABEL = "Breathing-exercise-label-4242"


async def audit(server, room: str = ROOM) -> list:
    await server.registry.flush_audit()
    return await server.registry.store.read_audit(room)


@pytest.fixture
def join(client_factory):
    def make(server):
        async def joiner(name: str, role: str, doc: str = "board", **kw) -> CollabClient:
            token = mint(ROOM, role=role, name=name, sub=name.lower())
            return await client_factory(server.url, ROOM, doc, auth={"token": token}, **kw)

        return joiner

    return make


@pytest.fixture
async def room(token_server, join):
    """A facilitator, a participant and an observer, and a participant's meta."""
    joiner = join(token_server)
    fac = await joiner("Fac", "facilitator")
    par = await joiner("Par", "participant")
    obs = await joiner("Obs", "observer")
    meta = await joiner("Par", "participant", "meta")
    return token_server, fac, par, obs, meta


async def refused(client: CollabClient, event: str, payload: object) -> str:
    with pytest.raises(CollabClientError) as info:
        await client.call(event, payload)
    return info.value.code


async def test_only_facilitators_run_the_timer_and_refusals_are_audited(room):
    server, fac, par, obs, meta = room
    for who in (par, obs):
        code = await refused(who, "mod:timer", {"action": "start", "seconds": 60})
        assert code == "permission_denied"
    assert timer_of(meta).phase is TimerPhase.STOPPED
    records = [r for r in await audit(server) if r.action == "timer"]
    assert sorted((r.user_id, r.outcome) for r in records) == [
        ("obs", "permission_denied"),
        ("par", "permission_denied"),
    ]
    await Activities(fac).start_timer(60)
    await meta.wait_for(lambda: timer_of(meta).phase is TimerPhase.RUNNING)


async def test_bad_timer_requests_are_refused_with_typed_errors(room):
    server, fac, _, _, meta = room
    for payload, code in [
        ({"action": "start"}, "invalid_payload"),
        ({"action": "start", "seconds": 0}, "invalid_payload"),
        ({"action": "start", "seconds": MAX_TIMER_S + 1}, "invalid_payload"),
        ({"action": "start", "seconds": "60"}, "invalid_payload"),
        (
            {"action": "start", "seconds": 60, "label": "x" * (MAX_TIMER_LABEL_CHARS + 1)},
            "invalid_payload",
        ),
        ({"action": "start", "seconds": 60, "label": "bell\x07"}, "invalid_payload"),
        ({"action": "start", "seconds": 60, "sound": "gong"}, "invalid_payload"),
        ({"action": "pause", "seconds": 60}, "invalid_payload"),
        ({"action": "explode"}, "invalid_payload"),
        ("start", "invalid_payload"),
        ({"action": "pause"}, "timer_state"),
        ({"action": "resume"}, "timer_state"),
        ({"action": "extend", "seconds": 60}, "timer_state"),
    ]:
        assert await refused(fac, "mod:timer", payload) == code, payload
    # At the limits: accepted.
    ack = await Activities(fac).start_timer(
        MAX_TIMER_S, label="x" * MAX_TIMER_LABEL_CHARS, chime=True
    )
    assert ack["timer"]["state"] == "running" and ack["timer"]["chime"] is True
    assert await refused(fac, "mod:timer", {"action": "extend", "seconds": 60}) == (
        "invalid_payload"
    )
    assert await refused(fac, "mod:timer", {"action": "resume"}) == "timer_state"
    await meta.wait_for(lambda: timer_of(meta).duration_ms == MAX_TIMER_S * 1000)
    outcomes = {r.outcome for r in await audit(server) if r.action == "timer"}
    assert outcomes == {"ok", "invalid_payload", "timer_state"}


async def test_a_timer_runs_pauses_extends_and_stops_for_everyone(room, caplog):
    caplog.set_level(logging.INFO)
    server, fac, par, _, meta = room
    activities = Activities(fac)
    before = int(time.time() * 1000)
    ack = await activities.start_timer(180, label=LABEL, chime=True)
    after = int(time.time() * 1000)
    assert before + 180_000 <= ack["timer"]["endsAt"] <= after + 180_000
    assert ack["state"]["locked"] is False  # the room's state, as moderation acks
    await meta.wait_for(lambda: timer_of(meta).phase is TimerPhase.RUNNING)
    timer = timer_of(meta)
    assert (timer.label, timer.chime, timer.by, timer.duration_ms) == (LABEL, True, "fac", 180_000)
    # Everyone in the room gets room:state (with the server's time) after it.
    await par.wait_for(lambda: par.room_state.get("serverTime", 0) >= before)

    paused = (await activities.pause_timer())["timer"]
    assert paused["state"] == "paused" and paused["endsAt"] is None
    assert 170_000 < paused["remainingMs"] <= 180_000
    await meta.wait_for(lambda: timer_of(meta).phase is TimerPhase.PAUSED)
    left = timer_of(meta).remaining_ms
    assert timer_of(meta).remaining_at(int(time.time() * 1000) + 3_600_000) == left
    extended = (await activities.extend_timer(60))["timer"]
    assert extended["remainingMs"] == paused["remainingMs"] + 60_000
    resumed = (await activities.resume_timer())["timer"]
    assert resumed["state"] == "running"
    await meta.wait_for(lambda: timer_of(meta).phase is TimerPhase.RUNNING)
    now = await Activities(par).server_now_ms()
    assert abs(timer_of(meta).remaining_at(now) - extended["remainingMs"]) < 5_000
    await activities.stop_timer()
    await meta.wait_for(lambda: timer_of(meta).phase is TimerPhase.STOPPED)
    # A second stop is no error and writes nothing.
    assert (await activities.stop_timer())["timer"]["seq"] == timer_of(meta).seq

    records = [r for r in await audit(server) if r.action == "timer"]
    assert [r.detail.split()[0] for r in records] == [
        "start",
        "pause",
        "extend",
        "resume",
        "stop",
        "stop",
    ]
    assert records[0].detail == (
        f"start state=running seconds=180 label_chars={len(LABEL)} chime=true"
    )
    assert all(r.user_id == "fac" and r.outcome == "ok" for r in records)
    # The label is content: in meta, never in the audit log or the server log.
    assert not any(LABEL in r.detail for r in records)
    assert LABEL not in caplog.text
    assert "mod:timer room=group-timer" in caplog.text


async def test_the_server_clock(room):
    _, _, par, obs, _ = room
    for client in (par, obs):
        sent = time.time() * 1000
        ack = await client.call("time:now", {})
        assert sent - 1 <= ack["now"] <= time.time() * 1000 + 1
    assert isinstance(par.room_state["serverTime"], int)
    for payload in ([], {"at": 1}, "now"):
        assert await refused(par, "time:now", payload) == "invalid_payload"
    offset = await Activities(obs).measure_offset()
    assert abs(offset) < 1000  # one machine: the same clock


async def test_the_timer_survives_a_reconnect_and_a_restart(server_factory, join, tmp_path):
    data = tmp_path / "data"
    settings = dict(
        dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, store="sqlite", data_dir=data
    )
    first = await server_factory(**settings)
    fac = await join(first)("Fac", "facilitator")
    meta = await join(first)("Par", "participant", "meta")
    activities = Activities(fac)
    await activities.start_timer(600, label=LABEL, chime=True)
    paused = (await activities.pause_timer())["timer"]
    await meta.wait_for(lambda: timer_of(meta).phase is TimerPhase.PAUSED)
    # A reconnect (the same user, a new connection): the same timer.
    await meta.close()
    again = await join(first)("Par", "participant", "meta")
    assert timer_of(again).remaining_ms == paused["remainingMs"]
    await fac.close()
    await again.close()
    await first.registry.flush_all()
    await first.stop()

    second = await server_factory(**settings)
    late = await join(second)("Late", "participant", "meta")
    timer = timer_of(late)
    assert (timer.phase, timer.remaining_ms, timer.label) == (
        TimerPhase.PAUSED,
        paused["remainingMs"],
        LABEL,
    )
    fac2 = await join(second)("Fac", "facilitator")
    resumed = (await Activities(fac2).resume_timer())["timer"]
    await late.wait_for(lambda: timer_of(late).phase is TimerPhase.RUNNING)
    assert timer_of(late).ends_at_ms == resumed["endsAt"]


async def test_no_timer_after_the_session_ended(room):
    _, fac, _, _, _ = room
    await fac.call("mod:end", {})
    code = await refused(fac, "mod:timer", {"action": "start", "seconds": 60})
    assert code == "session_ended"
