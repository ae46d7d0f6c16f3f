"""Templates on a live server (``templates:list`` and ``mod:template``,
protocol.md §5.4 and §6.3): a facilitator lists them in their language and
places one; everyone receives its shapes, and they arrive locked."""

from __future__ import annotations

import pytest
from pycrdt import Map, Text

from collab.client import CollabClient, CollabClientError
from tests.boards import shapes
from tests.conftest import mint
from tests.waiting import until

ROOM = "group-templates"


@pytest.fixture
async def room(token_server, client_factory):
    async def join(name: str, role: str) -> CollabClient:
        token = mint(ROOM, role=role, name=name, sub=name.lower())
        return await client_factory(token_server.url, ROOM, "board", auth={"token": token})

    return token_server, await join("Fac", "facilitator"), await join("Par", "participant")


async def test_a_facilitator_lists_and_places_a_template_that_arrives_locked(room):
    server, fac, par = room
    listed = await fac.call("templates:list", {"lang": "es"})
    by_id = {t["id"]: t for t in listed["templates"]}
    assert by_id["goal-ladder"]["title"] == "Escalera de metas"
    assert by_id["goal-ladder"]["source"] == "shipped" and by_id["goal-ladder"]["shapes"] > 5

    ack = await fac.call("mod:template", {"templateId": "role-play-cards", "x": 300, "y": 200})
    assert ack["ok"] is True
    await par.wait_for(lambda: len(shapes(par)) >= 6)
    board = par.doc.get("shapes", type=Map)
    notes = [k for k in board if board[k]["type"] == "sticky"]
    assert len(notes) == 4 and all(isinstance(board[k]["text"], Text) for k in notes)
    assert any(str(board[k]["text"]).startswith("Role A") for k in notes)

    # Locked: the participant's edit of a card is refused; a new note is not.
    board[notes[0]]["text"].insert(0, "mine ")
    await par.wait_for(lambda: any(e["code"] == "shape_locked" for e in par.errors))
    assert not str(fac.doc.get("shapes", type=Map)[notes[0]]["text"]).startswith("mine")

    # Unlocked on request, and in Spanish.
    await fac.call("mod:template", {"templateId": "brainstorm-grid", "lang": "es", "locked": False})
    await fac.wait_for(lambda: any(v.get("text") == "Tema" for v in shapes(fac).values()))
    grid = {k for k, v in shapes(fac).items() if v.get("text") == "Tema"}
    assert not grid & server.registry.rooms[ROOM].policy.shape_locks.get("board", frozenset())

    await server.registry.flush_audit()
    records = await server.registry.store.read_audit(ROOM)
    details = [r.detail for r in records if r.action == "template"]
    assert details[0].startswith("board template=role-play-cards shapes=")
    assert details[1].endswith("locked=false")


async def test_templates_are_for_facilitators_and_refuse_bad_requests(room):
    _, fac, par = room
    for event, payload in (("templates:list", {}), ("mod:template", {"templateId": "goal-ladder"})):
        with pytest.raises(CollabClientError) as info:
            await par.call(event, payload)
        assert info.value.code == "permission_denied"
    with pytest.raises(CollabClientError) as info:
        await fac.call("mod:template", {"templateId": "no-such-template"})
    assert info.value.code == "not_found"
    for payload in (
        {"templateId": "Not An Id"},
        {"templateId": "goal-ladder", "lang": "fr"},
        {"templateId": "goal-ladder", "x": "left"},
        {"templateId": "goal-ladder", "x": 1e12},
        {"templateId": "goal-ladder", "doc": "chat"},
        {"templateId": "goal-ladder", "surprise": 1},
    ):
        with pytest.raises(CollabClientError) as info:
            await fac.call("mod:template", payload)
        assert info.value.code == "invalid_payload", payload
    with pytest.raises(CollabClientError) as info:
        await fac.call("templates:list", {"lang": "xx"})
    assert info.value.code == "invalid_payload"
    assert shapes(fac) == {}


async def test_a_board_with_odd_stacking_orders_still_takes_a_template(room):
    """Any app may write the board: a ``z`` that is text, huge or missing
    does not stop a template; it goes above the shapes that have a number."""
    server, fac, _ = room
    board = fac.doc.get("shapes", type=Map)
    board["odd"] = {"type": "rect", "z": "top"}
    board["big"] = {"type": "rect", "z": 1e300}
    board["ok"] = {"type": "rect", "z": 41}
    on_server = server.registry.rooms[ROOM].docs["board"]
    await until(lambda: len(on_server.engine.read_map("shapes")) == 3, what="the shapes arrived")
    await fac.call("mod:template", {"templateId": "brainstorm-grid", "locked": False})
    await fac.wait_for(lambda: len(shapes(fac)) > 3)
    placed = [v for k, v in shapes(fac).items() if k not in {"odd", "big", "ok"}]
    assert min(v["z"] for v in placed) == 42
