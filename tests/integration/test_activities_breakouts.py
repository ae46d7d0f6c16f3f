"""Breakout groups on a live server (protocol.md §6.7): facilitators only,
typed errors for bad input, the main room's tokens admit each participant
to their own group only, broadcast and close reach every group, the timer
closes them, the state survives a restart, and a closed group's board is
shown in the main room."""

from __future__ import annotations

import time

import pytest
from pycrdt import Map

from collab.client import ClientState, CollabClient, CollabClientError
from collab.client_breakouts import (
    BreakoutClient,
    breakouts_of,
    group_room_id,
    group_state_of,
    join_group,
)
from rooms.breakouts import MAX_BREAKOUT_S, MAX_BROADCAST_CHARS, MAX_GROUPS
from tests.boards import shapes
from tests.conftest import ADMIN_KEY, SECRET, mint
from tests.waiting import until

ROOM = "clinic-9"
SECRET_WORDS = "Secret-broadcast-words-4242"


async def audit(server, room: str = ROOM) -> list:
    await server.registry.flush_audit()
    return await server.registry.store.read_audit(room)


@pytest.fixture
def join(client_factory):
    def make(server):
        async def joiner(
            user: str, role: str, room: str = ROOM, doc: str = "board", token_room: str = ROOM
        ) -> CollabClient:
            token = mint(token_room, role=role, name=user.title(), sub=user)
            return await client_factory(server.url, room, doc, auth={"token": token})

        return joiner

    return make


async def refused_join(joiner, user: str, role: str, room: str, **kw) -> str:
    with pytest.raises(CollabClientError) as info:
        await joiner(user, role, room, **kw)
    return info.value.code


async def refused(client: CollabClient, payload: object) -> str:
    with pytest.raises(CollabClientError) as info:
        await client.call("mod:breakout", payload)
    return info.value.code


def g(n: int) -> str:
    return group_room_id(ROOM, f"breakout-{n}")


@pytest.fixture
async def room(token_server, join):
    joiner = join(token_server)
    fac = await joiner("fac", "facilitator")
    ann = await joiner("ann", "participant")
    bob = await joiner("bob", "participant")
    obs = await joiner("obs", "observer")
    meta = await joiner("ann", "participant", doc="meta")
    return token_server, joiner, fac, ann, bob, obs, meta


async def test_only_facilitators_open_breakouts_and_refusals_are_audited(room):
    server, _, fac, ann, _, obs, meta = room
    for who in (ann, obs):
        assert await refused(who, {"action": "open", "groups": [["ann"]]}) == "permission_denied"
    records = [r for r in await audit(server) if r.action == "breakout"]
    assert sorted((r.user_id, r.outcome) for r in records) == [
        ("ann", "permission_denied"),
        ("obs", "permission_denied"),
    ]
    ack = await BreakoutClient(fac).open([["ann"], ["bob"]])
    assert [grp["members"] for grp in ack["breakouts"]["groups"]] == [["ann"], ["bob"]]
    await meta.wait_for(lambda: breakouts_of(meta).is_open(0))
    records = [r for r in await audit(server) if r.action == "breakout" and r.outcome == "ok"]
    assert records[0].detail == "open seq=1 groups=2 sizes=1,1 duration_s=0"


