"""The structural check of a large payload, off the event loop (protocol.md §8.1).

A client's update is walked in Python before any engine sees it
(crdt.updates): about 3 µs a struct, 0.1 to 0.2 µs a byte, so a 1 MiB
update takes 100 ms or more, and the answer to the server's sync-step-1,
which may hold a whole board, seconds. On the event loop that would stall
every room. :class:`Offload` runs the check of a payload past
:data:`IN_THREAD_BYTES` in a worker thread, and the loop serves other
connections meanwhile; the check reads only immutable bytes.

The thread and the loop share the GIL. The loop gets it back each time it
wakes (for a message, after a write), and by default waits up to the
interpreter's switch interval (5 ms) each time, several times for one
message. So while a check runs the switch interval is 0.5 ms, restored
when the last check in the process ends. Checks run one at a time per
server: the loop then shares the GIL with one busy thread, not several.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["IN_THREAD_BYTES", "SWITCH_INTERVAL_S", "Offload"]

#: A payload larger than this is checked in a worker thread; a smaller one
#: in place (a thread costs more than it saves: 16 KiB take 2 to 3 ms).
IN_THREAD_BYTES = 16 << 10

#: The interpreter's switch interval while a check runs in a worker thread.
SWITCH_INTERVAL_S = 0.0005

_T = TypeVar("_T")


class Offload:
    """Checks of one server's large payloads, in a worker thread one at a time."""

    def __init__(self) -> None:
        self._one_at_a_time = asyncio.Semaphore(1)

    @staticmethod
    def in_place(data: bytes) -> bool:
        """Whether ``data`` is checked in place (up to IN_THREAD_BYTES): a
        caller on the hot path may then call the check itself, without
        :meth:`check`'s coroutine."""
        return len(data) <= IN_THREAD_BYTES

    async def check(self, check: Callable[[bytes], _T], data: bytes) -> _T:
        """``check(data)``: in place for up to IN_THREAD_BYTES, else in a
        worker thread, the event loop running meanwhile. Raises what
        ``check`` raises."""
        if self.in_place(data):
            return check(data)
        async with self._one_at_a_time:
            with _short_switch_interval:
                return await asyncio.to_thread(check, data)


class _SwitchInterval:
    """The process's switch interval, shortened while any check runs (a
    count, since several servers may share one process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved = sys.getswitchinterval()

    def __enter__(self) -> None:
        with self._lock:
            if self._running == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, SWITCH_INTERVAL_S))
            self._running += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                sys.setswitchinterval(self._saved)


_short_switch_interval = _SwitchInterval()
