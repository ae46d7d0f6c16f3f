"""Restore points' synchronous half (rooms/restore_points.py, and the bulk
deletion a board document notices): records, pruning, restoring a board or
one shape, and taking a redacted shape out of a point."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Map, Text

from crdt.engine_pycrdt import PycrdtEngine
from crdt.schemas import BOARD_ROOT
from crdt.types import DocName, RoomId, UserId
from rooms.document import BULK_DELETE_SHAPES
from rooms.errors import NotFound
from rooms.identity import Identity, Role
from rooms.restore_points import (
    Reason,
    make_point,
    points_of,
    record_point,
    restore_board,
    shapes_in,
    to_prune,
    without_shape,
)
from rooms.store_memory import MemoryStore
from tests.unit.test_registry import make_registry

ROOM, BOARD = RoomId("clinic-1/history"), DocName("board")
ANN = Identity(UserId("ann"), "Ann", Role.PARTICIPANT)


def note(text: str) -> Map:
    return Map({"type": "sticky", "x": 0, "y": 0, "text": Text(text)})


@pytest.fixture
async def room():
    registry = make_registry(MemoryStore())
    registry.start()
    try:
        async with registry.use(ROOM) as room:
            await registry.document(ROOM, BOARD)
            yield room
    finally:
        await registry.close()


def edit(room, client: Doc, change) -> None:  # type: ignore[no-untyped-def]
    before = client.get_state()
    change(client.get(BOARD_ROOT, type=Map))
    room.docs[BOARD].receive_update(client.get_update(before), ANN)


async def test_a_bulk_deletion_leaves_the_board_as_it_was(room):
    ann = Doc()
    many = 2 * BULK_DELETE_SHAPES
    edit(room, ann, lambda b: [b.__setitem__(f"s{i}", note(f"idea {i}")) for i in range(many)])
    doc = room.docs[BOARD]
    few = BULK_DELETE_SHAPES - 1
    edit(room, ann, lambda b: [b.pop(f"s{i}") for i in range(few)])
    assert doc.bulk_deleted is None  # a few shapes: an ordinary edit
    edit(room, ann, lambda b: [b.pop(f"s{i}") for i in range(few, many)])
    assert doc.bulk_deleted is not None
    before = shapes_in(PycrdtEngine, doc.bulk_deleted)
    assert set(before) == {f"s{i}" for i in range(few, many)}
    assert doc.engine.map_size(BOARD_ROOT) == 0


async def test_restoring_the_board_and_one_shape(room):
    ann = Doc()
    edit(room, ann, lambda b: [b.__setitem__(k, note(k + " text")) for k in "abc"])
    doc = room.docs[BOARD]
    state = doc.engine.full_state()
    point = make_point(BOARD, state, reason=Reason.MANUAL, by="fac", shapes=3, now_ms=1.0)
    assert point == make_point(BOARD, state, reason=Reason.MANUAL, by="fac", shapes=3, now_ms=1.0)
    record_point(room, point)
    assert points_of(room, BOARD) == [point]

    def later(board: Map) -> None:
        board["a"]["text"].insert(0, "changed ")
        board.pop("b")
        board["d"] = note("new")

    edit(room, ann, later)
    outcome = restore_board(room, BOARD, state, shape_id="b")
    assert set(doc.engine.read_map(BOARD_ROOT)) == {"a", "b", "c", "d"}
    assert outcome.detail == "board shape b put=1 deleted=0"
    ann.apply_update(outcome.changes[0].update)
    outcome = restore_board(room, BOARD, state)
    assert doc.engine.read_map(BOARD_ROOT) == shapes_in(PycrdtEngine, state)
    assert outcome.detail == "board board put=1 deleted=1"  # a rewritten, d gone
    # Everyone gets it as an update: the client's copy follows.
    ann.apply_update(outcome.changes[0].update)
    board = ann.get(BOARD_ROOT, type=Map)
    assert set(board) == {"a", "b", "c"} and isinstance(board["a"]["text"], Text)
    assert str(board["a"]["text"]) == "a text"
    with pytest.raises(NotFound):
        restore_board(room, BOARD, state, shape_id="zzz")


def test_a_redacted_shape_leaves_the_point():
    doc = Doc()
    board = doc.get(BOARD_ROOT, type=Map)
    board["keep"] = note("fine")
    board["secret"] = note("SECRET-7f3c")
    state = bytes(doc.get_update())
    rewritten = without_shape(PycrdtEngine, state, "secret")
    assert rewritten is not None and b"SECRET-7f3c" not in rewritten
    assert set(shapes_in(PycrdtEngine, rewritten)) == {"keep"}
    assert without_shape(PycrdtEngine, rewritten, "secret") is None


def test_pruning_keeps_the_newest():
    points = [
        make_point(BOARD, bytes([i]), reason=Reason.AUTO, by=None, shapes=0, now_ms=float(i))
        for i in range(5)
    ]
    assert [p.ts for p in to_prune(points, keep=3)] == [0.0, 1.0]
    assert to_prune(points, keep=10) == []