async def test_bad_breakout_requests_are_refused_with_typed_errors(room):
    _, joiner, fac, _, _, _, _ = room
    too_many = [[f"u{i}"] for i in range(MAX_GROUPS + 1)]
    for payload, code in [
        ("open", "invalid_payload"),
        ({"action": "split"}, "invalid_payload"),
        ({"action": "open"}, "invalid_payload"),
        ({"action": "open", "groups": []}, "invalid_payload"),
        ({"action": "open", "groups": too_many}, "invalid_payload"),
        ({"action": "open", "groups": [["ann"], ["ann"]]}, "invalid_payload"),
        ({"action": "open", "groups": [["not a user id!"]]}, "invalid_payload"),
        ({"action": "open", "groups": [["ann"]], "durationS": 0}, "invalid_payload"),
        (
            {"action": "open", "groups": [["ann"]], "durationS": MAX_BREAKOUT_S + 1},
            "invalid_payload",
        ),
        ({"action": "open", "random": True}, "invalid_payload"),
        ({"action": "open", "random": True, "count": 2, "size": 2}, "invalid_payload"),
        ({"action": "open", "random": True, "count": MAX_GROUPS + 1}, "invalid_payload"),
        ({"action": "open", "groups": [["ann"]], "colour": "red"}, "invalid_payload"),
        ({"action": "close"}, "breakout_state"),
        ({"action": "broadcast", "text": "hi"}, "breakout_state"),
        ({"action": "show", "group": "breakout-1"}, "not_found"),
    ]:
        assert await refused(fac, payload) == code, payload
    fac = await joiner("fac", "facilitator")  # a connection with its event quota whole
    breakouts = BreakoutClient(fac)
    await breakouts.open([["ann"]])
    assert await refused(fac, {"action": "open", "groups": [["bob"]]}) == "breakout_state"
    for payload in (
        {"action": "broadcast", "text": "x" * (MAX_BROADCAST_CHARS + 1)},
        {"action": "broadcast", "text": "bell\x07"},
        {"action": "broadcast", "text": "  "},
        {"action": "broadcast", "text": 5},
    ):
        assert await refused(fac, payload) == "invalid_payload", payload
    assert await refused(fac, {"action": "show", "group": "breakout-1"}) == "breakout_state"
    await breakouts.broadcast("x" * MAX_BROADCAST_CHARS)  # at the limit: accepted


async def test_the_main_rooms_token_admits_a_participant_to_their_group_only(room):
    _, joiner, fac, _, _, _, _ = room
    # None open: no group room admits anyone, nor a token for the group room itself.
    assert await refused_join(joiner, "ann", "participant", g(1)) == "breakout_closed"
    assert await refused_join(joiner, "fac", "facilitator", g(1)) == "breakout_closed"
    code = await refused_join(joiner, "ann", "participant", g(1), token_room=g(1))
    assert code == "wrong_room"

    await BreakoutClient(fac).open([["ann", "obs"], ["bob"]])
    mine = await joiner("ann", "participant", g(1))
    assert mine.state is ClientState.CONNECTED
    assert await refused_join(joiner, "ann", "participant", g(2)) == "not_in_group"
    assert await refused_join(joiner, "ann", "participant", g(3)) == "not_in_group"
    assert await refused_join(joiner, "eve", "participant", g(1)) == "not_in_group"
    # An observer assigned by hand may watch their group; the facilitator visits any.
    await joiner("obs", "observer", g(1))
    await joiner("fac", "facilitator", g(2))
    # A group room's chat and meta are the group's own, under the same rule.
    chat = await joiner("bob", "participant", g(2), doc="chat")
    await chat.send_chat("hello group two")
    assert await refused_join(joiner, "bob", "participant", g(1), doc="chat") == "not_in_group"


async def test_random_groups_are_made_of_the_participants_in_the_room(room):
    _, joiner, fac, _, _, _, meta = room
    await joiner("cid", "participant")
    ack = await BreakoutClient(fac).open(random=True, size=2)
    groups = [grp["members"] for grp in ack["breakouts"]["groups"]]
    assert len(groups) == 2 and sorted(m for grp in groups for m in grp) == ["ann", "bob", "cid"]
    await meta.wait_for(lambda: breakouts_of(meta).group_of("ann") is not None)
    mine = await join_group(meta, "ann")
    assert mine is not None
    try:
        assert mine.room == group_room_id(ROOM, breakouts_of(meta).group_of("ann").name)
        assert mine.state is ClientState.CONNECTED
    finally:
        await mine.close()
    assert await join_group(meta, "eve") is None


