"""The replication seam (rooms.nodes): a store names its strategy, the
registry drives whichever it is through one interface, and the one write
path keeps a deletion final."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from crdt.types import DocName, RoomId
from rooms.document import Document
from rooms.nodes import SingleNode
from rooms.room import Room
from rooms.store import RoomInfo, StoredDoc
from rooms.store_memory import MemoryStore
from rooms.store_sqlite import SqliteStore
from tests.unit.test_registry import ANN, BOARD, CountingStore, make_registry, shape_update
from tests.waiting import until


def test_a_store_one_process_owns_names_the_single_node_strategy(tmp_path):
    for store in (MemoryStore(), SqliteStore(tmp_path / "c.db")):
        replication = store.replication(node_id="n", awareness_timeout_s=30.0)
        assert isinstance(replication, SingleNode)
        assert replication.shared is False
        assert replication.counters() == {}


class RecordingNode(SingleNode):
    """The single-node strategy, recording what the registry asks of it."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store)
        self.calls: list[str] = []

    async def before_load(self, room: RoomId, doc: DocName) -> None:
        self.calls.append(f"before_load {doc}")

    def loaded(self, doc: Document, stored: StoredDoc, on_pending) -> None:
        self.calls.append(f"loaded {doc.name}")

    async def write(self, rooms: Sequence[Room]) -> list[Room]:
        self.calls.append(f"write {len(rooms)}")
        return await super().write(rooms)

    def forget(self, room: RoomId, docs: Sequence[DocName]) -> None:
        self.calls.append(f"forget {sorted(docs)}")

    def publish_delete(self, room: RoomId) -> None:
        self.calls.append("publish_delete")


async def test_the_registry_drives_the_strategy_it_is_given():
    store = MemoryStore()
    node = RecordingNode(store)
    registry = make_registry(store, unload_after_s=60, replication=node)
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    assert node.calls == ["before_load meta", "loaded meta", "before_load board", "loaded board"]
    doc.receive_update(shape_update("a"), ANN)
    await registry.flush_all()
    assert node.calls[-1] == "write 1"
    assert (await store.load(RoomId("r"), BOARD)).log_length == 1
    await registry.delete_room(RoomId("r"))
    assert node.calls[-2:] == ["forget ['board', 'meta']", "publish_delete"]


async def test_a_deletion_racing_a_flush_writes_nothing_back():
    """A flush in flight when a facilitator deletes the room finishes first;
    nothing of the room (a compaction's snapshot, a record) is written after
    the deletion."""
    store = CountingStore()
    registry = make_registry(store, unload_after_s=60, compact_after_updates=1)
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    doc.receive_update(shape_update("a"), ANN)
    store.append_gate = asyncio.Event()
    flush = asyncio.create_task(registry.flush_all())
    await until(lambda: doc.pending == [])  # the append is in flight
    room = registry.rooms[RoomId("r")]
    deletion = asyncio.create_task(registry.delete_room(RoomId("r")))
    await until(lambda: room.deleted)  # the deletion waits for the flush
    store.append_gate.set()
    await asyncio.gather(flush, deletion)
    stored = await store.load(RoomId("r"), BOARD)
    assert stored.snapshot is None and stored.log_length == 0
    assert await store.load_room_info(RoomId("r")) is None


class RecordAfterDeleteStore(CountingStore):
    """Holds a room record's write until the room has been deleted: the
    order in which a flush in flight and a deletion may interleave."""

    def __init__(self) -> None:
        super().__init__()
        self.deleted = asyncio.Event()

    async def save_room_info(self, info: RoomInfo) -> None:
        await self.deleted.wait()
        await super().save_room_info(info)

    async def delete_room(self, room: RoomId) -> None:
        await super().delete_room(room)
        self.deleted.set()


async def test_a_record_a_flush_was_about_to_write_stays_deleted():
    store = RecordAfterDeleteStore()
    registry = make_registry(store, unload_after_s=60)
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    doc.receive_update(shape_update("a"), ANN)
    store.append_gate = asyncio.Event()
    flush = asyncio.create_task(registry.flush_all())
    await until(lambda: doc.pending == [])
    deletion = asyncio.create_task(registry.delete_room(RoomId("r")))
    store.append_gate.set()
    await asyncio.wait_for(asyncio.gather(flush, deletion), 5)
    assert await store.load_room_info(RoomId("r")) is None
