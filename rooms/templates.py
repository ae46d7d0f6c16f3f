"""Board templates (protocol.md §5.4): a facilitator starts a board, or adds
to one, from a template (``mod:template``, §6.3); its shapes arrive locked.

A template is plain JSON: an ``id``, a ``title`` and a ``description``
(each a string, or language → string), and ``shapes``, a list of board
shapes in the board schema's fields (§5.1) whose ``text`` may also be
language → string. Those shipped with collab are the files in
``rooms/board_templates/``; a platform adds its own through the admin API
(§10.1). Every template, shipped or not, is parsed by :func:`parse_template`,
which holds it to the board schema and to the limits below: what a platform
uploads cannot put on a board what a participant could not draw.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from crdt.errors import InvalidPayload
from crdt.schemas import BOARD_ROOT, ShapeType
from crdt.text import bad_text_character
from rooms.audit import AuditAction
from rooms.identity import Identity
from rooms.moderation import Change, Outcome, board_of, payload_fields
from rooms.names import META
from rooms.policy import META_SHAPE_LOCKS_ROOT, lock_key
from rooms.room import Room

__all__ = [
    "MAX_TEMPLATE_BYTES",
    "MAX_TEMPLATE_SHAPES",
    "Template",
    "parse_template",
    "place_template",
    "placed_shapes",
    "shipped_templates",
    "template_id_of",
]

#: The largest template, as JSON.
MAX_TEMPLATE_BYTES = 256 << 10
#: Shapes one template may hold.
MAX_TEMPLATE_SHAPES = 500
#: Languages a template's words may come in (the web app's, web/src/i18n.js).
LANGUAGES = ("en", "es")

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_COLOR = re.compile(r"#[0-9a-fA-F]{3,8}|[a-z]{3,20}")
_MAX_TITLE_CHARS = 100
_MAX_DESCRIPTION_CHARS = 500
_MAX_TEXT_CHARS = 2000
_MAX_POINTS = 1000
#: Coordinates and sizes of a template's shapes stay within this (board units).
_MAX_COORD = 10_000.0
_MAX_FONT_SIZE = 256.0
_MAX_WIDTH = 64.0
_NUMBERS = ("x", "y", "w", "h", "width", "fontSize")
_FIELDS = frozenset({"type", "points", "color", "fill", "text", *_NUMBERS})


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: words per language, shapes as board fields."""

    id: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    shapes: tuple[Mapping[str, Any], ...]
    #: ``shipped`` (in the repository) or ``platform`` (the admin API).
    source: str = "shipped"

    def summary(self, lang: str | None = None) -> dict[str, Any]:
        """What a template list shows: id, source, shape count and its words
        (in ``lang`` only, when given)."""
        title: str | dict[str, str] = dict(self.title)
        description: str | dict[str, str] = dict(self.description)
        if lang is not None:
            title, description = _pick(self.title, lang), _pick(self.description, lang)
        return {
            "id": self.id,
            "source": self.source,
            "title": title,
            "description": description,
            "shapes": len(self.shapes),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": dict(self.title),
            "description": dict(self.description),
            "shapes": [dict(s) for s in self.shapes],
        }


def parse_template(data: bytes | Mapping[str, Any], *, source: str = "platform") -> Template:
    """The template ``data`` holds (JSON bytes, or the decoded object), or
    InvalidPayload naming the first thing wrong (never the content)."""
    if isinstance(data, bytes | bytearray):
        if len(data) > MAX_TEMPLATE_BYTES:
            raise InvalidPayload(f"template of {len(data)} bytes, limit {MAX_TEMPLATE_BYTES}")
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            raise InvalidPayload("template is not JSON") from None
    else:
        value = data
    if not isinstance(value, Mapping):
        raise InvalidPayload("template must be a JSON object")
    unknown = set(value) - {"id", "title", "description", "shapes"}
    if unknown:
        raise InvalidPayload(f"unknown template fields: {', '.join(sorted(unknown)[:5])}")
    template_id = value.get("id")
    if not isinstance(template_id, str) or not _ID.fullmatch(template_id):
        raise InvalidPayload("id must be 1-64 of [a-z0-9-], starting with a letter or digit")
    shapes = value.get("shapes")
    if not isinstance(shapes, list) or not 1 <= len(shapes) <= MAX_TEMPLATE_SHAPES:
        raise InvalidPayload(f"shapes must be a list of 1-{MAX_TEMPLATE_SHAPES} shapes")
    return Template(
        id=template_id,
        title=_words(value.get("title"), "title", _MAX_TITLE_CHARS, required=True),
        description=_words(value.get("description", ""), "description", _MAX_DESCRIPTION_CHARS),
        shapes=tuple(_shape(s, i) for i, s in enumerate(shapes)),
        source=source,
    )


