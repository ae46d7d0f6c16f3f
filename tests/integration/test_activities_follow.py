"""Follow me, bring everyone here and the laser pointer on a live server
(protocol.md §3.1, §6.6): facilitators only, every input checked with a
typed error, audited, kept in meta (the same after a reconnect and a
restart); ``view`` and ``pointer`` in awareness held to their shape, an
observer's pointer dropped."""

from __future__ import annotations

import math

import pytest

from collab.client import CollabClient, CollabClientError
from collab.client_activities import Activities, bring_here_of, follow_of
from crdt.awareness_fields import BOARD_EXTENT, MAX_POINTER_POINTS
from tests.conftest import ADMIN_KEY, SECRET, mint

ROOM = "group-follow"
AREA = {"x": -200.0, "y": 100.0, "w": 1600.0, "h": 900.0}


async def audit(server) -> list:
    await server.registry.flush_audit()
    return await server.registry.store.read_audit(ROOM)


def joiner(server, client_factory):
    async def join(name: str, role: str, doc: str = "board") -> CollabClient:
        token = mint(ROOM, role=role, name=name, sub=name.lower())
        return await client_factory(server.url, ROOM, doc, auth={"token": token})

    return join


@pytest.fixture
async def room(token_server, client_factory):
    join = joiner(token_server, client_factory)
    fac = await join("Fac", "facilitator")
    par = await join("Par", "participant")
    obs = await join("Obs", "observer")
    meta = await join("Obs", "observer", "meta")
    return token_server, fac, par, obs, meta


async def refused(client: CollabClient, event: str, payload: object) -> str:
    with pytest.raises(CollabClientError) as info:
        await client.call(event, payload)
    return info.value.code


def state_of(client: CollabClient, user: str) -> dict | None:
    """The awareness state ``client`` holds for ``user`` (stamped by the server)."""
    for state in client.awareness.values():
        if isinstance(state, dict) and state.get("user", {}).get("id") == user:
            return state
    return None


async def test_only_facilitators_lead_and_refusals_are_audited(room):
    server, fac, par, obs, meta = room
    for who in (par, obs):
        assert await refused(who, "mod:follow", {"on": True}) == "permission_denied"
        assert await refused(who, "mod:bring-here", AREA) == "permission_denied"
    assert follow_of(meta) == {} and bring_here_of(meta) == {}
    records = [r for r in await audit(server) if r.action == "follow"]
    assert sorted((r.user_id, r.detail, r.outcome) for r in records) == [
        ("obs", "mod:bring-here", "permission_denied"),
        ("obs", "mod:follow", "permission_denied"),
        ("par", "mod:bring-here", "permission_denied"),
        ("par", "mod:follow", "permission_denied"),
    ]
    await Activities(fac).follow(True)
    await meta.wait_for(lambda: follow_of(meta).get("on") is True)


async def test_bad_requests_are_refused_with_typed_errors(room):
    _, fac, _, _, meta = room
    for payload in ({}, {"on": "yes"}, {"on": True, "who": "everyone"}, [True]):
        assert await refused(fac, "mod:follow", payload) == "invalid_payload", payload
    for payload in (
        {},
        {**AREA, "w": 0},
        {**AREA, "h": -1},
        {**AREA, "x": BOARD_EXTENT + 1},
        {**AREA, "w": BOARD_EXTENT * 2},
        {**AREA, "x": math.inf},
        {**AREA, "y": "100"},
        {**AREA, "zoom": 2},
        {"x": 0, "y": 0, "w": 10},
        "here",
    ):
        assert await refused(fac, "mod:bring-here", payload) == "invalid_payload", payload
    # At the limits: accepted.
    edge = {"x": -BOARD_EXTENT, "y": BOARD_EXTENT, "w": BOARD_EXTENT, "h": 0.5}
    ack = await Activities(fac).bring_here(**edge)
    assert ack["bringHere"]["seq"] == 1
    await meta.wait_for(lambda: bring_here_of(meta).get("seq") == 1)
    assert bring_here_of(meta)["w"] == BOARD_EXTENT


