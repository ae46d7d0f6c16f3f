"""Which of a room's stored images (rooms.store.BlobStore) its boards still
use, and deleting those they do not (protocol.md §10.6).

An image is kept while any image shape of any board of its room names it
(``src``, crdt.schemas.image_digests). Two moments delete images:

- **A redaction** (``mod:redact-shape`` of an image shape): the image goes
  at once unless another shape of the room's boards names it. Every board
  the store holds is loaded first (and, with Redis, brought up to date with
  the shared log), so a board nobody has open still counts.
Images a restore point's board names are kept too, with the points' own
states (rooms.restore_points, stored as blobs of the room):
:func:`kept_by_history`.

- **An unload** (best effort): images no shape names go when the room
  unloads, if they were stored more than :data:`COLLECT_GRACE_MS` ago (an
  upload's shape may still be on its way: the upload and the shape that
  names it are two requests). Only on a single node: with Redis, other
  nodes may hold the room, and their clients' undo may bring a deleted
  shape back, so images wait for a redaction or the room's deletion. Only
  when every board the store holds is loaded (the room is leaving memory:
  nothing more is loaded now).

Deleting a room (the admin API, retention) deletes all its images with it
(``Store.delete_room``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from crdt.schemas import BOARD_ROOT, DocKind, image_digests
from crdt.types import DocName, RoomId
from rooms.names import META, doc_kind
from rooms.restore_points import points_of, shapes_in
from rooms.store import BlobStore

if TYPE_CHECKING:
    from rooms.document import Document
    from rooms.registry import RoomRegistry
    from rooms.room import Room

__all__ = [
    "COLLECT_GRACE_MS",
    "collect_unreferenced",
    "kept_by_history",
    "referenced",
    "release_images",
]

log = logging.getLogger("collab.rooms")

#: Images stored more recently than this are not collected at an unload.
COLLECT_GRACE_MS = 3_600_000.0


def referenced(boards: Iterable[Document]) -> set[str]:
    """The digests the image shapes of ``boards`` name."""
    found: set[str] = set()
    for doc in boards:
        found |= image_digests(doc.engine.read_map(BOARD_ROOT))
    return found


def _boards(names: Iterable[DocName]) -> set[DocName]:
    return {name for name in names if doc_kind(name) is DocKind.BOARD}


async def release_images(registry: RoomRegistry, room_id: RoomId, digests: Iterable[str]) -> int:
    """Delete those of ``digests`` no shape of the room's boards names (after
    a redaction); return how many went. The room must be in use (the caller
    holds it: ``registry.use``). OSError if the store fails."""
    store = registry.store
    wanted = set(digests)
    if not wanted or not isinstance(store, BlobStore):
        return 0
    room = registry.rooms[room_id]
    names = _boards(room.docs) | _boards(await store.list_documents(room_id))
    boards = [await registry.document(room_id, name) for name in sorted(names)]
    for doc in boards:
        await registry.settle(doc)  # with Redis: what other nodes wrote meanwhile
    unused = wanted - referenced(boards) - await kept_by_history(store, room)
    return await store.delete_blobs(room_id, sorted(unused)) if unused else 0


async def collect_unreferenced(store: BlobStore, room: Room, *, now_ms: float) -> int | None:
    """At an unload (one node, every stored board loaded in ``room``): delete
    the images no shape names that are older than :data:`COLLECT_GRACE_MS`;
    how many went, or None if a stored board is not loaded (nothing is
    deleted then). OSError if the store fails."""
    old = {
        b.digest
        for b in await store.list_blobs(room.id)
        if b.created_ms <= now_ms - COLLECT_GRACE_MS
    }
    if not old:
        return 0  # most rooms: nothing to look at
    stored = _boards(await store.list_documents(room.id))
    if not stored <= set(room.docs):
        return None
    if META not in room.docs:
        return None
    unused = old - referenced(doc for name, doc in room.docs.items() if name in _boards(room.docs))
    unused -= await kept_by_history(store, room)
    return await store.delete_blobs(room.id, sorted(unused)) if unused else 0


async def kept_by_history(store: BlobStore, room: Room) -> set[str]:
    """What the room's restore points keep (rooms.restore_points): their
    states, and the images their boards name (a restore brings those
    shapes back). Empty without the room's meta document."""
    if META not in room.docs:
        return set()
    kept: set[str] = set()
    engine_type = type(room.docs[META].engine)
    for point in points_of(room):
        kept.add(point.digest)
        found = await store.get_blob(room.id, point.digest)
        if found is None:
            continue
        try:
            kept |= image_digests(shapes_in(engine_type, found[0]))
        except Exception:  # noqa: BLE001 - a point that does not decode names no image
            log.warning("restore point unreadable room=%s point=%s", room.id, point.id)
    return kept
