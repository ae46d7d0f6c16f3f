"""The awareness fields whose content the server checks: ``view`` (where a
user is looking on the board) and ``pointer`` (a laser pointer's short
trail), protocol.md §3.1 and §6.6.

Every other allowed field is relayed as sent; these two are read by every
client of the room to move its own view or draw on its board, so what they
hold is held to a shape and to bounds here, before the server keeps or
relays a state. A field that does not fit is dropped from the state, not
refused, as a field off ``--awareness-fields`` is: the rest of the state
(the cursor, the name) still goes out. Sans-I/O: values in, values out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BOARD_EXTENT",
    "MAX_POINTER_POINTS",
    "MAX_VIEW_ZOOM",
    "MIN_VIEW_ZOOM",
    "POINTER_FIELD",
    "VIEW_FIELD",
    "board_area",
    "check_fields",
    "check_pointer",
    "check_view",
]

#: The awareness field of a user's view: ``{"x", "y", "w", "h", "k"}``.
VIEW_FIELD = "view"
#: The awareness field of a laser pointer: ``{"points": [[x, y], ...], "at"}``.
POINTER_FIELD = "pointer"

#: How far from the origin a view or a point may be, and how large a view
#: may be, in board units (either axis).
BOARD_EXTENT = 1_000_000.0
#: A view's zoom (screen pixels per board unit), as a web app can show it.
MIN_VIEW_ZOOM = 0.01
MAX_VIEW_ZOOM = 100.0
#: Points of one pointer trail.
MAX_POINTER_POINTS = 32
#: The largest ``at`` (milliseconds since the Unix epoch) a trail may carry:
#: the year 2286, far past any real clock, below 2**53.
_MAX_AT_MS = 10**13
#: Roles whose pointer is dropped: an observer watches, and does not point.
_NO_POINTER_ROLES = frozenset({"observer"})


def _number(value: Any) -> bool:
    """A JSON number that is finite (bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _coordinate(value: Any) -> bool:
    return _number(value) and abs(value) <= BOARD_EXTENT


def _extent(value: Any) -> bool:
    return _number(value) and 0 < value <= BOARD_EXTENT


def board_area(value: Any) -> dict[str, float] | None:
    """``{"x", "y", "w", "h"}`` (a rectangle of the board: its top-left
    corner and size, board units) if ``value`` is exactly that, with finite
    numbers within :data:`BOARD_EXTENT` and a positive size; else None."""
    if not isinstance(value, Mapping) or set(value) != {"x", "y", "w", "h"}:
        return None
    x, y, w, h = value["x"], value["y"], value["w"], value["h"]
    if not (_coordinate(x) and _coordinate(y) and _extent(w) and _extent(h)):
        return None
    return {"x": x, "y": y, "w": w, "h": h}


def check_view(value: Any) -> dict[str, float] | None:
    """A ``view`` field as kept: the board area a user sees (:func:`board_area`)
    and its zoom ``k`` (:data:`MIN_VIEW_ZOOM`–:data:`MAX_VIEW_ZOOM`); None
    if it is anything else."""
    if not isinstance(value, Mapping) or set(value) != {"x", "y", "w", "h", "k"}:
        return None
    area = board_area({key: value[key] for key in ("x", "y", "w", "h")})
    zoom = value["k"]
    if area is None or not _number(zoom) or not MIN_VIEW_ZOOM <= zoom <= MAX_VIEW_ZOOM:
        return None
    return {**area, "k": zoom}


def check_pointer(value: Any) -> dict[str, Any] | None:
    """A ``pointer`` field as kept: ``points``, 1–:data:`MAX_POINTER_POINTS`
    ``[x, y]`` pairs within :data:`BOARD_EXTENT`, and ``at``, when the trail's
    last point was made (the sender's estimate of server time, milliseconds
    since the Unix epoch); None if it is anything else."""
    if not isinstance(value, Mapping) or set(value) != {"points", "at"}:
        return None
    points, at = value["points"], value["at"]
    if not isinstance(points, list) or not 1 <= len(points) <= MAX_POINTER_POINTS:
        return None
    for point in points:
        if not isinstance(point, list) or len(point) != 2:
            return None
        if not (_coordinate(point[0]) and _coordinate(point[1])):
            return None
    if not isinstance(at, int) or isinstance(at, bool) or not 0 <= at <= _MAX_AT_MS:
        return None
    return {"points": points, "at": at}


def check_fields(state: dict[str, Any], *, role: str | None) -> dict[str, Any]:
    """``state`` with its ``view`` and ``pointer`` checked: each kept as it
    fits (``null`` clears it and is kept), dropped otherwise; an observer's
    ``pointer`` is always dropped. Other fields are left as they are."""
    checked = dict(state)
    view = checked.get(VIEW_FIELD)
    if view is not None and check_view(view) is None:
        del checked[VIEW_FIELD]
    if POINTER_FIELD in checked:
        pointer = checked[POINTER_FIELD]
        if role in _NO_POINTER_ROLES or (pointer is not None and check_pointer(pointer) is None):
            del checked[POINTER_FIELD]
    return checked
