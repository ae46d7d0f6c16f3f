"""crdt.schemas: the board, chat and meta documents as collab reads them."""

from __future__ import annotations

import math

import pytest
from pycrdt import Doc, Map, Text

from crdt.engine import engine_factory
from crdt.errors import CrdtCode, InvalidChatMessage
from crdt.schemas import (
    BOARD_ROOT,
    CHAT_ROOT,
    META_MUTED_ROOT,
    META_REMOVED_ROOT,
    META_ROOT,
    ChatMessage,
    DocKind,
    RoomMeta,
    Shape,
    ShapeType,
    read_board,
    read_chat,
    read_meta,
    validate_chat_text,
    validate_client_message_id,
)
from crdt.types import DocName, RoomId, UserId
from rooms.document import Document
from rooms.errors import SchemaViolation
from rooms.identity import Identity, Role
from rooms.limits import Limits


def test_roots_and_kinds():
    assert (BOARD_ROOT, CHAT_ROOT, META_ROOT) == ("shapes", "messages", "meta")
    assert (META_MUTED_ROOT, META_REMOVED_ROOT) == ("muted", "removed")
    assert not DocKind.BOARD.server_written
    assert DocKind.CHAT.server_written and DocKind.META.server_written


# -- shapes ---------------------------------------------------------------------------------

VALID = {
    ShapeType.PEN: {"type": "pen", "points": [[0, 0], [1.5, 2], [3, -4]], "width": 3},
    ShapeType.LINE: {"type": "line", "points": [0, 0, 10, 10]},
    ShapeType.ARROW: {"type": "arrow", "points": [[0, 0], [5, 5]], "color": "#ff0000"},
    ShapeType.RECT: {"type": "rect", "x": 1, "y": 2, "w": 30, "h": 40, "fill": "#eee"},
    ShapeType.ELLIPSE: {"type": "ellipse", "x": -1.5, "y": 2.25, "w": 3, "h": 4},
    ShapeType.STICKY: {"type": "sticky", "x": 5, "y": 6, "text": "note 😀", "author": "u1"},
    ShapeType.TEXT: {"type": "text", "x": 0, "y": 0, "text": "Title", "z": 7},
    ShapeType.IMAGE: {"type": "image", "x": 3, "y": 4, "w": 400, "h": 300, "src": "ab" * 32},
}


def test_every_shape_type_has_a_valid_example():
    assert set(VALID) == set(ShapeType)


@pytest.mark.parametrize("kind", list(ShapeType))
def test_valid_shapes(kind):
    value = VALID[kind]
    shape = Shape.from_json("s1", value)
    assert shape is not None
    assert shape.id == "s1"
    assert shape.type is kind
    for name in ("x", "y", "w", "h", "width", "z"):
        assert getattr(shape, name) == float(value.get(name, 2.0 if name == "width" else 0.0))
        assert type(getattr(shape, name)) is float
    assert shape.color == value.get("color", "#1e1e1e")
    assert shape.fill == value.get("fill")
    assert shape.text == value.get("text", "")
    assert shape.author == value.get("author")


def test_minimal_shape_defaults():
    assert Shape.from_json("a", {"type": "rect"}) == Shape(id="a", type=ShapeType.RECT)
    shape = Shape.from_json("a", {"type": "rect"})
    assert (shape.color, shape.width, shape.points, shape.fill) == ("#1e1e1e", 2.0, (), None)


def test_points_forms():
    nested = Shape.from_json("p", {"type": "pen", "points": [[1, 2], [3.5, 4]]})
    flat = Shape.from_json("p", {"type": "pen", "points": [1, 2, 3.5, 4]})
    assert nested.points == flat.points == ((1.0, 2.0), (3.5, 4.0))
    assert Shape.from_json("p", {"type": "pen", "points": []}).points == ()
    # pairs with extra members keep x, y
    assert Shape.from_json("p", {"type": "pen", "points": [[1, 2, 0.5]]}).points == ((1.0, 2.0),)


def test_lenient_optional_fields():
    shape = Shape.from_json("s", {"type": "rect", "fill": 3, "author": ["x"]})
    assert shape is not None
    assert (shape.fill, shape.author) == (None, None)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "rect",
        ["rect"],
        {},
        {"type": "hexagon"},
        {"type": None},
        {"type": 1},
        {"type": "RECT"},
        {"type": "rect", "x": "1"},
        {"type": "rect", "y": None},
        {"type": "rect", "w": True},
        {"type": "rect", "h": [1]},
        {"type": "rect", "width": {"v": 1}},
        {"type": "rect", "z": "top"},
        {"type": "rect", "x": math.nan},
        {"type": "rect", "y": math.inf},
        {"type": "rect", "z": -math.inf},
        {"type": "rect", "color": 0xFF0000},
        {"type": "rect", "color": None},
        {"type": "sticky", "text": 5},
        {"type": "sticky", "text": None},
    ],
)
def test_invalid_shapes(value):
    assert Shape.from_json("s", value) is None


