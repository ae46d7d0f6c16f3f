"""A busy room for the layout tests: people present on the board (Python
clients with an awareness state, as the web app's people list reads it) and
the chat messages they send."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from collab.client import CollabClient
from tests.procs import CollabNode

#: Eight people besides the one in the browser: nine in all, as in a busy group.
NAMES = ("Ann", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana")


@contextlib.asynccontextmanager
async def crowd(
    collab: CollabNode, room: str, names: Sequence[str] = NAMES
) -> AsyncIterator[list[CollabClient]]:
    """Connect one board client per name (``--dev``: the name is trusted),
    each present in the room's awareness; closed on exit."""
    clients: list[CollabClient] = []
    try:
        for i, name in enumerate(names):
            client = CollabClient(collab.url, room, auth={"name": name}, reconnection=False)
            clients.append(client)
            await client.connect()
            await client.wait_synced()
            await client.set_awareness({"cursor": {"x": 40 + 30 * i, "y": 60 + 20 * i}})
        yield clients
    finally:
        for client in clients:
            await client.close()


async def chatter(clients: Sequence[CollabClient], messages: int) -> list[str]:
    """Send ``messages`` short chat messages, taking turns; return their texts."""
    texts = []
    for i in range(messages):
        text = f"msg {i + 1:02d}"
        await clients[i % len(clients)].send_chat(text)
        texts.append(text)
    return texts