def shipped_templates() -> dict[str, Template]:
    """The templates in ``rooms/board_templates/``, by id."""
    found: dict[str, Template] = {}
    folder = resources.files("rooms").joinpath("board_templates")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            template = parse_template(entry.read_bytes(), source="shipped")
            found[template.id] = template
    return found


def placed_shapes(
    template: Template,
    *,
    at: tuple[float, float],
    z: float,
    author: str,
    lang: str,
) -> dict[str, dict[str, Any]]:
    """The template's shapes as new board shapes (fresh ids), centred on
    ``at``, stacked from ``z`` up, in ``lang`` (English where a word lacks it)."""
    boxes = [_box(s) for s in template.shapes]
    left = min(b[0] for b in boxes)
    top = min(b[1] for b in boxes)
    right = max(b[2] for b in boxes)
    bottom = max(b[3] for b in boxes)
    dx, dy = at[0] - (left + right) / 2, at[1] - (top + bottom) / 2
    prefix = "t" + secrets.token_hex(4)
    placed: dict[str, dict[str, Any]] = {}
    for i, shape in enumerate(template.shapes):
        fields = dict(shape)
        fields["x"] = round(float(shape.get("x", 0.0)) + dx, 2)
        fields["y"] = round(float(shape.get("y", 0.0)) + dy, 2)
        if "points" in shape:
            fields["points"] = [[round(x + dx, 2), round(y + dy, 2)] for x, y in shape["points"]]
        if "text" in shape:
            fields["text"] = _pick(shape["text"], lang)
        fields["author"] = author
        fields["z"] = z + i
        placed[f"{prefix}-{i}"] = fields
    return placed


def template_id_of(payload: Any) -> str:
    """The ``templateId`` of a ``mod:template`` payload (InvalidPayload if
    it is not a template id), to look the template up before the room changes."""
    template_id = payload.get("templateId") if isinstance(payload, Mapping) else None
    if not isinstance(template_id, str) or not _ID.fullmatch(template_id):
        raise InvalidPayload("templateId must be a template id")
    return template_id


def place_template(room: Room, actor: Identity, payload: Any, template: Template) -> Outcome:
    """``mod:template {templateId, doc, lang, x, y, locked}``: put a copy of
    ``template`` on the board, centred on (x, y) (board units; 0, 0 by
    default), above every shape, its words in ``lang`` (``en`` by default),
    and lock its shapes unless ``locked`` is false. The locks are written
    first: a board change refused for its size leaves only locks of shapes
    that are not there, which bind nothing."""
    fields = payload_fields(
        payload,
        {"templateId": str, "doc": str, "lang": str, "x": object, "y": object, "locked": bool},
    )
    lang = fields.get("lang", "en")
    if lang not in LANGUAGES:
        raise InvalidPayload(f"lang must be one of {', '.join(LANGUAGES)}")
    at = (
        _number(fields.get("x", 0.0), "x", "x") if "x" in fields else 0.0,
        _number(fields.get("y", 0.0), "y", "y") if "y" in fields else 0.0,
    )
    name = board_of(room, fields)
    board = room.docs[name]
    present = board.engine.read_map(BOARD_ROOT)
    # Any app may write the board: only finite numbers count as a stacking order.
    zs = [float(v["z"]) for v in present.values() if isinstance(v, dict) and _is_finite(v.get("z"))]
    top = max((z for z in zs if abs(z) < 1e15), default=0.0)
    z = math.floor(top) + 1
    shapes = placed_shapes(template, at=at, z=z, author=actor.user_id, lang=lang)
    changes = []
    locked = fields.get("locked", True)
    if locked:
        meta = room.docs[META]
        keys = {lock_key(name, shape_id): True for shape_id in shapes}
        changes.append(
            Change(
                META,
                meta.write(
                    lambda engine: engine.set_map_fields(META_SHAPE_LOCKS_ROOT, keys),
                    adding=sum(len(k) + 8 for k in keys),
                ),
            )
        )
        room.policy.load(meta.engine)
    size = len(json.dumps(shapes))
    changes.append(
        Change(
            name,
            board.write(lambda engine: engine.put_shapes(BOARD_ROOT, shapes), adding=size),
        )
    )
    detail = f"{name} template={template.id} shapes={len(shapes)} locked={str(locked).lower()}"
    return Outcome(AuditAction.TEMPLATE, tuple(changes), detail)


