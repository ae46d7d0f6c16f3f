"""An Engine.IO session's packet queue, lighter than ``asyncio.Queue``.

engine.io keeps one queue per session (``AsyncServer.create_queue``): the
packets its writer, or a long-polling GET, sends next. An ``asyncio.Queue``
holds four deques (items, getters, putters, and its ``join`` event's
waiters) of about 600 bytes each before anything is queued: with 10,000
idle connections, some 24 MB for queues that are empty nearly always
(BENCHMARKS.md, ``bench conns``). :class:`PacketQueue` has the same
behaviour for what engine.io and collab use (unbounded: ``put`` never
waits), with one deque; getters and joiners get a future only while they
wait. ``_queue`` is the deque, as in ``asyncio.Queue`` (collab.broadcast
reads it through ``upstream.queue_items``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol

import engineio.packet

__all__ = ["Outbox", "PacketQueue", "PacketWriter"]


class PacketQueue:
    """An unbounded FIFO of packets with ``asyncio.Queue``'s methods."""

    __slots__ = ("_finished", "_getters", "_queue", "_unfinished")

    def __init__(self) -> None:
        self._queue: deque[Any] = deque()
        #: Futures of the gets waiting for an item, oldest first (None: none).
        self._getters: list[asyncio.Future[None]] | None = None
        self._unfinished = 0
        #: What ``join`` waits on, while it waits.
        self._finished: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._queue)

    def empty(self) -> bool:
        return not self._queue

    def full(self) -> bool:
        return False

    def put_nowait(self, item: Any) -> None:
        self._queue.append(item)
        self._unfinished += 1
        self._wake_getter()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._queue:
            raise asyncio.QueueEmpty
        return self._queue.popleft()

    async def get(self) -> Any:
        while not self._queue:
            waiter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                self._drop_getter(waiter)
                if waiter.done() and not waiter.cancelled() and self._queue:
                    self._wake_getter()  # it was woken for an item it will not take
                raise
            self._drop_getter(waiter)
        return self._queue.popleft()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._finished is not None:
            if not self._finished.done():
                self._finished.set_result(None)
            self._finished = None

    async def join(self) -> None:
        if self._unfinished == 0:
            return
        if self._finished is None:
            self._finished = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._finished)

    def _wake_getter(self) -> None:
        getters = self._getters
        if getters:
            for waiter in getters:
                if not waiter.done():
                    waiter.set_result(None)
                    return

    def _drop_getter(self, waiter: asyncio.Future[None]) -> None:
        getters = self._getters
        if getters is not None:
            if waiter in getters:
                getters.remove(waiter)
            if not getters:
                self._getters = None


class PacketWriter(Protocol):
    """What an :class:`Outbox` writes to (collab.ws_connection.Connection)."""

    @property
    def writable(self) -> bool: ...

    def send_packet(self, pkt: Any) -> None: ...

    def send_message(self, data: str | bytes) -> None: ...

    def hold_writes(self) -> None: ...


class Outbox(PacketQueue):
    """An Engine.IO session's queue that writes what is put in it to the
    connection's transport at once, and holds it only while the connection
    cannot take it (before the open, or while the transport pauses writing)."""

    __slots__ = ("_connection",)

    def __init__(self, connection: PacketWriter) -> None:
        super().__init__()
        self._connection = connection

    def put_nowait(self, item: Any) -> None:
        connection = self._connection
        if connection.writable and not self._queue:
            connection.send_packet(item)
        else:
            super().put_nowait(item)

    def put_message(self, data: str | bytes) -> None:
        """An Engine.IO MESSAGE carrying ``data``: written at once as
        :meth:`put_nowait` would write it, without making its packet unless
        it has to be held."""
        connection = self._connection
        if connection.writable and not self._queue:
            connection.send_message(data)
        else:
            super().put_nowait(engineio.packet.Packet(engineio.packet.MESSAGE, data=data))

    def hold_writes(self) -> None:
        """What is written now leaves with what the callback scheduled right
        after this call writes (its connection's ``hold_writes``)."""
        self._connection.hold_writes()

    def flush(self) -> None:
        """Write what was held, while the connection takes it."""
        items = self._queue
        connection = self._connection
        while items and connection.writable:
            item = items.popleft()
            self.task_done()
            connection.send_packet(item)

    def discard(self) -> None:
        """The connection is gone: what was held never will be written."""
        while self._queue:
            self._queue.popleft()
            self.task_done()
