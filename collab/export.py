"""Room exports: JSON (everything), a Markdown chat transcript, an SVG of the board.

The private threads to the facilitators (protocol.md §6.8) are in the JSON
(``private``) and the Markdown (a section per participant, after the group
chat): an export is for an admin or the room's facilitators, who may read them.

Pure functions of the room's content as the schemas read it (protocol.md §5);
redacted and deleted messages are exported as removed, never with their text. Images
(protocol.md §10.6) travel inside the export, base64: the JSON has them by
digest, the SVG embeds each as a ``data:`` URL, so an export stands alone.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crdt.errors import InvalidPayload
from crdt.schemas import ChatMessage, RoomMeta, Shape, ShapeType

__all__ = ["PrivateThread", "RoomExport", "time_zone", "to_json", "to_markdown", "to_svg"]

_COLOR = re.compile(r"#[0-9A-Fa-f]{3,8}|[A-Za-z]{1,30}|rgba?\([0-9.,\s%]{1,40}\)")
_STICKY_FILL = "#fff59d"
_PADDING = 20.0
# As the web app draws the board (web/src/geometry.js, board.js), so an export
# looks like the board: the font, line height, a note's padding, arrowheads.
_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
_STICKY_PAD = 8.0
_STICKY_STROKE = "#c9b458"
_ARROW_SPREAD = math.pi / 7


@dataclass(frozen=True, slots=True)
class RoomExport:
    room: str
    meta: RoomMeta
    messages: tuple[ChatMessage, ...]
    shapes: tuple[Shape, ...]
    exported_ms: float
    #: The stored images the shapes name: digest → (bytes, media type).
    images: Mapping[str, tuple[bytes, str]] = field(default_factory=dict)
    #: The private threads to the facilitators (protocol.md §6.8), one per participant.
    threads: tuple[PrivateThread, ...] = ()
    #: The room's check-ins with their results (rooms.checkins.export_checkins).
    checkins: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class PrivateThread:
    """One participant's private thread with the facilitators."""

    doc: str
    user_id: str
    messages: tuple[ChatMessage, ...]


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat(timespec="milliseconds")


#: An IANA zone name: letters, digits and ``/_+-`` (``Europe/Madrid``, ``Etc/GMT+5``).
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")


def time_zone(name: str | None) -> ZoneInfo | None:
    """The IANA time zone `name` names (None for None: times stay UTC).

    Raises InvalidPayload for a name that is not one (a path, an unknown zone).
    """
    if name is None:
        return None
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        raise InvalidPayload("tz must be an IANA time zone name, such as Europe/Madrid")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPayload(f"tz {name!r} is not a known IANA time zone") from None


def to_json(export: RoomExport) -> dict[str, Any]:
    """Everything: meta, the chat transcript with authors and server times, the board."""
    return {
        "room": export.room,
        "exportedAt": _iso(export.exported_ms),
        "meta": export.meta.as_json(),
        "chat": [_message_json(m) for m in export.messages],
        "private": [
            {
                "doc": t.doc,
                "userId": t.user_id,
                "messages": [_message_json(m) for m in t.messages],
            }
            for t in export.threads
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
                    "fontSize": s.font_size,
                    "author": s.author,
                    "z": s.z,
                    **({"src": s.src} if s.src is not None else {}),
                }
                for s in export.shapes
            ],
            "images": {
                digest: {"mediaType": kind, "data": base64.b64encode(data).decode("ascii")}
                for digest, (data, kind) in sorted(export.images.items())
            },
        },
        "checkins": [checkin_json(c) for c in export.checkins],
    }


def _message_json(m: ChatMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "authorId": m.author_id,
        "authorName": m.author_name,
        "role": m.role,
        "ts": m.ts,
        "time": _iso(m.ts),
        "text": "" if m.redacted or m.deleted else m.text,
        "redacted": m.redacted,
        **({"deleted": True} if m.deleted else {}),
    }


def checkin_json(checkin: Mapping[str, Any]) -> dict[str, Any]:
    """A check-in as an export has it: its question, kind and state, the
    count of each option, and (a named one only) who answered what."""
    fields = ("id", "kind", "question", "anonymous", "state", "revealed", "answered", "by")
    out: dict[str, Any] = {name: checkin.get(name) for name in fields}
    out["openedAt"] = _iso(checkin["openedAt"])
    if checkin.get("closedAt") is not None:
        out["closedAt"] = _iso(checkin["closedAt"])
    out["results"] = [
        {"option": label, "count": count}
        for label, count in zip(checkin["options"], checkin["counts"], strict=True)
    ]
    if not checkin.get("anonymous"):
        out["answers"] = {
            user: _answer_label(checkin, value)
            for user, value in checkin.get("answers", {}).items()
        }
    return out


