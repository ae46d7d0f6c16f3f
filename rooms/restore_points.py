"""Board restore points (protocol.md §5.5): what a board looked like, kept so
that a facilitator can bring the board, or one deleted shape, back.

A restore point is the board document's full state at a moment, stored as a
blob of the room (``BlobStore``, named by its SHA-256; never served to
clients) and listed in meta's ``restorePoints`` map (point id → its
record: board, time, reason, who, shape count, digest, size), so every node
and every facilitator's page sees the same history. Points are taken every
few minutes of activity, before a bulk deletion (a client's update that
removes ``BULK_DELETE_SHAPES`` shapes or more: the board *before* it), before
a restore, and when a facilitator asks; the newest ``max_points`` of each
board are kept.

Restoring writes an ordinary board update (every client receives it, and
anyone's undo can take it back): the shapes the point holds that differ from
the board's are written anew, and for a whole-board restore the shapes the
point lacks are deleted. Locks stay as they are (meta's ``shapeLocks`` names
shapes by id). A redaction (``mod:redact-shape``) also takes the shape out
of every restore point (:func:`without_shape`), so nothing redacted comes
back from history.

This module is synchronous and does no I/O: collab.restore_control stores
and reads the blobs and calls it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crdt.errors import InvalidPayload
from crdt.schemas import BOARD_ROOT
from crdt.types import DocName, Update
from rooms.audit import AuditAction
from rooms.errors import NotFound
from rooms.moderation import Change, Outcome
from rooms.names import META
from rooms.room import Room
from rooms.store import RESTORE_MEDIA_TYPE

__all__ = [
    "META_RESTORE_ROOT",
    "RESTORE_MEDIA_TYPE",
    "Reason",
    "RestorePoint",
    "forget_points",
    "make_point",
    "points_of",
    "record_point",
    "restore_board",
    "shapes_in",
    "to_prune",
    "without_shape",
]

#: The meta root listing restore points: point id → record.
META_RESTORE_ROOT = "restorePoints"


class Reason(StrEnum):
    """Why a restore point was taken."""

    AUTO = "auto"  # every few minutes of activity
    BULK_DELETE = "bulk-delete"  # the board before a bulk deletion
    MANUAL = "manual"  # a facilitator asked
    BEFORE_RESTORE = "before-restore"  # the board before a restore


@dataclass(frozen=True, slots=True)
class RestorePoint:
    """A restore point's record (meta's ``restorePoints``)."""

    id: str
    doc: str
    ts: float  # milliseconds since the Unix epoch
    reason: Reason
    by: str | None
    shapes: int
    digest: str
    size: int

    def to_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "doc": self.doc,
            "ts": self.ts,
            "reason": self.reason.value,
            "shapes": self.shapes,
            "digest": self.digest,
            "size": self.size,
        }
        if self.by is not None:
            fields["by"] = self.by
        return fields

    @classmethod
    def from_fields(cls, point_id: str, value: Any) -> RestorePoint | None:
        """The record, or None if ``value`` is not one."""
        if not isinstance(value, dict):
            return None
        try:
            reason = Reason(str(value.get("reason")))
        except ValueError:
            return None
        doc, digest, by = value.get("doc"), value.get("digest"), value.get("by")
        numbers = [value.get(k) for k in ("ts", "shapes", "size")]
        if not isinstance(doc, str) or not isinstance(digest, str):
            return None
        if not all(isinstance(n, int | float) and math.isfinite(n) for n in numbers):
            return None
        return cls(
            id=point_id,
            doc=doc,
            ts=float(value["ts"]),
            reason=reason,
            by=by if isinstance(by, str) else None,
            shapes=int(value["shapes"]),
            digest=digest,
            size=int(value["size"]),
        )


def points_of(room: Room, doc: str | None = None) -> list[RestorePoint]:
    """The room's restore points (of board ``doc`` only, when given), oldest first."""
    meta = room.docs[META].engine.read_map(META_RESTORE_ROOT)
    found = [p for k, v in meta.items() if (p := RestorePoint.from_fields(k, v)) is not None]
    return sorted((p for p in found if doc is None or p.doc == doc), key=lambda p: (p.ts, p.id))