# -- parsing ---------------------------------------------------------------------------


def _words(value: Any, name: str, limit: int, *, required: bool = False) -> dict[str, str]:
    """A string, or language → string (English required), as language → string."""
    words = {"en": value} if isinstance(value, str) else value
    if not isinstance(words, Mapping) or not isinstance(words.get("en"), str):
        raise InvalidPayload(f"{name} must be a string, or an object with an 'en' string")
    out: dict[str, str] = {}
    for lang, text in words.items():
        if lang not in LANGUAGES or not isinstance(text, str):
            raise InvalidPayload(f"{name} languages are {', '.join(LANGUAGES)}; each a string")
        if len(text) > limit or bad_text_character(text) is not None:
            raise InvalidPayload(f"{name} is longer than {limit} characters or holds a control")
        out[lang] = text
    if required and not out["en"].strip():
        raise InvalidPayload(f"{name} is empty")
    return out


def _shape(value: Any, index: int) -> dict[str, Any]:
    where = f"shape {index}"
    if not isinstance(value, Mapping):
        raise InvalidPayload(f"{where} is not an object")
    unknown = set(value) - _FIELDS
    if unknown:
        raise InvalidPayload(f"{where}: unknown fields {', '.join(sorted(unknown)[:5])}")
    try:
        kind = ShapeType(str(value.get("type")))
    except ValueError:
        raise InvalidPayload(f"{where}: type must be one of the board's shape types") from None
    out: dict[str, Any] = {"type": kind.value}
    for name in _NUMBERS:
        if name in value:
            out[name] = _number(value[name], f"{where}: {name}", name)
    for name in ("color", "fill"):
        if name in value:
            color = value[name]
            if not isinstance(color, str) or not _COLOR.fullmatch(color):
                raise InvalidPayload(f"{where}: {name} must be #hex or a colour name")
            out[name] = color
    if "text" in value:
        if kind not in (ShapeType.STICKY, ShapeType.TEXT):
            raise InvalidPayload(f"{where}: only sticky notes and text hold text")
        out["text"] = _words(value["text"], f"{where}: text", _MAX_TEXT_CHARS)
    if kind in (ShapeType.PEN, ShapeType.LINE, ShapeType.ARROW):
        out["points"] = _points(value.get("points"), where)
    elif "points" in value:
        raise InvalidPayload(f"{where}: only pen, line and arrow shapes have points")
    return out


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidPayload(f"{where} must be a finite number")
    low, high = {
        "width": (0.5, _MAX_WIDTH),
        "fontSize": (4.0, _MAX_FONT_SIZE),
        "w": (-_MAX_COORD, _MAX_COORD),
        "h": (-_MAX_COORD, _MAX_COORD),
    }.get(name, (-_MAX_COORD, _MAX_COORD))
    if not low <= value <= high:
        raise InvalidPayload(f"{where} must be within {low:g} and {high:g}")
    return float(value)


def _points(value: Any, where: str) -> list[list[float]]:
    if not isinstance(value, list) or not 2 <= len(value) <= _MAX_POINTS:
        raise InvalidPayload(f"{where}: points must be a list of 2-{_MAX_POINTS} [x, y] pairs")
    out = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise InvalidPayload(f"{where}: each point is an [x, y] pair")
        out.append([_number(pair[0], f"{where}: a point", "x"), _number(pair[1], where, "y")])
    return out


def _box(shape: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """A shape's extent (left, top, right, bottom), roughly: text counts as
    a line of its longest paragraph."""
    if "points" in shape:
        xs = [p[0] for p in shape["points"]]
        ys = [p[1] for p in shape["points"]]
        return min(xs), min(ys), max(xs), max(ys)
    x, y = float(shape.get("x", 0.0)), float(shape.get("y", 0.0))
    w, h = float(shape.get("w", 0.0)), float(shape.get("h", 0.0))
    if shape["type"] == ShapeType.TEXT.value:
        size = float(shape.get("fontSize", 16.0))
        text = shape.get("text", {}).get("en", "")
        lines = text.split("\n")
        w = max(len(line) for line in lines) * size * 0.55
        h = len(lines) * size * 1.25
    return min(x, x + w), min(y, y + h), max(x, x + w), max(y, y + h)


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pick(words: Mapping[str, str], lang: str) -> str:
    return words.get(lang) or words.get("en", "")