def _answer_label(checkin: Mapping[str, Any], value: Any) -> Any:
    """A named answer in words: a choice's option label(s); a scale's
    value and a feeling as they are."""
    options = checkin["options"]
    if checkin["kind"] == "single" and isinstance(value, int):
        return options[value]
    if checkin["kind"] == "multiple" and isinstance(value, list):
        return [options[i] for i in value]
    return value


def _local(ms: float, zone: tzinfo) -> str:
    """A time as a reader in `zone` reads it, with its offset: ``2026-11-30 14:05 (+01:00)``."""
    moment = datetime.fromtimestamp(ms / 1000.0, tz=zone)
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} ({offset[:3]}:{offset[3:]})"


def to_markdown(export: RoomExport, zone: tzinfo | None = None) -> str:
    """The chat transcript: one entry per message, text as a quote block.

    Times are UTC ISO 8601 by default; with `zone` (the reader's time zone),
    local times with their UTC offset, the zone named in the header.
    """
    title = export.meta.title or export.room

    def when(ms: float) -> str:
        return _iso(ms) if zone is None else _local(ms, zone)

    zone_note = "" if zone is None else f" · times in {zone}"
    lines = [
        f"# Transcript: {_md_inline(title)}",
        "",
        f"Room `{export.room}` · exported {when(export.exported_ms)} · "
        f"{len(export.messages)} messages{_md_inline(zone_note)}",
        "",
    ]
    _md_messages(lines, export.messages, when)
    for thread in export.threads:
        lines.append(
            f"## Private thread with `{_md_inline(thread.user_id)}` · "
            f"{len(thread.messages)} messages"
        )
        lines.append("")
        _md_messages(lines, thread.messages, when)
    if export.checkins:
        lines.extend(_markdown_checkins(export.checkins))
    return "\n".join(lines)


def _md_messages(
    lines: list[str], messages: tuple[ChatMessage, ...], when: Callable[[float], str]
) -> None:
    for m in messages:
        lines.append(f"**{_md_inline(m.author_name)}** ({m.role}) · {when(m.ts)}")
        lines.append("")
        if m.redacted:
            lines.append("> _message removed_")
        elif m.deleted:
            lines.append("> _message deleted by its author_")
        else:
            lines.extend("> " + line for line in (m.text.splitlines() or [""]))
        lines.append("")