async def test_follow_and_bring_here_reach_everyone(room):
    server, fac, par, obs, meta = room
    lead = Activities(fac)
    ack = await lead.follow(True)
    assert ack["follow"]["on"] is True and ack["follow"]["by"] == "fac"
    await meta.wait_for(lambda: follow_of(meta).get("on") is True)
    assert follow_of(meta)["by"] == "fac"
    # The leader's view reaches everyone through awareness, stamped.
    view = {"x": 10.0, "y": -20.0, "w": 1280.0, "h": 720.0, "k": 1.5}
    await lead.publish_view(**view)
    for client in (par, obs):
        await client.wait_for(lambda c=client: (state_of(c, "fac") or {}).get("view") == view)
        assert state_of(client, "fac")["user"]["role"] == "facilitator"

    first = (await lead.bring_here(**AREA))["bringHere"]
    second = (await lead.bring_here(**{**AREA, "x": 0.0}))["bringHere"]
    assert (first["seq"], second["seq"]) == (1, 2)
    await meta.wait_for(lambda: bring_here_of(meta).get("seq") == 2)
    here = bring_here_of(meta)
    assert {k: here[k] for k in AREA} == {**AREA, "x": 0.0} and here["by"] == "fac"
    await lead.follow(False)
    await meta.wait_for(lambda: follow_of(meta).get("on") is False)

    details = [r.detail for r in await audit(server) if r.action == "follow"]
    assert details == [
        "follow on=true",
        "bring-here seq=1 w=1600 h=900",
        "bring-here seq=2 w=1600 h=900",
        "follow on=false",
    ]


async def test_views_and_pointers_are_held_to_their_shape(room):
    _, fac, par, obs, _ = room
    pointer = Activities(par)
    at = await pointer.server_now_ms()
    trail = [[float(i), float(-i)] for i in range(MAX_POINTER_POINTS)]
    await pointer.set_fields(cursor={"x": 1, "y": 2}, pointer={"points": trail, "at": at})
    await fac.wait_for(lambda: (state_of(fac, "par") or {}).get("pointer", {}).get("at") == at)
    assert state_of(fac, "par")["pointer"]["points"] == trail

    # Past the limits, or not the shape: the field is dropped, the rest kept.
    await pointer.set_fields(
        cursor={"x": 3, "y": 4},
        pointer={"points": [*trail, [0, 0]], "at": at},
        view={"x": 0, "y": 0, "w": 0, "h": 10, "k": 1},
    )
    await fac.wait_for(lambda: (state_of(fac, "par") or {}).get("cursor") == {"x": 3, "y": 4})
    assert "pointer" not in state_of(fac, "par") and "view" not in state_of(fac, "par")
    await pointer.point(None)
    await fac.wait_for(lambda: "pointer" in (state_of(fac, "par") or {}))
    assert state_of(fac, "par")["pointer"] is None

    # An observer may show where they look, but not point.
    watcher = Activities(obs)
    await watcher.set_fields(
        cursor={"x": 5, "y": 6},
        pointer={"points": [[1, 1]], "at": at},
        view={"x": 0, "y": 0, "w": 100, "h": 100, "k": 2},
    )
    await fac.wait_for(lambda: (state_of(fac, "obs") or {}).get("cursor") == {"x": 5, "y": 6})
    assert "pointer" not in state_of(fac, "obs")
    assert state_of(fac, "obs")["view"]["k"] == 2


async def test_follow_and_bring_here_survive_a_reconnect_and_a_restart(
    server_factory, client_factory, tmp_path
):
    settings = dict(
        dev=False,
        jwt_secret=SECRET,
        admin_key=ADMIN_KEY,
        store="sqlite",
        data_dir=tmp_path / "data",
    )
    first = await server_factory(**settings)
    join = joiner(first, client_factory)
    fac = await join("Fac", "facilitator")
    await Activities(fac).follow(True)
    await Activities(fac).bring_here(**AREA)
    meta = await join("Par", "participant", "meta")
    assert follow_of(meta)["on"] is True and bring_here_of(meta)["seq"] == 1
    await meta.close()
    again = await join("Par", "participant", "meta")  # a reconnect
    assert follow_of(again)["by"] == "fac"
    await again.close()
    await fac.close()
    await first.registry.flush_all()
    await first.stop()

    second = await server_factory(**settings)
    late = await joiner(second, client_factory)("Late", "participant", "meta")
    assert follow_of(late)["on"] is True and follow_of(late)["by"] == "fac"
    assert {k: bring_here_of(late)[k] for k in AREA} == AREA
    fac2 = await joiner(second, client_factory)("Fac", "facilitator")
    assert (await Activities(fac2).bring_here(**AREA))["bringHere"]["seq"] == 2


async def test_no_leading_after_the_session_ended(room):
    _, fac, _, _, _ = room
    await fac.call("mod:end", {})
    assert await refused(fac, "mod:follow", {"on": True}) == "session_ended"
    assert await refused(fac, "mod:bring-here", AREA) == "session_ended"
