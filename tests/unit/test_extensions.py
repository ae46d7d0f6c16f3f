"""collab.extensions without a server: the authenticate chain and its cache,
the order hooks are handed events in, queues and their bounds."""

from __future__ import annotations

from typing import Any

import pytest

from collab.extensions import ChangeEvent, Extension, Extensions
from crdt.types import DocName, RoomId, UserId
from rooms.errors import PermissionDenied
from rooms.identity import Identity, Role
from tests.waiting import until

ROOM = RoomId("clinic-7/group-a")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Asks(Extension):
    """Answers for one name; counts what it was asked."""

    def __init__(self, name: str, answer: str | None, priority: int = 100) -> None:
        self.name = name
        self.answer = answer
        self.priority = priority
        self.asked = 0

    async def authenticate(self, auth: Any, room: RoomId) -> Identity | None:
        self.asked += 1
        if auth.get("who") == "mallory":
            raise PermissionDenied("not this one")
        if self.answer is None:
            return None
        return Identity(UserId(self.answer), self.answer, Role.PARTICIPANT)


async def test_the_highest_priority_answers_and_none_passes_on():
    low, high, silent = (
        Asks("low", "from-low", 1),
        Asks("high", "from-high", 50),
        Asks("s", None, 99),
    )
    extensions = Extensions([low, high, silent])
    identity = await extensions.authenticate({"who": "ann"}, ROOM)
    assert identity is not None and identity.user_id == "from-high"
    assert (silent.asked, high.asked, low.asked) == (1, 1, 0)


async def test_answers_and_refusals_are_cached_per_payload_and_room_until_they_expire():
    clock = Clock()
    asks = Asks("a", "u-1")
    extensions = Extensions([asks], auth_cache_s=5.0, clock=clock)
    for _ in range(3):
        await extensions.authenticate({"who": "ann", "token": "t"}, ROOM)
    assert asks.asked == 1
    # The same payload in another key order is the same payload.
    await extensions.authenticate({"token": "t", "who": "ann"}, ROOM)
    assert asks.asked == 1
    await extensions.authenticate({"who": "ann", "token": "t"}, RoomId("clinic-7/group-b"))
    assert asks.asked == 2
    for _ in range(2):
        with pytest.raises(PermissionDenied):
            await extensions.authenticate({"who": "mallory"}, ROOM)
    assert asks.asked == 3
    clock.now = 5.1
    await extensions.authenticate({"who": "ann", "token": "t"}, ROOM)
    assert asks.asked == 4


async def test_the_cache_is_bounded():
    asks = Asks("a", "u-1")
    extensions = Extensions([asks], auth_cache_entries=3, clock=Clock())
    for i in range(5):
        await extensions.authenticate({"who": f"user-{i}"}, ROOM)
    await extensions.authenticate({"who": "user-0"}, ROOM)  # evicted: asked again
    assert asks.asked == 6


async def test_without_authenticators_collab_decides():
    assert await Extensions([]).authenticate({"token": "x"}, ROOM) is None


class Keeps(Extension):
    def __init__(self, name: str, priority: int, log: list[str]) -> None:
        self.name = name
        self.priority = priority
        self.log = log

    async def on_change(self, event: ChangeEvent) -> None:
        self.log.append(f"{self.name}:{event.update.decode()}")


async def test_each_extension_gets_every_event_in_order_and_only_its_hooks():
    log: list[str] = []
    first, second = Keeps("first", 10, log), Keeps("second", 5, log)
    extensions = Extensions([second, first])
    assert extensions.wants("on_change") and not extensions.wants("on_connect")
    await extensions.start(server=None)  # type: ignore[arg-type]
    for i in range(3):
        extensions.notify("on_change", ChangeEvent(ROOM, DocName("board"), b"%d" % i, None))
    await extensions.stop(timeout_s=1)
    assert [e for e in log if e.startswith("first")] == ["first:0", "first:1", "first:2"]
    assert [e for e in log if e.startswith("second")] == ["second:0", "second:1", "second:2"]
    assert log[0] == "first:0"  # the higher priority is handed each event first


async def test_a_full_queue_drops_its_oldest():
    log: list[str] = []
    keeps = Keeps("k", 1, log)
    keeps.queue_limit = 2
    extensions = Extensions([keeps])
    await extensions.start(server=None)  # type: ignore[arg-type]
    for i in range(5):  # handed over in one turn: the worker has not run yet
        extensions.notify("on_change", ChangeEvent(ROOM, DocName("board"), b"%d" % i, None))
    assert extensions.stats["k"] == (2, 3, 0)
    await until(lambda: len(log) == 2, what="the kept ones")
    assert log == ["k:3", "k:4"]
    await extensions.stop(timeout_s=1)