def make_point(
    doc: DocName, state: Update, *, reason: Reason, by: str | None, shapes: int, now_ms: float
) -> RestorePoint:
    """The record of a restore point of ``state``. Its id is derived from the
    digest and the board: two nodes keeping the same state keep one point."""
    digest = hashlib.sha256(state).hexdigest()
    point_id = hashlib.sha256(f"{doc}\n{digest}".encode()).hexdigest()[:16]
    return RestorePoint(point_id, doc, now_ms, reason, by, shapes, digest, len(state))


def record_point(room: Room, point: RestorePoint) -> Change:
    """Add ``point`` to meta's list."""
    return _write(room, {point.id: point.to_fields()})


def forget_points(room: Room, ids: Sequence[str]) -> Change:
    """Take points out of meta's list."""
    meta = room.docs[META]
    update = meta.write(lambda engine: engine.delete_map_keys(META_RESTORE_ROOT, ids))
    return Change(META, update)


def to_prune(points: Sequence[RestorePoint], keep: int) -> list[RestorePoint]:
    """The points of one board past the newest ``keep``."""
    ordered = sorted(points, key=lambda p: (p.ts, p.id))
    return ordered[: max(len(ordered) - keep, 0)]


def restore_board(
    room: Room, doc: DocName, state: Update, *, shape_id: str | None = None
) -> Outcome:
    """Make board ``doc`` what restore point ``state`` holds (or put back
    shape ``shape_id`` alone, NotFound if the point lacks it); an ordinary
    board update. The caller keeps a point of the board before."""
    board = room.docs[doc]
    past = _shapes_of(board.engine, state)
    now = board.engine.read_map(BOARD_ROOT)
    if shape_id is not None:
        if shape_id not in past:
            raise NotFound("that shape is not in this restore point")
        put = {shape_id: past[shape_id]}
        drop: list[str] = []
    else:
        put = {k: v for k, v in past.items() if now.get(k) != v}
        drop = [k for k in now if k not in past]
    size = sum(len(repr(v)) for v in put.values())

    update = board.write(lambda engine: engine.put_shapes(BOARD_ROOT, put, drop), adding=size)
    target = f"shape {shape_id}" if shape_id is not None else "board"
    detail = f"{doc} {target} put={len(put)} deleted={len(drop)}"
    return Outcome(AuditAction.RESTORE, (Change(doc, update),), detail)


def without_shape(engine_type: type[Any], state: Update, shape_id: str) -> Update | None:
    """``state`` with shape ``shape_id`` taken out and garbage-collected (a
    redaction), or None if it does not hold the shape."""
    engine = engine_type()
    engine.apply_update(state)
    if shape_id not in engine.read_map(BOARD_ROOT):
        return None
    engine.delete_map_keys(BOARD_ROOT, [shape_id])
    rewritten = engine_type()
    rewritten.apply_update(engine.full_state())  # the encoded state has no deleted content
    return bytes(rewritten.full_state())


def shapes_in(engine_type: type[Any], state: Update) -> dict[str, Any]:
    """The shapes of a restore point's state, as JSON."""
    engine = engine_type()
    engine.apply_update(state)
    return dict(engine.read_map(BOARD_ROOT))


def _shapes_of(engine: Any, state: Update) -> dict[str, Any]:
    try:
        return shapes_in(type(engine), state)
    except Exception as exc:  # noqa: BLE001 - any engine error: a bad stored point
        raise InvalidPayload(f"the restore point cannot be read ({type(exc).__name__})") from None


def _write(room: Room, fields: dict[str, Any]) -> Change:
    meta = room.docs[META]
    update = meta.write(
        lambda engine: engine.set_map_fields(META_RESTORE_ROOT, fields),
        adding=sum(len(repr(v)) + 16 for v in fields.values()),
    )
    return Change(META, update)
