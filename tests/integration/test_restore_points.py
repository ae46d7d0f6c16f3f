"""Restore points on a live server (protocol.md §5.5): kept on request,
before a bulk deletion, before a restore and every few minutes of activity;
a facilitator restores the board or one deleted shape (an update everyone
receives); a redaction takes the shape out of every point; the states are
never served."""

from __future__ import annotations

import aiohttp
import pytest
from pycrdt import Map, Text

from collab.client import CollabClient, CollabClientError
from rooms.restore_points import points_of
from tests.boards import shapes
from tests.conftest import ADMIN_KEY, SECRET, mint
from tests.postgres.fixtures import postgres_server  # noqa: F401 (a fixture)
from tests.waiting import until

ROOM = "group-history"


def board(client: CollabClient) -> Map:
    return client.doc.get("shapes", type=Map)


def note(text: str) -> Map:
    return Map({"type": "sticky", "x": 0, "y": 0, "text": Text(text)})


def on_server(server) -> set[str]:
    room = server.registry.rooms.get(ROOM)
    doc = room.docs.get("board") if room is not None else None
    return set(doc.engine.read_map("shapes")) if doc is not None else set()


def points(meta: CollabClient) -> dict:
    return meta.doc.get("restorePoints", type=Map).to_py() or {}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def people(request, server_factory, client_factory, tmp_path):
    """A server on the parametrized store (Redis: tests/redis), and a way to
    join its room."""
    store: dict = {"store": request.param}
    if request.param == "sqlite":
        store["data_dir"] = tmp_path / "data"
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        database = await pg.create_database()
        store["postgres_url"] = pg.url(database)

    async def start(**settings):
        server = await server_factory(
            dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, **store, **settings
        )

        async def join(name: str, role: str, doc: str = "board") -> CollabClient:
            token = mint(ROOM, role=role, name=name, sub=name.lower())
            return await client_factory(server.url, ROOM, doc, auth={"token": token})

        return server, join

    return start


async def test_a_facilitator_keeps_a_point_and_restores_the_board(people):
    server, join = await people()
    fac, par = await join("Fac", "facilitator"), await join("Par", "participant")
    meta = await join("Fac", "facilitator", "meta")
    board(fac)["a"] = note("first idea")
    board(fac)["b"] = note("second idea")
    await par.wait_for(lambda: {"a", "b"} <= set(shapes(par)))
    await until(lambda: on_server(server) == {"a", "b"}, what="both notes on the server")
    kept = await fac.call("mod:restore-point", {})
    point = kept["point"]
    assert point["reason"] == "manual" and point["shapes"] == 2 and point["by"] == "fac"
    await meta.wait_for(lambda: point["id"] in points(meta))
    again = await fac.call("mod:restore-point", {})
    assert again["point"]["id"] == point["id"]  # the same board: the same point

    board(par).pop("a")
    board(par)["b"]["text"].insert(0, "changed ")
    board(par)["c"] = note("later")
    await fac.wait_for(lambda: set(shapes(fac)) == {"b", "c"})
    await fac.call("mod:restore", {"pointId": point["id"]})
    await par.wait_for(lambda: set(shapes(par)) == {"a", "b"})
    assert str(board(par)["b"]["text"]) == "second idea"
    assert isinstance(board(par)["a"]["text"], Text)
    # The board before the restore was kept too: the restore can be undone.
    await meta.wait_for(lambda: len(points(meta)) == 2)
    before = [p for p in points(meta).values() if p["reason"] == "before-restore"]
    assert before and before[0]["shapes"] == 2  # b and c

    await server.registry.flush_audit()
    records = await server.registry.store.read_audit(ROOM)
    details = [r.detail for r in records if r.action == "restore"]
    assert details[0] == f"board point={point['id']} kept"
    assert details[-1] == f"board board put=2 deleted=1 point={point['id']}"


async def test_a_bulk_deletion_keeps_the_board_before_it_and_one_shape_comes_back(people):
    _, join = await people()
    fac, par = await join("Fac", "facilitator"), await join("Par", "participant")
    meta = await join("Fac", "facilitator", "meta")
    for i in range(6):
        board(par)[f"s{i}"] = note(f"idea {i}")
    await fac.wait_for(lambda: len(shapes(fac)) == 6)

    def everything(shapes_map: Map) -> None:
        for key in list(shapes_map.keys()):
            shapes_map.pop(key)

    with par.doc.transaction():
        everything(board(par))
    await fac.wait_for(lambda: shapes(fac) == {})
    await meta.wait_for(lambda: any(p["reason"] == "bulk-delete" for p in points(meta).values()))
    point_id = next(k for k, p in points(meta).items() if p["reason"] == "bulk-delete")
    listed = await fac.call("restore:shapes", {"pointId": point_id})
    assert sorted(s["id"] for s in listed["shapes"]) == [f"s{i}" for i in range(6)]
    assert {s["text"] for s in listed["shapes"]} == {f"idea {i}" for i in range(6)}
    await fac.call("mod:restore", {"pointId": point_id, "shapeId": "s3"})
    await par.wait_for(lambda: set(shapes(par)) == {"s3"})
    assert str(board(par)["s3"]["text"]) == "idea 3"


