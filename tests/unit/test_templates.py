"""Board templates (rooms/templates.py): the shipped ones parse, a
template is held to the board schema and its limits, and placing one makes
fresh shapes centred where asked, written as the web app writes them."""

from __future__ import annotations

import json

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.engine import engine_factory
from crdt.errors import InvalidPayload
from crdt.schemas import BOARD_ROOT, read_board
from rooms.templates import (
    MAX_TEMPLATE_BYTES,
    MAX_TEMPLATE_SHAPES,
    parse_template,
    placed_shapes,
    shipped_templates,
)

SHIPPED = {
    "feelings-wheel",
    "goal-ladder",
    "thought-record",
    "weekly-coping-plan",
    "role-play-cards",
    "brainstorm-grid",
}


def minimal(**changes: object) -> dict:
    template = {
        "id": "mine",
        "title": {"en": "Mine", "es": "Mía"},
        "shapes": [{"type": "sticky", "x": 0, "y": 0, "w": 200, "h": 100, "text": "Hi"}],
    }
    template.update(changes)
    return template


def test_the_shipped_templates_parse_in_both_languages():
    found = shipped_templates()
    assert set(found) == SHIPPED
    for template in found.values():
        assert template.source == "shipped"
        assert set(template.title) == {"en", "es"}
        assert template.description["en"] and template.description["es"]
        for shape in template.shapes:
            if "text" in shape:
                assert set(shape["text"]) == {"en", "es"}, (template.id, shape)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"id": "Bad Id"}, "id must be"),
        ({"title": ""}, "title is empty"),
        ({"title": {"fr": "x"}}, "'en' string"),
        ({"shapes": []}, "shapes must be a list"),
        ({"shapes": [{"type": "sticky"}] * (MAX_TEMPLATE_SHAPES + 1)}, "shapes must be a list"),
        ({"shapes": [{"type": "star"}]}, "type must be"),
        ({"shapes": [{"type": "rect", "onclick": "x"}]}, "unknown fields"),
        ({"shapes": [{"type": "rect", "text": "words"}]}, "only sticky notes and text"),
        ({"shapes": [{"type": "rect", "x": float("nan")}]}, "finite number"),
        ({"shapes": [{"type": "rect", "x": 1e9}]}, "within"),
        ({"shapes": [{"type": "rect", "color": "url(javascript:x)"}]}, "#hex or a colour"),
        ({"shapes": [{"type": "text", "text": "a\x00b"}]}, "control"),
        ({"shapes": [{"type": "pen", "points": [[0, 0]]}]}, "points must be"),
        ({"shapes": [{"type": "rect", "points": [[0, 0], [1, 1]]}]}, "only pen, line and arrow"),
        ({"extra": True}, "unknown template fields"),
    ],
)
def test_a_template_outside_the_schema_or_limits_is_refused(change, says):
    with pytest.raises(InvalidPayload, match=says):
        parse_template(json.dumps(minimal(**change)).encode())


def test_size_and_json_are_checked_first():
    with pytest.raises(InvalidPayload, match="limit"):
        parse_template(b" " * (MAX_TEMPLATE_BYTES + 1))
    with pytest.raises(InvalidPayload, match="not JSON"):
        parse_template(b"{nope")
    with pytest.raises(InvalidPayload, match="JSON object"):
        parse_template(b"[1, 2]")


def test_placing_makes_fresh_shapes_centred_and_in_the_language():
    template = shipped_templates()["goal-ladder"]
    first = placed_shapes(template, at=(1000.0, 500.0), z=7, author="fac", lang="es")
    again = placed_shapes(template, at=(1000.0, 500.0), z=7, author="fac", lang="es")
    assert len(first) == len(template.shapes) and not set(first) & set(again)
    shapes = read_board(first)
    xs = [s.x for s in shapes if s.type.value == "rect"]
    middle = (min(xs) + max(x + 400 for x in xs)) / 2
    assert abs(middle - 1000.0) < 150
    assert {s.author for s in shapes} == {"fac"}
    assert sorted(s.z for s in shapes) == list(range(7, 7 + len(shapes)))
    assert any(s.text == "Mi escalera de metas" for s in shapes)
    english = placed_shapes(template, at=(0, 0), z=0, author="fac", lang="en")
    assert any(v.get("text") == "My goal ladder" for v in english.values())


@pytest.mark.parametrize("engine", ["pycrdt", "ypy"])
def test_engines_write_placed_shapes_as_the_web_app_does(engine):
    make = engine_factory(engine)
    template = shipped_templates()["weekly-coping-plan"]
    shapes = placed_shapes(template, at=(0, 0), z=0, author="fac", lang="en")
    update = make().put_shapes(BOARD_ROOT, shapes)
    doc = Doc()
    doc.apply_update(update)
    board = doc.get(BOARD_ROOT, type=Map)
    assert set(board.keys()) == set(shapes)
    notes = [board[k] for k, v in shapes.items() if v["type"] == "sticky"]
    assert notes and all(isinstance(n["text"], Text) for n in notes)
    assert str(notes[0]["text"]).startswith("When I feel overwhelmed")
    arrows = shipped_templates()["goal-ladder"]
    placed = placed_shapes(arrows, at=(0, 0), z=0, author="f", lang="en")
    doc2 = Doc()
    doc2.apply_update(make().put_shapes(BOARD_ROOT, placed))
    drawn = [v for v in doc2.get(BOARD_ROOT, type=Map).values() if v["type"] == "arrow"]
    assert drawn and isinstance(drawn[0]["points"], Array)