async def test_broadcast_reaches_every_group_and_close_brings_everyone_back(room, caplog):
    server, joiner, fac, _, _, _, meta = room
    breakouts = BreakoutClient(fac)
    await breakouts.open([["ann"], ["bob"]], duration_s=600)
    ann_meta = await joiner("ann", "participant", g(1), doc="meta")
    ann_board = await joiner("ann", "participant", g(1))
    bob_meta = await joiner("bob", "participant", g(2), doc="meta")
    ends_at = breakouts_of(meta).ends_at
    assert group_state_of(ann_meta)["endsAt"] == ends_at and ends_at is not None
    ack = await breakouts.broadcast(SECRET_WORDS)
    assert ack["groups"] == 2
    for client in (ann_meta, bob_meta):
        await client.wait_for(lambda c=client: group_state_of(c).get("text") == SECRET_WORDS)

    await breakouts.close()
    for client in (ann_meta, ann_board, bob_meta):
        await until(lambda c=client: c.state is ClientState.STOPPED, what="closed")
        assert client.stop_reason is not None and client.stop_reason.code == "breakout_closed"
    assert group_state_of(ann_meta)["state"] == "closed"
    await meta.wait_for(lambda: breakouts_of(meta).state == "closed")
    assert await refused_join(joiner, "ann", "participant", g(1)) == "breakout_closed"
    details = [r.detail for r in await audit(server) if r.action == "breakout"]
    assert details == [
        "open seq=1 groups=2 sizes=1,1 duration_s=600",
        f"broadcast groups=2 chars={len(SECRET_WORDS)}",
        "close seq=1",
    ]
    assert SECRET_WORDS not in caplog.text


async def test_the_timer_closes_the_groups(room):
    _, joiner, fac, _, _, _, meta = room
    await BreakoutClient(fac).open([["ann"]], duration_s=1)
    mine = await joiner("ann", "participant", g(1))
    await until(lambda: mine.state is ClientState.STOPPED, what="the timer closed the group")
    assert mine.stop_reason.code == "breakout_closed"
    await meta.wait_for(lambda: breakouts_of(meta).state == "closed")
    # A second set may open after it.
    await BreakoutClient(fac).open([["ann"]])
    await joiner("ann", "participant", g(1))


async def test_a_closed_groups_board_is_shown_in_the_main_room(room):
    server, joiner, fac, ann, _, _, _ = room
    ann.doc.get("shapes", type=Map)["main"] = {
        "type": "rect",
        "x": 0,
        "y": 0,
        "w": 50,
        "h": 50,
        "z": 7,
    }
    await until(
        lambda: "main" in server.registry.rooms[ROOM].docs["board"].engine.read_map("shapes"),
        what="the main board's shape reached the server",
    )
    breakouts = BreakoutClient(fac)
    await breakouts.open([["ann"], ["bob"]])
    mine = await joiner("ann", "participant", g(1))
    board = mine.doc.get("shapes", type=Map)
    board["s1"] = {"type": "rect", "x": 10, "y": 2, "w": 5, "h": 5, "z": 1}
    board["p1"] = {"type": "pen", "points": [[10, 0], [30, 4]], "z": 2}
    await until(
        lambda: len(server.registry.rooms[g(1)].docs["board"].engine.read_map("shapes")) == 2,
        what="the shapes reached the server",
    )
    assert await refused(fac, {"action": "show", "group": "breakout-1"}) == "breakout_state"
    await breakouts.close()
    ack = await breakouts.show("breakout-1")
    assert (ack["shapes"], ack["imagesLeftOut"]) == (2, 0)
    await ann.wait_for(lambda: "breakout-1.s1" in shapes(ann))
    shown = shapes(ann)
    # Beside the main board's content (right edge 50, a gap of 100), above it.
    assert shown["breakout-1.s1"]["x"] == 150 and shown["breakout-1.p1"]["points"][0] == [150, 0]
    assert shown["breakout-1.s1"]["z"] == 8 and shown["breakout-1.p1"]["z"] == 9
    # Shown again: the copy is replaced, not doubled.
    await breakouts.show("breakout-1")
    await ann.wait_for(lambda: len(shapes(ann)) == 3)
    assert shapes(ann)["breakout-1.s1"]["x"] == 150
    assert await refused(fac, {"action": "show", "group": "breakout-7"}) == "not_found"
    details = [r.detail for r in await audit(server) if r.action == "breakout"]
    assert "show breakout-1 shapes=2 images_left_out=0" in details


