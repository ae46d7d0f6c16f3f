"""Reactions (protocol.md §6.6): the server checks the kind and the role,
stamps the sender and its clock, and sends ``reaction`` to every connection
of the room (the sender's too, on every document) and of no other room;
nothing is stored; a rate of their own, on by default."""

from __future__ import annotations

from typing import Any

import pytest

from collab.client import CollabClient, CollabClientError
from tests.conftest import SECRET, mint
from tests.waiting import until

ROOM = "clinic-7/reactions"


def token(sub: str, role: str = "participant", room: str = ROOM) -> dict[str, str]:
    return {"token": mint(room, role=role, name=sub.title(), sub=sub)}


async def refused(client: CollabClient, payload: Any) -> str:
    with pytest.raises(CollabClientError) as info:
        await client.call("reaction:send", payload)
    return info.value.code


def states(server: Any) -> dict[str, bytes]:
    room = server.registry.rooms[ROOM]
    return {name: bytes(doc.engine.full_state()) for name, doc in room.docs.items()}


async def test_a_reaction_reaches_everyone_in_the_room_and_nothing_is_stored(
    token_server, client_factory
):
    url = token_server.url
    ann = await client_factory(url, ROOM, auth=token("ann"))
    fac_board = await client_factory(url, ROOM, auth=token("kim", "facilitator"))
    fac_meta = await client_factory(url, ROOM, "meta", auth=token("kim", "facilitator"))
    obs_chat = await client_factory(url, ROOM, "chat", auth=token("eve", "observer"))
    elsewhere = await client_factory(
        url, "clinic-7/other", auth=token("zed", room="clinic-7/other")
    )
    received = {c: c.listen("reaction") for c in (ann, fac_board, fac_meta, obs_chat, elsewhere)}
    before = states(token_server)

    ack = await ann.send_reaction("clap")
    assert ack["ok"] is True and isinstance(ack["ts"], float)
    for client, got in received.items():
        if client is not elsewhere:
            await client.wait_for(lambda got=got: len(got) == 1)
            assert got == [{"userId": "ann", "kind": "clap", "ts": ack["ts"]}]
    # Every kind of the set; the facilitator may react too.
    for kind in ("thumbs-up", "heart", "relate", "slow-down"):
        await fac_board.send_reaction(kind)
    await obs_chat.wait_for(lambda: len(received[obs_chat]) == 5)
    assert [(r["userId"], r["kind"]) for r in received[obs_chat][1:]] == [
        ("kim", "thumbs-up"),
        ("kim", "heart"),
        ("kim", "relate"),
        ("kim", "slow-down"),
    ]
    # Another room hears nothing (a round trip there first: anything sent has arrived).
    await elsewhere.send_reaction("heart")
    await elsewhere.wait_for(lambda: len(received[elsewhere]) == 1)
    assert received[elsewhere][0]["userId"] == "zed"
    # Nothing was written to any document of the room.
    assert states(token_server) == before
    room = token_server.registry.rooms[ROOM]
    assert all(not doc.pending for doc in room.docs.values())


async def test_kinds_roles_and_fields_are_checked(token_server, client_factory):
    url = token_server.url
    ann = await client_factory(url, ROOM, auth=token("ann"))
    obs = await client_factory(url, ROOM, auth=token("eve", "observer"))
    fac = await client_factory(url, ROOM, "meta", auth=token("kim", "facilitator"))
    got = fac.listen("reaction")
    assert await refused(obs, {"kind": "clap"}) == "permission_denied"
    for payload in (
        {"kind": "wave"},
        {"kind": "CLAP"},
        {"kind": 3},
        {},
        {"kind": "clap", "userId": "kim"},
        {"kind": "clap", "ts": 1},
        "clap",
        None,
    ):
        assert await refused(ann, payload) == "invalid_payload", payload
    # A participant made an observer may no longer react.
    await fac.call("mod:role", {"userId": "ann", "role": "observer"})
    await ann.wait_for(lambda: ann.room_state.get("roles", {}).get("ann") == "observer")
    assert await refused(ann, {"kind": "clap"}) == "permission_denied"
    await fac.call("mod:role", {"userId": "ann", "role": None})
    await ann.wait_for(lambda: "ann" not in ann.room_state.get("roles", {}))
    await ann.send_reaction("clap")
    # After the end nobody reacts (a new connection: every refusal above
    # took from this one's reaction allowance too).
    again = await client_factory(url, ROOM, auth=token("ann"))
    await fac.call("mod:end", {})
    await again.wait_for(lambda: again.room_state.get("ended") is True)
    assert await refused(again, {"kind": "heart"}) == "session_ended"
    await fac.wait_for(lambda: len(got) == 1)
    assert [r["kind"] for r in got] == ["clap"]


async def test_reactions_have_a_rate_of_their_own(server_factory, client_factory):
    srv = await server_factory(
        dev=False, jwt_secret=SECRET, reaction_burst=3, reaction_rate_per_s=0.01
    )
    ann = await client_factory(srv.url, ROOM, auth=token("ann"))
    codes = []
    for _ in range(5):
        try:
            await ann.send_reaction("heart")
            codes.append("ok")
        except CollabClientError as exc:
            codes.append(exc.code)
    assert codes == ["ok", "ok", "ok", "rate_limited", "rate_limited"]
    # Told once per run of refusals (protocol.md §8.2), and other events go on.
    await until(lambda: any(e["code"] == "rate_limited" for e in ann.errors), what="told")
    assert sum(e["code"] == "rate_limited" for e in ann.errors) == 1
    assert (await ann.raise_hand())["raised"] is True


async def test_the_default_rate_admits_a_burst_of_ten(server, client_factory):
    ann = await client_factory(server.url, ROOM)
    for _ in range(10):
        await ann.send_reaction("clap")
    with pytest.raises(CollabClientError) as info:
        await ann.send_reaction("clap")
    assert info.value.code == "rate_limited"
