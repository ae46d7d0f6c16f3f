"""The server's clock as clients see it (protocol.md §6.4, §6.6): ``room:state``
carries ``serverTime`` and ``time:now`` answers with the time, so a client
shows the shared timer from the server's clock, never its own."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["server_time_ms", "with_server_time"]


def server_time_ms() -> int:
    """Now, in whole milliseconds since the Unix epoch."""
    return int(time.time() * 1000)


def with_server_time(state: dict[str, Any]) -> dict[str, Any]:
    """A ``room:state`` payload for a socket: ``state`` with ``serverTime`` (now)."""
    return {**state, "serverTime": server_time_ms()}
