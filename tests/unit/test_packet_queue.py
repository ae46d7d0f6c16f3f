"""collab.packet_queue.PacketQueue: asyncio.Queue's behaviour for what
engine.io uses, unbounded, with one deque."""

from __future__ import annotations

import asyncio

import pytest

from collab.packet_queue import PacketQueue
from tests.waiting import until


async def getters_waiting(q: PacketQueue, count: int) -> None:
    """Until ``count`` gets wait on ``q`` (they have reached their await)."""
    await until(lambda: len(q._getters or ()) == count, what=f"{count} waiting gets")


async def joining(q: PacketQueue) -> None:
    """Until a join waits on ``q``."""
    await until(lambda: q._finished is not None, what="a waiting join")


async def test_items_come_out_in_order_and_get_waits_for_one():
    q = PacketQueue()
    q.put_nowait(1)
    await q.put(2)
    assert (q.qsize(), q.empty(), q.full()) == (2, False, False)
    assert [q.get_nowait(), await q.get()] == [1, 2]
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()
    waiting = asyncio.ensure_future(q.get())
    await getters_waiting(q, 1)
    assert not waiting.done()
    q.put_nowait(3)
    assert await waiting == 3


async def test_a_cancelled_get_loses_nothing_and_the_next_getter_is_woken():
    q = PacketQueue()
    first = asyncio.ensure_future(q.get())
    second = asyncio.ensure_future(q.get())
    await getters_waiting(q, 2)
    q.put_nowait("a")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it takes the item
    assert await second == "a"
    assert first.cancelled()
    assert q._getters is None


async def test_a_get_under_wait_for_times_out_cleanly():
    q = PacketQueue()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(q.get(), 0.01)
    q.put_nowait("later")
    assert await asyncio.wait_for(q.get(), 1) == "later"


async def test_join_waits_until_every_item_is_done():
    q = PacketQueue()
    await q.join()  # nothing queued: returns at once
    q.put_nowait("x")
    q.put_nowait("y")
    joiners = [asyncio.ensure_future(q.join()) for _ in range(2)]
    await joining(q)
    q.get_nowait()
    q.task_done()
    assert q._finished is not None  # one item is still not done: nobody is woken
    assert not any(j.done() for j in joiners)
    q.get_nowait()
    q.task_done()
    await asyncio.gather(*joiners)
    with pytest.raises(ValueError):
        q.task_done()


async def test_a_cancelled_joiner_leaves_the_others_waiting():
    q = PacketQueue()
    q.put_nowait("x")
    one, two = asyncio.ensure_future(q.join()), asyncio.ensure_future(q.join())
    await joining(q)
    one.cancel()
    await until(one.done, what="the cancelled join ended")
    assert one.cancelled()
    assert not two.done() and not q._finished.done()
    q.get_nowait()
    q.task_done()
    await two
