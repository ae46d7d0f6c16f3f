"""Background loops that stop when asked, whatever a library does.

redis-py swallows a ``CancelledError`` that lands while it is establishing a
connection (it comes back as a connection error, or not at all), and a loop
that catches store errors to retry would then go on forever: shutdown, which
cancels the loop and awaits it, would hang. A loop that catches errors asks
:func:`stop_if_cancelled` after each one.
"""

from __future__ import annotations

import asyncio

__all__ = ["stop_if_cancelled"]


def stop_if_cancelled() -> None:
    """Raise CancelledError if the running task was asked to stop (a cancel
    some library in between did not pass on)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
