"""Room exports: JSON (everything), a Markdown chat transcript, an SVG of the board.

Pure functions of the room's content as the schemas read it (protocol.md §5);
redacted messages are exported as removed, never with their text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from crdt.schemas import ChatMessage, RoomMeta, Shape, ShapeType

__all__ = ["RoomExport", "to_json", "to_markdown", "to_svg"]

_COLOR = re.compile(r"#[0-9A-Fa-f]{3,8}|[A-Za-z]{1,30}|rgba?\([0-9.,\s%]{1,40}\)")
_STICKY_FILL = "#fff59d"
_PADDING = 20.0


@dataclass(frozen=True, slots=True)
class RoomExport:
    room: str
    meta: RoomMeta
    messages: tuple[ChatMessage, ...]
    shapes: tuple[Shape, ...]
    exported_ms: float


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat(timespec="milliseconds")


def to_json(export: RoomExport) -> dict[str, Any]:
    """Everything: meta, the chat transcript with authors and server times, the board."""
    return {
        "room": export.room,
        "exportedAt": _iso(export.exported_ms),
        "meta": export.meta.as_json(),
        "chat": [
            {
                "id": m.id,
                "authorId": m.author_id,
                "authorName": m.author_name,
                "role": m.role,
                "ts": m.ts,
                "time": _iso(m.ts),
                "text": "" if m.redacted else m.text,
                "redacted": m.redacted,
            }
            for m in export.messages
        ],
        "board": {
            "shapes": [
                {
                    "id": s.id,
                    "type": s.type.value,
                    "x": s.x,
                    "y": s.y,
                    "w": s.w,
                    "h": s.h,
                    "points": [list(p) for p in s.points],
                    "color": s.color,
                    "fill": s.fill,
                    "width": s.width,
                    "text": s.text,
                    "author": s.author,
                    "z": s.z,
                }
                for s in export.shapes
            ]
        },
    }


def to_markdown(export: RoomExport) -> str:
    """The chat transcript: one entry per message, text as a quote block."""
    title = export.meta.title or export.room
    lines = [
        f"# Transcript: {_md_inline(title)}",
        "",
        f"Room `{export.room}` · exported {_iso(export.exported_ms)} · "
        f"{len(export.messages)} messages",
        "",
    ]
    for m in export.messages:
        lines.append(f"**{_md_inline(m.author_name)}** ({m.role}) · {_iso(m.ts)}")
        lines.append("")
        if m.redacted:
            lines.append("> _message removed_")
        else:
            lines.extend("> " + line for line in (m.text.splitlines() or [""]))
        lines.append("")
    return "\n".join(lines)


def _md_inline(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text.replace("\n", " "))


def _color(value: str | None, default: str) -> str:
    return value if value is not None and _COLOR.fullmatch(value) else default


def _bounds(shapes: tuple[Shape, ...]) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []
    for s in shapes:
        if s.points:
            xs.extend(p[0] for p in s.points)
            ys.extend(p[1] for p in s.points)
        xs.extend((s.x, s.x + s.w))
        ys.extend((s.y, s.y + s.h))
    if not xs:
        return 0.0, 0.0, 800.0, 600.0
    return min(xs), min(ys), max(xs), max(ys)


def to_svg(export: RoomExport) -> str:
    """A standalone SVG of the board (shapes in z order)."""
    x0, y0, x1, y1 = _bounds(export.shapes)
    width = max(x1 - x0, 1.0) + 2 * _PADDING
    height = max(y1 - y0, 1.0) + 2 * _PADDING
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="{x0 - _PADDING:g} {y0 - _PADDING:g} {width:g} {height:g}" '
        f'width="{width:g}" height="{height:g}">',
        f"<title>{escape(export.meta.title or export.room)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker></defs>',
    ]
    out.extend(_svg_shape(s) for s in export.shapes)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_shape(s: Shape) -> str:
    stroke = quoteattr(_color(s.color, "#1e1e1e"))
    fill = quoteattr(_color(s.fill, "none"))
    common = f'stroke={stroke} stroke-width="{max(s.width, 0.0):g}" data-id={quoteattr(s.id)}'
    x, y = min(s.x, s.x + s.w), min(s.y, s.y + s.h)
    w, h = abs(s.w), abs(s.h)
    if s.type is ShapeType.RECT:
        return f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" fill={fill} {common}/>'
    if s.type is ShapeType.ELLIPSE:
        return (
            f'<ellipse cx="{x + w / 2:g}" cy="{y + h / 2:g}" rx="{w / 2:g}" ry="{h / 2:g}" '
            f"fill={fill} {common}/>"
        )
    if s.type in (ShapeType.PEN, ShapeType.LINE, ShapeType.ARROW):
        points = " ".join(f"{px:g},{py:g}" for px, py in s.points)
        marker = ' marker-end="url(#arrow)"' if s.type is ShapeType.ARROW else ""
        return (
            f'<polyline points="{points}" fill="none" stroke-linecap="round" '
            f'stroke-linejoin="round" {common}{marker}/>'
        )
    if s.type is ShapeType.STICKY:
        sticky_fill = quoteattr(_color(s.fill, _STICKY_FILL))
        return (
            f'<g data-id={quoteattr(s.id)}><rect x="{x:g}" y="{y:g}" width="{w:g}" '
            f'height="{h:g}" fill={sticky_fill} stroke="#d4c34a"/>'
            f"{_svg_text(s.text, x + 8, y + 20)}</g>"
        )
    return _svg_text(s.text, s.x, s.y + 16, fill=_color(s.color, "#1e1e1e"), shape_id=s.id)


def _svg_text(
    text: str, x: float, y: float, *, fill: str = "#1e1e1e", shape_id: str | None = None
) -> str:
    ident = f" data-id={quoteattr(shape_id)}" if shape_id is not None else ""
    spans = "".join(
        f'<tspan x="{x:g}" dy="{0 if i == 0 else 18}">{escape(line)}</tspan>'
        for i, line in enumerate(text.splitlines() or [""])
    )
    return (
        f'<text x="{x:g}" y="{y:g}" font-family="sans-serif" font-size="14" '
        f"fill={quoteattr(fill)}{ident}>{spans}</text>"
    )