async def test_breakouts_survive_a_restart(server_factory, join, tmp_path):
    settings = dict(
        dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, store="sqlite", data_dir=tmp_path
    )
    first = await server_factory(**settings)
    fac = await join(first)("fac", "facilitator")
    await BreakoutClient(fac).open([["ann"], ["bob"]], duration_s=3600)
    mine = await join(first)("ann", "participant", g(1))
    await BreakoutClient(fac).broadcast("five minutes left")
    await fac.close()
    await mine.close()
    await first.registry.flush_all()
    await first.stop()

    second = await server_factory(**settings)
    joiner = join(second)
    meta = await joiner("ann", "participant", doc="meta")
    assert breakouts_of(meta).group_of("ann").name == "breakout-1"
    group_meta = await joiner("ann", "participant", g(1), doc="meta")
    assert group_state_of(group_meta)["text"] == "five minutes left"
    assert await refused_join(joiner, "ann", "participant", g(2)) == "not_in_group"
    fac2 = await joiner("fac", "facilitator")
    await BreakoutClient(fac2).close()
    await until(lambda: group_meta.state is ClientState.STOPPED, what="closed after a restart")


async def test_a_group_rooms_images_take_the_main_rooms_token(room):
    server, _, fac, _, _, _, _ = room
    from urllib.parse import quote

    import aiohttp

    from tests.integration.test_images import photo

    token = mint(ROOM, sub="ann", name="Ann")

    async def upload(group: int) -> tuple[int, str]:
        url = f"{server.url}/api/rooms/{quote(g(group), safe='')}/images"
        headers = {"Content-Type": "image/jpeg", "Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, data=photo(), headers=headers) as r,
        ):
            body = await r.json()
            return r.status, body.get("id") or body["error"]["code"]

    assert await upload(1) == (403, "breakout_closed")
    await BreakoutClient(fac).open([["ann"], ["bob"]])
    status, _ = await upload(1)
    assert status == 201
    assert await upload(2) == (403, "not_in_group")


async def test_the_main_rooms_removal_and_role_hold_in_the_groups(room):
    _, joiner, fac, _, _, _, _ = room
    await fac.call("mod:role", {"userId": "bob", "role": "observer"})
    await BreakoutClient(fac).open([["ann"], ["bob"]])
    bob = await joiner("bob", "participant", g(2))
    with pytest.raises(CollabClientError) as info:
        await bob.send_chat("not as an observer")
    assert info.value.code == "permission_denied"
    mine = await joiner("ann", "participant", g(1))
    await fac.call("mod:remove", {"userId": "ann"})
    await until(lambda: mine.state is ClientState.STOPPED, what="removed from the group too")
    assert mine.stop_reason.code == "removed"
    assert await refused_join(joiner, "ann", "participant", g(1)) == "removed"


async def test_a_revocation_for_the_main_room_closes_the_group_connections(room):
    server, joiner, fac, _, _, _, _ = room
    import aiohttp

    await BreakoutClient(fac).open([["ann"]])
    mine = await joiner("ann", "participant", g(1))
    body = {"sub": "ann", "room": ROOM, "until": int(time.time() * 1000) + 3_600_000}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}/api/revocations",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as r,
    ):
        assert r.status == 201, await r.text()
    await until(lambda: mine.state is ClientState.STOPPED, what="revoked in the group too")
    assert mine.stop_reason.code == "revoked"
    assert await refused_join(joiner, "ann", "participant", g(1)) == "revoked"