def _markdown_checkins(checkins: tuple[dict[str, Any], ...]) -> list[str]:
    """The check-ins section: each question, its counts, and for a named
    check-in who answered what."""
    lines = ["## Check-ins", ""]
    for c in checkins:
        flags = [c["kind"], "anonymous" if c.get("anonymous") else "named", c["state"]]
        lines.append(f"### {_md_inline(c['question'])}")
        lines.append("")
        lines.append(f"{' · '.join(flags)} · {c['answered']} answered")
        lines.append("")
        for label, count in zip(c["options"], c["counts"], strict=True):
            lines.append(f"- {_md_inline(label)}: {count}")
        answers = c.get("answers") if not c.get("anonymous") else None
        if answers:
            lines.append("")
            for user, raw in answers.items():
                value = _answer_label(c, raw)
                shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
                lines.append(f"- `{_md_inline(user)}`: {_md_inline(shown)}")
        lines.append("")
    return lines


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
    ]
    out.extend(
        _svg_image(s, export.images.get(s.src)) if s.src is not None else _svg_shape(s)
        for s in export.shapes
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _line_height(size: float) -> float:
    """1.3 × the text size, rounded half up as the web app's Math.round."""
    return float(math.floor(size * 1.3 + 0.5))


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
    if s.type is ShapeType.ARROW and len(s.points) >= 2:
        return _svg_arrow(s, stroke, common)
    if s.type in (ShapeType.PEN, ShapeType.LINE, ShapeType.ARROW):
        return f"<polyline {_points_attr(s.points)} {_LINE_ATTRS} {common}/>"
    if s.type is ShapeType.STICKY:
        return _svg_sticky(s, x, y, w, h)
    return _svg_text(s)


_LINE_ATTRS = 'fill="none" stroke-linecap="round" stroke-linejoin="round"'


def _svg_image(s: Shape, image: tuple[bytes, str] | None) -> str:
    """An image at its box, stretched to it as the board draws it; one whose
    stored image is gone (redacted) is a dashed frame."""
    x, y = min(s.x, s.x + s.w), min(s.y, s.y + s.h)
    w, h = abs(s.w), abs(s.h)
    box = f'x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" data-id={quoteattr(s.id)}'
    if image is None:
        return f'<rect {box} fill="#f1f3f5" stroke="#adb5bd" stroke-dasharray="6 4"/>'
    data, kind = image
    href = f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
    return f'<image {box} preserveAspectRatio="none" href={quoteattr(href)}/>'


def _points_attr(points: tuple[tuple[float, float], ...] | list[tuple[float, float]]) -> str:
    return 'points="' + " ".join(f"{px:g},{py:g}" for px, py in points) + '"'


def _svg_arrow(s: Shape, stroke: str, common: str) -> str:
    """The line, ending 2 × its width before the tip, and a head 3.5 × its
    width long (8 at least): in proportion, as the board draws it."""
    width = max(s.width, 0.0)
    (ax, ay), (bx, by) = s.points[-2], s.points[-1]
    length = math.hypot(bx - ax, by - ay)
    shaft = list(s.points)
    if length > 1e-6:
        t = max(0.0, length - 2 * width) / length
        shaft[-1] = (ax + (bx - ax) * t, ay + (by - ay) * t)
    size = max(8.0, width * 3.5)
    angle = math.atan2(by - ay, bx - ax)
    wing = [
        (bx - size * math.cos(angle + d), by - size * math.sin(angle + d))
        for d in (-_ARROW_SPREAD, _ARROW_SPREAD)
    ]
    head = f"M{bx:.2f} {by:.2f}" + "".join(f"L{px:.2f} {py:.2f}" for px, py in wing) + "Z"
    return (
        f"<g data-id={quoteattr(s.id)}><polyline {_points_attr(shaft)} {_LINE_ATTRS} "
        f'stroke={stroke} stroke-width="{width:g}"/>'
        f'<path class="arrow-head" d="{head}" fill={stroke} stroke={stroke} '
        f'stroke-width="{min(width, 2.0):g}" stroke-linejoin="round"/></g>'
    )


def _svg_sticky(s: Shape, x: float, y: float, w: float, h: float) -> str:
    """The note and its text wrapped inside it as on the board: an XHTML block
    in a foreignObject, so the viewer wraps it with the board's rules."""
    sticky_fill = quoteattr(_color(s.fill, _STICKY_FILL))
    sticky_stroke = quoteattr(_color(s.color, _STICKY_STROKE))
    style = (
        f"box-sizing:border-box;width:100%;height:100%;margin:0;padding:{_STICKY_PAD:g}px;"
        f"overflow:hidden;white-space:pre-wrap;overflow-wrap:anywhere;color:#1e1e1e;"
        f"font-family:{_FONT};font-size:{s.font_size:g}px;"
        f"line-height:{_line_height(s.font_size):g}px"
    )
    return (
        f'<g data-id={quoteattr(s.id)}><rect x="{x:g}" y="{y:g}" width="{w:g}" '
        f'height="{h:g}" rx="2" fill={sticky_fill} stroke={sticky_stroke} stroke-width="1"/>'
        f'<foreignObject x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}">'
        f'<div xmlns="http://www.w3.org/1999/xhtml" style={quoteattr(style)}>'
        f"{escape(s.text)}</div></foreignObject></g>"
    )


def _svg_text(s: Shape) -> str:
    """A text shape: one line per line of its text, each line's middle half a
    line height below its top (as the board draws it)."""
    fill = quoteattr(_color(s.color, "#1e1e1e"))
    lh = _line_height(s.font_size)
    spans = "".join(
        f'<tspan x="{s.x:g}" dy="{0 if i == 0 else lh:g}">{escape(line) or " "}</tspan>'
        for i, line in enumerate(s.text.split("\n"))
    )
    return (
        f'<text x="{s.x:g}" y="{s.y + lh / 2:g}" dominant-baseline="central" '
        f'font-family={quoteattr(_FONT)} font-size="{s.font_size:g}" '
        f"fill={fill} data-id={quoteattr(s.id)}>{spans}</text>"
    )
