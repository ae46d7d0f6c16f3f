"""Room lifecycle: loading once, unloading after a grace period, flushing,
failures of the store, and memory after many rooms."""

from __future__ import annotations

import asyncio
import gc
import weakref
import zlib
from collections.abc import Sequence

import pytest
from pycrdt import Doc, Map

from crdt.engine import engine_factory
from crdt.types import DocName, RoomId, Update, UserId
from rooms.errors import RoomUnavailable
from rooms.identity import Identity, Role
from rooms.limits import Limits
from rooms.registry import RoomRegistry
from rooms.room import RoomState
from rooms.store import LogPosition, StoredDoc
from rooms.store_memory import MemoryStore
from tests.waiting import let_io_run, until

BOARD = DocName("board")
ANN = Identity(UserId("u-ann"), "Ann", Role.PARTICIPANT)


class CountingStore(MemoryStore):
    """The memory store, counting calls and failing on demand (fault injection)."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.fail_loads = 0
        self.fail_appends = 0
        self.append_gate: asyncio.Event | None = None

    async def load(self, room: RoomId, doc: DocName) -> StoredDoc:
        self.loads += 1
        await let_io_run()  # a real store suspends here: let joins race
        if self.fail_loads:
            self.fail_loads -= 1
            raise OSError("disk on fire")
        return await super().load(room, doc)

    async def append(self, room: RoomId, doc: DocName, updates: Sequence[Update]) -> LogPosition:
        if self.append_gate is not None:
            await self.append_gate.wait()
        if self.fail_appends:
            self.fail_appends -= 1
            raise OSError("disk full")
        return await super().append(room, doc, updates)


def make_registry(store: MemoryStore, **kwargs) -> RoomRegistry:
    kwargs.setdefault("unload_after_s", 0.05)
    kwargs.setdefault("flush_interval_s", 0.05)
    return RoomRegistry(
        store=store, engine_factory=engine_factory("pycrdt"), limits=Limits(), **kwargs
    )


def shape_update(key: str) -> bytes:
    """The same bytes for the same key (a client id derived from it)."""
    doc = Doc(client_id=zlib.crc32(key.encode()))
    doc.get("shapes", type=Map)[key] = {"type": "rect"}
    return bytes(doc.get_update())


def stored_shapes(store: MemoryStore, room: str) -> dict:
    entry = store._docs.get((RoomId(room), BOARD))
    doc = Doc()
    if entry is None:
        return {}
    if entry.snapshot:
        doc.apply_update(entry.snapshot)
    for _, u in entry.log:
        doc.apply_update(u)
    return doc.get("shapes", type=Map).to_py() or {}


async def test_concurrent_joins_load_once():
    store = CountingStore()
    registry = make_registry(store)
    docs = await asyncio.gather(
        *(registry.join(RoomId("r"), BOARD, f"m{i}", ANN) for i in range(20))
    )
    assert store.loads == 2, "one load each of the meta document and the board"
    assert all(d is docs[0] for d in docs)
    assert len(docs[0].members) == 20


async def test_unload_after_grace_period_flushes():
    store = CountingStore()
    registry = make_registry(store, flush_interval_s=60)  # only the unload can flush
    registry.start()
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    doc.receive_update(shape_update("a"), ANN)
    registry.leave(doc, "m1")
    assert registry.rooms[RoomId("r")].state is RoomState.IDLE
    await until(lambda: not registry.rooms)
    assert stored_shapes(store, "r") == {"a": {"type": "rect"}}
    await registry.close()


async def test_rejoin_during_grace_keeps_room():
    store = CountingStore()
    registry = make_registry(store, unload_after_s=0.3)
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    room = registry.rooms[RoomId("r")]
    registry.leave(doc, "m1")
    again = await registry.join(RoomId("r"), BOARD, "m2", ANN)
    assert again is doc and registry.rooms[RoomId("r")] is room
    assert room.state is RoomState.ACTIVE
    assert room.unload_timer is None, "the rejoin cancelled the grace period"
    assert registry.rooms[RoomId("r")] is room
    assert store.loads == 2  # meta and board, once


async def test_join_while_unloading_waits_for_the_flush():
    store = CountingStore()
    registry = make_registry(store, unload_after_s=0, flush_interval_s=60)
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    doc.receive_update(shape_update("kept"), ANN)
    store.append_gate = asyncio.Event()
    old_room = registry.rooms[RoomId("r")]
    registry.leave(doc, "m1")
    await until(lambda: old_room.state is RoomState.UNLOADING)
    joining = asyncio.ensure_future(registry.join(RoomId("r"), BOARD, "m2", ANN))
    for _ in range(20):  # ample turns for a join that does not wait to finish
        await let_io_run()
    assert not joining.done(), "a join must not read the store before the old flush"
    store.append_gate.set()
    fresh = await asyncio.wait_for(joining, 5)
    assert fresh is not doc
    assert fresh.engine.read_map("shapes") == {"kept": {"type": "rect"}}
    assert old_room.state is RoomState.UNLOADED


async def test_load_failure_is_typed_and_retried():
    store = CountingStore()
    store.fail_loads = 1
    registry = make_registry(store)
    with pytest.raises(RoomUnavailable):
        await registry.join(RoomId("r"), BOARD, "m1", ANN)
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    assert doc.members == {"m1"}
    assert store.loads == 3  # the failed meta load, then meta and board


async def test_flush_failure_keeps_updates_in_order():
    store = CountingStore()
    registry = make_registry(store, unload_after_s=60)
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    doc.receive_update(shape_update("first"), ANN)
    store.fail_appends = 1
    with pytest.raises(OSError):
        await registry.flush_all()
    assert len(doc.pending) == 1
    doc.receive_update(shape_update("second"), ANN)
    await registry.flush_all()
    assert doc.pending == []
    entry = store._docs[(RoomId("r"), BOARD)]
    assert [u for _, u in entry.log] == [shape_update("first"), shape_update("second")]
    assert doc.log_length == 2


async def test_a_flush_round_visits_only_the_rooms_with_something_to_do(monkeypatch):
    # Thousands of idle rooms (1:1 sessions) must not each cost a round.
    store = CountingStore()
    registry = make_registry(store, compact_after_updates=3, unload_after_s=60)
    persistence = registry.persistence
    visited: list[list[str]] = []
    flush_rooms = persistence._flush_rooms

    async def recording(rooms, **kwargs):
        visited.append(sorted(room.id for room in rooms))
        await flush_rooms(rooms, **kwargs)

    monkeypatch.setattr(persistence, "_flush_rooms", recording)
    docs = [await registry.join(RoomId(f"r{i}"), BOARD, "m1", ANN) for i in range(20)]
    await registry.flush_all()
    assert visited[-1] == [], "joined, nothing written: nothing to do"
    docs[7].receive_update(shape_update("a"), ANN)
    await registry.flush_all()
    assert visited[-1] == ["r7"]
    assert stored_shapes(store, "r7") == {"a": {"type": "rect"}}
    room7 = registry.rooms[RoomId("r7")]
    assert room7.recorded and room7.info_saved
    await registry.flush_all()
    assert visited[-1] == [], "written and its record saved: idle again"
    # A compaction due (the log past its bound, after a failed try) is something to do.
    for i in range(2):
        docs[3].receive_update(shape_update(f"c{i}"), ANN)
        await registry.flush_all()
    docs[3].log_length = 3
    await registry.flush_all()
    assert visited[-1] == ["r3"]
    assert docs[3].log_length == 0 and store._docs[(RoomId("r3"), BOARD)].snapshot
    await registry.flush_all()
    assert visited[-1] == []


async def test_compaction_bounds_the_log():
    store = CountingStore()
    registry = make_registry(store, compact_after_updates=5, unload_after_s=60)
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    for i in range(12):
        doc.receive_update(shape_update(f"s{i}"), ANN)
        await registry.flush_all()
    entry = store._docs[(RoomId("r"), BOARD)]
    assert entry.snapshot is not None
    assert len(entry.log) < 5
    assert set(stored_shapes(store, "r")) == {f"s{i}" for i in range(12)}


async def test_close_flushes_and_refuses_new_joins():
    store = CountingStore()
    registry = make_registry(store, flush_interval_s=60, unload_after_s=60)
    registry.start()
    doc = await registry.join(RoomId("r"), BOARD, "m1", ANN)
    doc.receive_update(shape_update("x"), ANN)
    await registry.close()
    assert set(stored_shapes(store, "r")) == {"x"}
    with pytest.raises(RoomUnavailable):
        await registry.join(RoomId("r2"), BOARD, "m1", ANN)


async def test_thousand_rooms_leave_nothing_behind():
    store = CountingStore()
    registry = make_registry(store, unload_after_s=0, flush_interval_s=60)
    refs: list[weakref.ref] = []
    for batch in range(10):
        docs = await asyncio.gather(
            *(registry.join(RoomId(f"room-{batch}-{i}"), BOARD, "m", ANN) for i in range(100))
        )
        for doc in docs:
            doc.receive_update(shape_update("s"), ANN)
            refs.append(weakref.ref(doc))
            refs.append(weakref.ref(doc.engine._doc))  # the pycrdt Doc itself
            registry.leave(doc, "m")
        del docs, doc  # the test's own references
    await until(lambda: not registry.rooms, timeout_s=20)
    assert registry.document_count == 0
    gc.collect()
    alive = sum(1 for r in refs if r() is not None)
    assert alive == 0, f"{alive} documents or engines are still referenced"
    assert len(await store.list_rooms()) == 1000  # everything was flushed first
