"""Waiting in tests: on a condition, with a deadline; never for a fixed time.

``until`` polls a predicate (plain or async) and fails with the condition's
name when the deadline passes: on a busy machine a test waits longer, it does
not flake. ``let_io_run`` is not a wait: it yields once to the event loop, so
network reads and writes interleave with a burst of local edits.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

__all__ = ["let_io_run", "until"]

#: How often ``until`` looks again (seconds).
POLL_S = 0.01


async def until(
    predicate: Callable[[], bool | Awaitable[bool]],
    *,
    timeout_s: float = 10.0,
    what: str = "condition",
) -> None:
    """Return once ``predicate()`` is true; fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(POLL_S)


async def let_io_run() -> None:
    """Yield to the event loop once (not a wait)."""
    await asyncio.sleep(0)
