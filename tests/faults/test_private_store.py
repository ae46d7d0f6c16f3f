"""The private line's ack means stored (protocol.md §6.8, §11.1): a real
``collab serve`` on SQLite whose database another process holds a write
lock on. A ``private:send`` then is refused ``store_unavailable`` and taken
back (neither the participant nor a facilitator ever sees it); sent again
with the same ``clientMessageId`` once the store is back, it is stored once,
and is still there after a restart."""

from __future__ import annotations

from typing import Any

from collab.client import CollabClient
from collab.client_private import PrivateLine, thread_messages
from tests.faults.test_store_outages import (
    WriteLock,
    chat_code,
    clients,
    server,
    wait_store,
)

ROOM = "lock-private"


async def thread_of(url: str, doc: str) -> list[dict[str, Any]]:
    """The thread's messages as a facilitator joining it now reads them."""
    reader = CollabClient(url, ROOM, doc, auth={"name": "Kim", "role": "facilitator"})
    try:
        await reader.connect()
        return thread_messages(reader)
    finally:
        await reader.close(drain_timeout_s=1)


async def test_a_private_message_the_store_cannot_take_is_refused_then_stored_once(tmp_path):
    async with server(tmp_path) as srv, clients() as group:
        ann = await group.join(srv.url, ROOM, "Ann")
        line = PrivateLine(ann)
        before = await line.send("before", client_message_id="p-before")
        doc = before["doc"]
        async with WriteLock(srv.db):
            code = await chat_code(line.send("during", client_message_id="p-during"))
            assert code == "store_unavailable"
            assert [m["text"] for m in await thread_of(srv.url, doc)] == ["before"]
        await wait_store(srv, "ok")
        ack = await line.send("during", client_message_id="p-during")
        assert ack["duplicate"] is False
        again = await line.send("during", client_message_id="p-during")
        assert again["duplicate"] is True and again["id"] == ack["id"]
        stored = await thread_of(srv.url, doc)
        assert [(m["clientMessageId"], m["id"]) for m in stored] == [
            ("p-before", before["id"]),
            ("p-during", ack["id"]),
        ]
        assert await srv.stop() == 0
        await srv.start()
        assert [m["id"] for m in await thread_of(srv.url, doc)] == [before["id"], ack["id"]]