@pytest.mark.parametrize(
    "points",
    [
        "0,0,1,1",
        5,
        None,
        {"x": 1},
        [1, 2, 3],  # odd flat list
        [[1]],  # short pair
        [[1, 2], [3]],
        [[1, 2], 3, 4],  # mixed forms
        [["1", 2]],
        [[1, math.nan]],
        [1, math.inf],
        [[True, False]],
        [None, None],
    ],
)
def test_invalid_points(points):
    assert Shape.from_json("s", {"type": "pen", "points": points}) is None


def test_huge_integers_are_skipped_not_raised():
    assert Shape.from_json("s", {"type": "rect", "x": 10**400}) is None
    assert Shape.from_json("s", {"type": "pen", "points": [[0, 10**400]]}) is None


def test_read_board_orders_by_z_then_id_and_skips_invalid():
    shapes = {
        "c": {"type": "rect", "z": 2},
        "a": {"type": "rect", "z": 10},
        "b": {"type": "ellipse", "z": 2},
        "d": {"type": "rect"},  # z 0
        "bad": {"type": "hexagon", "z": 1},
        "worse": "not a shape",
        "e": {"type": "text", "z": -1.5},
    }
    board = read_board(shapes)
    assert [s.id for s in board] == ["e", "d", "b", "c", "a"]
    assert [s.z for s in board] == [-1.5, 0.0, 2.0, 2.0, 10.0]
    assert read_board({}) == []


def test_read_board_from_an_engine():
    engine = engine_factory("pycrdt")()
    engine.set_map_fields(
        BOARD_ROOT,
        {
            "top": {"type": "sticky", "text": "hi", "z": 5, "points": []},
            "bottom": {"type": "pen", "points": [[0, 0], [1, 1]], "z": 1},
        },
    )
    board = read_board(engine.read_map(BOARD_ROOT))
    assert [(s.id, s.type) for s in board] == [("bottom", ShapeType.PEN), ("top", ShapeType.STICKY)]
    assert board[0].points == ((0.0, 0.0), (1.0, 1.0))


def test_a_y_text_under_a_shape_passes_the_strict_board_and_reads_as_its_string():
    # The web app keeps a note's text in a Y.Text nested in the shape's map
    # (protocol.md §5.1): no new root, so --strict-board takes it.
    client = Doc(client_id=7)
    note = Map({"type": "sticky", "x": 1, "y": 2, "w": 160, "h": 120, "fontSize": 24})
    client.get(BOARD_ROOT, type=Map)["n1"] = note
    text = Text("Our group goal: ")
    note["text"] = text
    text.insert(len(str(text)), "calm")
    doc = Document(
        RoomId("r"), DocName("board"), engine_factory("pycrdt")(), Limits(strict_board=True)
    )
    doc.receive_update(bytes(client.get_update()), Identity(UserId("u"), "U", Role.PARTICIPANT))
    (shape,) = read_board(doc.engine.read_map(BOARD_ROOT))
    assert (shape.type, shape.text, shape.font_size) == (
        ShapeType.STICKY,
        "Our group goal: calm",
        24,
    )
    other = Doc(client_id=8)
    other.get("elsewhere", type=Map)["k"] = 1
    with pytest.raises(SchemaViolation):
        doc.receive_update(bytes(other.get_update()), Identity(UserId("u"), "U", Role.PARTICIPANT))


# -- chat -------------------------------------------------------------------------------------


def test_chat_message_round_trip():
    message = ChatMessage(
        id="m1",
        author_id="u1",
        author_name="Ann",
        role="participant",
        text="hello 😀",
        ts=1_700_000_000_123.0,
        client_message_id="c-1",
    )
    fields = message.to_fields()
    assert fields == {
        "id": "m1",
        "authorId": "u1",
        "authorName": "Ann",
        "role": "participant",
        "text": "hello 😀",
        "ts": 1_700_000_000_123.0,
        "redacted": False,
        "clientMessageId": "c-1",
    }
    assert ChatMessage.from_json(fields) == message


def test_chat_message_without_client_id_round_trips_through_an_engine():
    message = ChatMessage("m2", "u2", "Bob", "facilitator", "", 5.0, redacted=True)
    fields = message.to_fields()
    assert "clientMessageId" not in fields
    engine = engine_factory("pycrdt")()
    engine.append_map(CHAT_ROOT, fields)
    assert read_chat(engine.read_array(CHAT_ROOT)) == [message]


def test_chat_message_from_json_defaults_and_rejections():
    assert ChatMessage.from_json({"id": "m", "authorId": "u"}) == ChatMessage(
        "m", "u", "", "", "", 0.0
    )
    for value in (
        None,
        [],
        "m",
        {"authorId": "u"},
        {"id": "m"},
        {"id": "m", "authorId": "u", "ts": "noon"},
        {"id": "m", "authorId": "u", "ts": None},
    ):
        assert ChatMessage.from_json(value) is None


def test_read_chat_keeps_order_and_skips_invalid():
    messages = [
        {"id": "1", "authorId": "u", "text": "a"},
        "junk",
        {"text": "no id"},
        {"id": "2", "authorId": "u", "text": "b"},
    ]
    assert [m.id for m in read_chat(messages)] == ["1", "2"]


