"""Restore points on a live server (rooms.restore_points, protocol.md §5.5):
kept every few minutes of a board's activity, before a bulk deletion, before
a restore and when a facilitator asks (``mod:restore-point``); restored by a
facilitator (``mod:restore``, the board or one shape); shown to facilitators
(``restore:shapes``: the shapes a point holds that the board does not); and
rewritten when a shape is redacted, so that nothing redacted comes back.

A point's state is a blob of the room in the store (rooms.store.BlobStore):
a store without blobs keeps no points (``restore_unavailable``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from collab.errors import RestoreUnavailable
from crdt.errors import InvalidPayload
from crdt.schemas import BOARD_ROOT, DocKind, Shape
from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditAction
from rooms.document import Document
from rooms.errors import NotFound, StoreUnavailable
from rooms.identity import Identity
from rooms.moderation import MAX_SHAPE_ID_CHARS, Outcome, board_of, payload_fields
from rooms.moderation import RESTORE_EVENTS as MOD_RESTORE_EVENTS
from rooms.registry import RoomRegistry
from rooms.restore_points import (
    RESTORE_MEDIA_TYPE,
    Reason,
    RestorePoint,
    forget_points,
    make_point,
    points_of,
    record_point,
    restore_board,
    shapes_in,
    to_prune,
    without_shape,
)
from rooms.room import Room, RoomState
from rooms.store import BlobStore

__all__ = ["RESTORE_EVENTS", "RESTORE_QUERY", "RestoreControl"]

log = logging.getLogger("collab.restore")

#: The question this module answers: which shapes a point holds that the board lacks.
RESTORE_QUERY = "restore:shapes"
#: The facilitator events this module answers (``mod:*``: rooms.moderation.RESTORE_EVENTS).
RESTORE_EVENTS = (*MOD_RESTORE_EVENTS, RESTORE_QUERY)
#: How long a text of a shape ``restore:shapes`` lists may be.
_LABEL_CHARS = 80

Apply = Callable[[Room, Outcome, Identity | None], Awaitable[None]]


class RestoreControl:
    """Restore points of every loaded board (see the module docstring)."""

    def __init__(
        self,
        registry: RoomRegistry,
        apply: Apply,
        *,
        interval_s: float,
        keep: int,
        clock_ms: Callable[[], float] = lambda: time.time() * 1000.0,
    ) -> None:
        self.registry = registry
        #: Relay and store what a point or a restore changed (RoomControl.apply_outcome).
        self.apply = apply
        #: Activity this long after the newest point keeps a new one (0: never).
        self.interval_s = interval_s
        #: Points kept per board, newest first.
        self.keep_points = keep
        self.clock_ms = clock_ms
        #: The board states the activity loop saw last.
        self._seen: dict[tuple[RoomId, DocName], bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    @property
    def store(self) -> BlobStore | None:
        store = self.registry.store
        return store if isinstance(store, BlobStore) else None

    def start(self) -> None:
        if self.interval_s > 0 and self.store is not None and self._loop is None:
            self._loop = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._loop] if self._loop is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- keeping points --------------------------------------------------------------

    async def keep(
        self,
        room: Room,
        doc: DocName,
        reason: Reason,
        *,
        by: Identity | None = None,
        state: Update | None = None,
    ) -> RestorePoint:
        """Keep a point of board ``doc`` (as it is now, or ``state``) and drop
        the oldest past ``keep_points``; the point (an existing one if the
        board was kept as it is already). RestoreUnavailable without blobs,
        OSError if the store fails. The room must be in use."""
        store = self.store
        if store is None:
            raise RestoreUnavailable("this server's store keeps no restore points")
        board = room.docs[doc]
        if state is None:
            state, shapes = board.engine.full_state(), board.engine.map_size(BOARD_ROOT)
        else:
            shapes = len(shapes_in(type(board.engine), state))
        point = make_point(
            doc,
            state,
            reason=reason,
            by=by.user_id if by else None,
            shapes=shapes,
            now_ms=self.clock_ms(),
        )
        kept = {p.id: p for p in points_of(room, doc)}
        if point.id in kept:
            return kept[point.id]
        await store.put_blob(room.id, point.digest, state, RESTORE_MEDIA_TYPE)
        changes = [record_point(room, point)]
        pruned = to_prune([*kept.values(), point], self.keep_points)
        if pruned:
            changes.append(forget_points(room, [p.id for p in pruned]))
        await self.apply(room, Outcome(AuditAction.RESTORE, tuple(changes), ""), by)
        await self._drop_blobs(room, {p.digest for p in pruned})
        log.info(
            "restore point kept room=%s doc=%s reason=%s shapes=%d bytes=%d",
            room.id,
            doc,
            reason.value,
            shapes,
            len(state),
        )
        return point

    def bulk_deleted(self, room_id: RoomId, doc: Document) -> None:
        """A client's update removed many shapes of ``doc`` at once: keep the
        board as it was before (Document.bulk_deleted), in the background."""
        state, doc.bulk_deleted = doc.bulk_deleted, None
        if state is None or self.store is None:
            return

        async def keep() -> None:
            try:
                async with self.registry.use(room_id) as room:
                    if room.docs.get(doc.name) is doc:
                        await self.keep(room, doc.name, Reason.BULK_DELETE, state=state)
            except (OSError, RestoreUnavailable, StoreUnavailable) as exc:
                log.error("restore point before a bulk deletion failed room=%s: %s", room_id, exc)

        task = asyncio.get_running_loop().create_task(keep())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self) -> None:
        """Every few seconds, keep a point of each loaded board that changed
        since it was last looked at and whose newest point is older than
        ``interval_s``."""
        tick = max(min(self.interval_s / 5, 60.0), 0.05)
        while True:
            await asyncio.sleep(tick)
            loaded = {room_id for room_id in self.registry.rooms}
            self._seen = {k: v for k, v in self._seen.items() if k[0] in loaded}
            for room in list(self.registry.rooms.values()):
                await self.look_at(room)

    async def look_at(self, room: Room) -> None:
        """One pass of the activity loop over ``room``: keep a point of each
        board that changed since it was last looked at, if its newest point
        is ``interval_s`` old."""
        if room.state not in (RoomState.ACTIVE, RoomState.IDLE):
            return
        for name, doc in list(room.docs.items()):
            if doc.kind is not DocKind.BOARD:
                continue
            key, state = (room.id, name), doc.engine.state_vector()
            seen = self._seen.get(key)
            self._seen.setdefault(key, state)
            if seen is None or seen == state:
                continue
            newest = max((p.ts for p in points_of(room, name)), default=0.0)
            if self.clock_ms() - newest < self.interval_s * 1000.0:
                continue
            try:
                async with self.registry.use(room.id):
                    await self.keep(room, name, Reason.AUTO)
            except (OSError, StoreUnavailable) as exc:
                log.warning("restore point failed room=%s doc=%s: %s", room.id, name, exc)
                continue
            self._seen[key] = state

    # -- facilitator events ------------------------------------------------------------

    async def handle(
        self, event: str, room: Room, actor: Identity, payload: Any
    ) -> tuple[Outcome | None, dict[str, Any]]:
        """A facilitator's ``RESTORE_EVENTS`` event (the caller checked the
        role and loaded the board): what changed and the ack's fields."""
        if event == RESTORE_QUERY:
            return None, {"shapes": await self._missing_shapes(room, payload)}
        if event == "mod:restore-point":
            doc = board_of(room, payload_fields(payload, {"doc": str}))
            point = await self._stored(self.keep(room, doc, Reason.MANUAL, by=actor))
            kept = Outcome(AuditAction.RESTORE, (), f"{doc} point={point.id} kept")
            return kept, {"point": {"id": point.id, **point.to_fields()}}
        fields = payload_fields(payload, {"pointId": str, "shapeId": str, "doc": str})
        doc = board_of(room, fields)
        point, state = await self._point(room, doc, fields.get("pointId"))
        shape_id = fields.get("shapeId")
        if shape_id is not None and not 1 <= len(shape_id) <= MAX_SHAPE_ID_CHARS:
            raise InvalidPayload(f"shapeId must be 1-{MAX_SHAPE_ID_CHARS} characters")
        if shape_id is None:
            await self._stored(self.keep(room, doc, Reason.BEFORE_RESTORE, by=actor))
        outcome = restore_board(room, doc, state, shape_id=shape_id)
        return replace(outcome, detail=f"{outcome.detail} point={point.id}"), {}

    async def _point(self, room: Room, doc: DocName, point_id: Any) -> tuple[RestorePoint, Update]:
        if not isinstance(point_id, str) or not 1 <= len(point_id) <= 64:
            raise InvalidPayload("pointId must be a restore point id")
        point = next((p for p in points_of(room, doc) if p.id == point_id), None)
        store = self.store
        if store is None:
            raise RestoreUnavailable("this server's store keeps no restore points")
        if point is None:
            raise NotFound("no such restore point of this board")
        found = await self._stored(store.get_blob(room.id, point.digest))
        if found is None or found[1] != RESTORE_MEDIA_TYPE:
            raise NotFound("the restore point's state is gone")
        return point, found[0]

    async def _missing_shapes(self, room: Room, payload: Any) -> list[dict[str, Any]]:
        """The shapes restore point ``pointId`` holds that the board lacks:
        id, type and the start of its text (for a facilitator to pick one)."""
        fields = payload_fields(payload, {"pointId": str, "doc": str})
        doc = board_of(room, fields)
        _, state = await self._point(room, doc, fields.get("pointId"))
        board = room.docs[doc]
        now = board.engine.read_map(BOARD_ROOT)
        found = []
        for shape_id, value in shapes_in(type(board.engine), state).items():
            shape = Shape.from_json(shape_id, value)
            if shape_id in now or shape is None:
                continue
            found.append(
                {"id": shape_id, "type": shape.type.value, "text": shape.text[:_LABEL_CHARS]}
            )
        return found

    @staticmethod
    async def _stored(call: Awaitable[Any]) -> Any:
        try:
            return await call
        except OSError as exc:
            raise StoreUnavailable("the server cannot read or keep restore points now") from exc

    # -- redaction -------------------------------------------------------------------

    async def forget_shape(self, room: Room, doc: DocName, shape_id: str) -> None:
        """Take a redacted shape out of every restore point of board ``doc``
        (rewritten without it, garbage-collected); a point that cannot be
        rewritten is forgotten instead. Store failures are logged: the
        points that still hold it are then forgotten from meta, so no
        facilitator can restore them."""
        store = self.store
        if store is None:
            return
        engine_type = type(room.docs[doc].engine)
        rewritten, forgotten, old = [], [], set()
        for point in points_of(room, doc):
            try:
                found = await store.get_blob(room.id, point.digest)
                state = found[0] if found is not None else None
                clean = without_shape(engine_type, state, shape_id) if state else None
                if clean is None:
                    continue
                digest = hashlib.sha256(clean).hexdigest()
                new = replace(point, digest=digest, size=len(clean))
                await store.put_blob(room.id, new.digest, clean, RESTORE_MEDIA_TYPE)
                rewritten.append(new)
            except OSError as exc:
                log.error("restore point rewrite failed room=%s doc=%s: %s", room.id, doc, exc)
                forgotten.append(point)
            old.add(point.digest)
        changes = [record_point(room, p) for p in rewritten]
        if forgotten:
            changes.append(forget_points(room, [p.id for p in forgotten]))
        if changes:
            await self.apply(room, Outcome(AuditAction.RESTORE, tuple(changes), ""), None)
        await self._drop_blobs(room, old)

    async def _drop_blobs(self, room: Room, digests: set[str]) -> None:
        """Delete the point states no point names any more (best effort)."""
        store = self.store
        unused = digests - {p.digest for p in points_of(room)}
        if store is None or not unused:
            return
        try:
            await store.delete_blobs(room.id, sorted(unused))
        except OSError as exc:
            log.warning("restore point deletion failed room=%s: %s", room.id, exc)