async def test_activity_keeps_points_every_interval(people):
    """A board someone keeps editing keeps a point every interval (here
    0.2 s); one nobody edits keeps none."""
    server, join = await people(restore_interval_s=0.2)
    fac = await join("Fac", "facilitator")
    meta = await join("Fac", "facilitator", "meta")
    for i in range(100):  # someone draws until the loop has kept two points
        board(fac)[f"n{i}"] = note(str(i))
        try:
            await meta.wait_for(lambda: len(points(meta)) >= 2, timeout_s=0.1)
            break
        except TimeoutError:
            continue
    kept = sorted(points(meta).values(), key=lambda p: p["ts"])
    assert len(kept) >= 2 and {p["reason"] for p in kept} == {"auto"}
    assert kept[1]["ts"] - kept[0]["ts"] >= 200

    # Without activity, a pass keeps nothing, however long since the last point.
    restore = server.app.control.restore
    room = server.registry.rooms[ROOM]
    restore.clock_ms = lambda: 1e15  # every interval has passed
    await restore.look_at(room)  # the last drawing's point, if it had none yet
    count = len(points_of(room))
    for _ in range(3):
        await restore.look_at(room)
    assert len(points_of(room)) == count


async def test_a_redacted_shape_leaves_every_point_and_states_are_never_served(people):
    server, join = await people()
    fac = await join("Fac", "facilitator")
    meta = await join("Fac", "facilitator", "meta")
    board(fac)["secret"] = note("SECRET-4d2e private")
    board(fac)["keep"] = note("fine")
    await until(lambda: on_server(server) == {"secret", "keep"}, what="both notes on the server")
    point = (await fac.call("mod:restore-point", {}))["point"]
    store = server.registry.store
    old = await store.get_blob(server.registry.rooms[ROOM].id, point["digest"])
    assert old is not None and b"SECRET-4d2e" in old[0]

    # Not through the image route, even knowing the digest.
    token = mint(ROOM, role="facilitator", name="Fac", sub="fac")
    url = f"{server.url}/api/rooms/{ROOM}/images/{point['digest']}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        assert resp.status == 404

    await fac.call("mod:redact-shape", {"shapeId": "secret"})
    await meta.wait_for(lambda: points(meta)[point["id"]]["digest"] != point["digest"])
    rewritten = points(meta)[point["id"]]
    assert rewritten["shapes"] == 2  # the record's count is of the point as kept
    room_id = server.registry.rooms[ROOM].id
    assert await store.get_blob(room_id, point["digest"]) is None
    new = await store.get_blob(room_id, rewritten["digest"])
    assert new is not None and b"SECRET-4d2e" not in new[0]
    board(fac).pop("keep")
    await until(lambda: on_server(server) == set(), what="the note deleted on the server")
    listed = await fac.call("restore:shapes", {"pointId": point["id"]})
    assert [s["id"] for s in listed["shapes"]] == ["keep"]


async def test_restore_is_for_facilitators_and_refuses_bad_requests(people):
    _, join = await people()
    fac, par = await join("Fac", "facilitator"), await join("Par", "participant")
    for event, payload in (
        ("mod:restore-point", {}),
        ("mod:restore", {"pointId": "x"}),
        ("restore:shapes", {"pointId": "x"}),
    ):
        with pytest.raises(CollabClientError) as info:
            await par.call(event, payload)
        assert info.value.code == "permission_denied", event
    with pytest.raises(CollabClientError) as info:
        await fac.call("mod:restore", {"pointId": "0123456789abcdef"})
    assert info.value.code == "not_found"
    point = (await fac.call("mod:restore-point", {}))["point"]
    with pytest.raises(CollabClientError) as info:
        await fac.call("mod:restore", {"pointId": point["id"], "shapeId": "nowhere"})
    assert info.value.code == "not_found"
    for payload in (
        {},
        {"pointId": 7},
        {"pointId": point["id"], "shapeId": "x" * 129},
        {"pointId": point["id"], "doc": "chat"},
        {"pointId": point["id"], "extra": True},
    ):
        with pytest.raises(CollabClientError) as info:
            await fac.call("mod:restore", payload)
        assert info.value.code == "invalid_payload", payload


async def test_after_the_end_nothing_is_restored_or_placed(people):
    """``mod:end`` makes the room read-only for everyone: a restore or a
    template would write the board, and is refused ``session_ended``."""
    _, join = await people()
    fac = await join("Fac", "facilitator")
    point = (await fac.call("mod:restore-point", {}))["point"]
    await fac.call("mod:end", {})
    for event, payload in (
        ("mod:restore", {"pointId": point["id"]}),
        ("mod:template", {"templateId": "goal-ladder"}),
    ):
        with pytest.raises(CollabClientError) as info:
            await fac.call(event, payload)
        assert info.value.code == "session_ended", event


async def test_only_the_newest_points_stay_and_the_others_leave_the_store(people):
    server, join = await people(restore_points=2)
    fac = await join("Fac", "facilitator")
    meta = await join("Fac", "facilitator", "meta")
    kept = []
    for i in range(3):
        board(fac)[f"n{i}"] = note(str(i))
        await until(lambda i=i: f"n{i}" in on_server(server), what="the note on the server")
        kept.append((await fac.call("mod:restore-point", {}))["point"])
    await meta.wait_for(lambda: set(points(meta)) == {kept[1]["id"], kept[2]["id"]})
    store = server.registry.store
    assert await store.get_blob(ROOM, kept[0]["digest"]) is None
    assert await store.get_blob(ROOM, kept[2]["digest"]) is not None