def test_validate_chat_text_accepts():
    assert validate_chat_text("hi", max_chars=10) == "hi"
    assert validate_chat_text("  padded  ", max_chars=10) == "  padded  "  # stored as sent
    assert validate_chat_text("x" * 10, max_chars=10) == "x" * 10
    assert validate_chat_text("😀" * 3, max_chars=3) == "😀" * 3
    assert validate_chat_text("line\nbreak", max_chars=20) == "line\nbreak"


@pytest.mark.parametrize(
    "text",
    [None, 5, b"bytes", ["hi"], {"text": "hi"}, "", " ", "\n\t  ", "x" * 11, "a\x00b", "\x00"],
)
def test_validate_chat_text_rejects(text):
    with pytest.raises(InvalidChatMessage) as info:
        validate_chat_text(text, max_chars=10)
    assert info.value.code is CrdtCode.INVALID_CHAT_MESSAGE
    if isinstance(text, str) and text.strip():
        assert text.strip() not in str(info.value)  # messages never echo content


@pytest.mark.parametrize("value", ["a", "A-z_0-9", "x" * 64, "0", "-", "_"])
def test_validate_client_message_id_accepts(value):
    assert validate_client_message_id(value) == value


@pytest.mark.parametrize(
    "value",
    [None, 5, b"abc", "", "x" * 65, "a b", "a.b", "a/b", "é", "abc\n", "\nabc", "a\x00", "😀"],
)
def test_validate_client_message_id_rejects(value):
    with pytest.raises(InvalidChatMessage):
        validate_client_message_id(value)


# -- meta ---------------------------------------------------------------------------------------


def test_read_meta():
    meta = read_meta(
        {"title": "Retro", "locked": True, "ended": False},
        {"u1": True, "u2": False, "u3": 1, "u4": "true"},
        {"u5": True, "u6": None},
    )
    assert meta == RoomMeta(
        title="Retro",
        locked=True,
        ended=False,
        muted=frozenset({"u1"}),
        removed=frozenset({"u5"}),
    )
    assert meta.as_json() == {
        "title": "Retro",
        "locked": True,
        "ended": False,
        "muted": ["u1"],
        "removed": ["u5"],
    }


def test_read_meta_is_strict_about_flags_and_lenient_about_junk():
    assert read_meta({}, {}) == RoomMeta()
    assert read_meta({"title": 5, "locked": 1, "ended": "yes"}, {}) == RoomMeta()
    assert read_meta({"locked": 1.0, "ended": True}, {}, None) == RoomMeta(ended=True)
    assert RoomMeta().as_json() == {
        "title": "",
        "locked": False,
        "ended": False,
        "muted": [],
        "removed": [],
    }
    assert read_meta({}, {"b": True, "a": True}).as_json()["muted"] == ["a", "b"]


def test_read_meta_from_an_engine():
    engine = engine_factory("pycrdt")()
    engine.set_map_fields(META_ROOT, {"title": "T", "locked": True})
    engine.set_map_fields(META_MUTED_ROOT, {"u1": True, "u2": False})
    engine.set_map_fields(META_REMOVED_ROOT, {"u3": True})
    meta = read_meta(
        engine.read_map(META_ROOT),
        engine.read_map(META_MUTED_ROOT),
        engine.read_map(META_REMOVED_ROOT),
    )
    assert meta == RoomMeta("T", True, False, frozenset({"u1"}), frozenset({"u3"}))


# -- images (protocol.md §5.1) ------------------------------------------------------

DIGEST = "0123456789abcdef" * 4


def test_an_image_shape_names_its_stored_image_by_digest():
    shape = Shape.from_json(
        "i1", {"type": "image", "x": 1, "y": 2, "w": 300, "h": 200, "src": DIGEST}
    )
    assert shape is not None and shape.type is ShapeType.IMAGE
    assert (shape.x, shape.y, shape.w, shape.h, shape.src) == (1.0, 2.0, 300.0, 200.0, DIGEST)


@pytest.mark.parametrize(
    "src",
    [
        None,
        "",
        DIGEST.upper(),
        DIGEST[:-1],
        DIGEST + "0",
        "https://tracker.example/pixel.png",
        "../" + DIGEST[3:],
        64,
    ],
)
def test_an_image_without_a_digest_is_skipped(src):
    value = {"type": "image", "x": 0, "y": 0, "w": 10, "h": 10}
    if src is not None:
        value["src"] = src
    assert Shape.from_json("i1", value) is None


def test_only_images_carry_a_src():
    shape = Shape.from_json("r1", {"type": "rect", "src": DIGEST})
    assert shape is not None and shape.src is None


def test_image_digests_of_a_board():
    from crdt.schemas import image_digests, is_digest

    other = "f" * 64
    shapes = {
        "a": {"type": "image", "src": DIGEST},
        "b": {"type": "image", "src": DIGEST},
        "c": {"type": "image", "src": other},
        "d": {"type": "image", "src": "nope"},
        "e": {"type": "rect", "src": "a" * 64},
    }
    assert image_digests(shapes) == {DIGEST, other}
    assert is_digest(DIGEST) and not is_digest("nope") and not is_digest(None)
