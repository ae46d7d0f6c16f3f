"""Realistic whiteboard traffic: the Yjs updates of someone drawing.

Each update is what a y-socket.io client sends while a pen stroke is drawn:
the first update of a stroke creates a shape (a Y.Map with type, colour,
width and a Y.Array of points), each following one appends a point. They are
generated once with pycrdt from one sender document, so they apply in order
to any replica and every one is unique (a receiver recognizes it by bytes).
"""

from __future__ import annotations

import random
import secrets

from pycrdt import Array, Doc, Map

__all__ = ["board_with_shapes", "stroke_updates", "update_key"]


def _var_uint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def update_key(update: bytes) -> tuple[int, int] | None:
    """(client, clock) of an update's first struct: what identifies an update
    however a server re-encodes it (y-websocket's server relays its own
    encoding of the change, not the bytes it received)."""
    try:
        clients, pos = _var_uint(update, 0)
        if clients == 0:
            return None
        _, pos = _var_uint(update, pos)  # number of structs
        client, pos = _var_uint(update, pos)
        clock, _ = _var_uint(update, pos)
        return client, clock
    except IndexError:
        return None


def stroke_updates(count: int, *, points_per_stroke: int = 20, seed: int = 7) -> list[bytes]:
    """``count`` updates: strokes of ``points_per_stroke`` points, drawn live."""
    rng = random.Random(seed)
    doc: Doc = Doc(client_id=secrets.randbits(32))
    shapes = doc.get("shapes", type=Map)
    out: list[bytes] = []
    doc.observe(lambda event: out.append(bytes(event.update)))
    points: Array | None = None
    x = y = 0.0
    for i in range(count):
        if i % points_per_stroke == 0:
            x, y = rng.uniform(0, 1600), rng.uniform(0, 900)
            points = Array([[round(x, 1), round(y, 1)]])
            shapes[f"stroke-{i}"] = Map(
                {
                    "type": "pen",
                    "color": rng.choice(["#1e1e1e", "#e03131", "#1971c2"]),
                    "width": 2.0,
                    "z": float(i),
                    "points": points,
                }
            )
        else:
            x += rng.uniform(-8, 8)
            y += rng.uniform(-8, 8)
            assert points is not None
            points.append([round(x, 1), round(y, 1)])
    return out


def board_with_shapes(count: int, *, seed: int = 11, per_update: int = 1000) -> list[bytes]:
    """Updates that build a board of ``count`` shapes, ``per_update`` shapes
    each (so each stays under the server's message limit)."""
    rng = random.Random(seed)
    doc: Doc = Doc(client_id=secrets.randbits(32))
    shapes = doc.get("shapes", type=Map)
    out: list[bytes] = []
    doc.observe(lambda event: out.append(bytes(event.update)))
    for start in range(0, count, per_update):
        with doc.transaction():
            for i in range(start, min(count, start + per_update)):
                kind = rng.choice(["rect", "ellipse", "sticky", "pen"])
                shape = {
                    "type": kind,
                    "x": rng.uniform(0, 4000),
                    "y": rng.uniform(0, 3000),
                    "w": rng.uniform(20, 200),
                    "h": rng.uniform(20, 200),
                    "z": float(i),
                    "color": "#1e1e1e",
                }
                if kind == "pen":
                    shape["points"] = [
                        [rng.uniform(0, 4000), rng.uniform(0, 3000)] for _ in range(12)
                    ]
                if kind == "sticky":
                    shape["text"] = f"note {i}"
                shapes[f"s{i}"] = Map(shape)
    return out
