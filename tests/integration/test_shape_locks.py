"""Locked shapes (``mod:lock-shapes``, protocol.md §5.1 and §6.3): the server,
not only the web app, refuses a participant's update that changes or deletes
a locked shape, however the update reaches it."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Map, Text

from collab.client import CollabClient, CollabClientError
from tests.boards import shapes
from tests.conftest import mint

ROOM = "group-locks"


def board(client: CollabClient | Doc) -> Map:
    doc = client.doc if isinstance(client, CollabClient) else client
    return doc.get("shapes", type=Map)


def text_of(client: CollabClient, shape: str) -> str:
    return str(board(client)[shape]["text"])


def refused(client: CollabClient, code: str) -> bool:
    return any(e["code"] == code for e in client.errors)


@pytest.fixture
async def room(token_server, client_factory):
    async def join(name: str, role: str, **kw) -> CollabClient:
        token = mint(ROOM, role=role, name=name, sub=name.lower())
        return await client_factory(token_server.url, ROOM, "board", auth={"token": token}, **kw)

    fac = await join("Fac", "facilitator")
    board(fac)["goal"] = Map({"type": "sticky", "x": 0, "y": 0, "text": Text("Our goal: ")})
    board(fac)["free"] = Map({"type": "rect", "x": 0, "y": 0})
    par = await join("Par", "participant")
    await par.wait_for(lambda: {"goal", "free"} <= set(shapes(par)))
    return token_server, fac, par, join


async def test_a_locked_shape_refuses_a_participants_edits(room):
    server, fac, par, _ = room
    ack = await fac.call("mod:lock-shapes", {"shapeIds": ["goal"]})
    assert ack["ok"] is True

    board(par)["goal"]["text"].insert(10, "mine")
    await par.wait_for(lambda: refused(par, "shape_locked"))
    board(par)["free"]["x"] = 40  # another shape: fine
    await fac.wait_for(lambda: shapes(fac)["free"]["x"] == 40)
    assert text_of(fac, "goal") == "Our goal: "

    # A participant whose update was refused resyncs; a fresh one for each case.
    for n, change in enumerate(
        (
            lambda c: board(c).pop("goal"),
            lambda c: board(c).__setitem__("goal", {"type": "rect"}),
            lambda c: board(c)["goal"].__setitem__("x", 500),
            lambda c: board(c)["goal"]["text"].__delitem__(slice(0, 3)),
        )
    ):
        other = await room[3](f"Par{n}", "participant")
        await other.wait_for(lambda other=other: "goal" in shapes(other))
        change(other)
        await other.wait_for(lambda other=other: refused(other, "shape_locked"))
    assert shapes(fac)["goal"]["x"] == 0 and text_of(fac, "goal") == "Our goal: "

    # The facilitator still edits it; unlocked, so does the participant.
    board(fac)["goal"]["text"].insert(10, "calm")
    await fac.call("mod:lock-shapes", {"shapeIds": ["goal"], "locked": False})
    late = await room[3]("Late", "participant")
    await late.wait_for(lambda: text_of(late, "goal") == "Our goal: calm")
    board(late)["goal"]["text"].insert(14, " days")
    await fac.wait_for(lambda: text_of(fac, "goal") == "Our goal: calm days")

    await server.registry.flush_audit()
    records = await server.registry.store.read_audit(ROOM)
    assert [r.detail for r in records if r.action == "lock"] == [
        "board shapes=1 locked=true",
        "board shapes=1 locked=false",
    ]


async def test_offline_edits_to_a_shape_locked_meanwhile_are_refused(room):
    """The answer to the server's sync-step-1 (edits made offline) is checked
    as a whole: one locked shape in it refuses all of it."""
    _, fac, par, join = room
    offline = Doc(client_id=4242)
    offline.apply_update(par.doc.get_update())
    await fac.call("mod:lock-shapes", {"shapeIds": ["goal"]})
    board(offline)["goal"]["text"].insert(0, "x")
    board(offline)["mine"] = {"type": "rect"}
    back = await join("Par", "participant", doc=offline)
    await back.wait_for(lambda: back.resync_refused is not None)
    assert back.resync_refused is not None and back.resync_refused.code == "shape_locked"
    assert "mine" not in shapes(fac)
    assert text_of(fac, "goal") == "Our goal: "


async def test_only_facilitators_lock_and_only_shapes_on_the_board(room):
    _, fac, par, _ = room
    with pytest.raises(CollabClientError) as info:
        await par.call("mod:lock-shapes", {"shapeIds": ["goal"]})
    assert info.value.code == "permission_denied"
    with pytest.raises(CollabClientError) as info:
        await fac.call("mod:lock-shapes", {"shapeIds": ["nowhere"]})
    assert info.value.code == "not_found"
    for payload in (
        {"shapeIds": []},
        {"shapeIds": "goal"},
        {"shapeIds": ["x" * 129]},
        {"shapeIds": ["goal"], "doc": "chat"},
        {"shapeIds": ["goal"], "extra": 1},
        {"shapeIds": [f"s{i}" for i in range(1001)]},
    ):
        with pytest.raises(CollabClientError) as info:
            await fac.call("mod:lock-shapes", payload)
        assert info.value.code == "invalid_payload", payload
