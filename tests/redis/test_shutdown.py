"""A node asked to stop right after it is ready stops, with Redis too.

redis-py swallows a cancellation that lands while it is connecting; the
background loops that retry store errors went on forever, and SIGTERM right
after start hung the node (rooms/tasks.py)."""

from __future__ import annotations

import signal

from tests.procs import CollabNode


async def test_sigterm_right_after_start_stops_the_node(redis_server, node_factory) -> None:
    for attempt in range(3):
        node: CollabNode = await node_factory(redis_server.url, f"quick{attempt}")
        assert node.proc is not None
        node.proc.send_signal(signal.SIGTERM)  # the moment it said it listens
        assert await node.stop() in (0, None)
        assert node.proc.returncode == 0, node.log()[-2000:]
