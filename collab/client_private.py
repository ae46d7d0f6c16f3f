"""The private line to the facilitators from Python (protocol.md §6.8), over
a connected :class:`~collab.client.CollabClient` (any document of the room)::

    async with CollabClient(url, "clinic-7/group-a", auth={"token": token}) as board:
        line = PrivateLine(board)
        ack = await line.send("Can I share something privately?")
        async with CollabClient(url, "clinic-7/group-a", ack["doc"], auth=...) as thread:
            print(thread_messages(thread))

A facilitator names the participant (``send(text, to=user_id)``) and lists
the room's threads (:meth:`PrivateLine.threads`). Each call returns its ack
or raises :class:`~collab.client.CollabClientError` with the server's code.
"""

from __future__ import annotations

import uuid
from typing import Any

from pycrdt import Array

from collab.client import CollabClient
from crdt.schemas import CHAT_ROOT
from rooms.private_line import PRIVATE_MESSAGE, PRIVATE_SEND, PRIVATE_THREADS, thread_doc

__all__ = ["PrivateLine", "thread_doc", "thread_messages"]


def thread_messages(thread: CollabClient) -> list[dict[str, Any]]:
    """The messages of the private thread ``thread`` is connected to."""
    return thread.doc.get(CHAT_ROOT, type=Array).to_py() or []


class PrivateLine:
    """``private:send`` and ``private:threads`` on ``client``'s connection."""

    def __init__(self, client: CollabClient) -> None:
        self.client = client

    async def send(
        self,
        text: Any,
        *,
        to: str | None = None,
        client_message_id: str | None = None,
        timeout_s: float = 10.0,
    ) -> dict[str, Any]:
        """Write to one's own thread (a participant) or to ``to``'s (a
        facilitator); the ack is ``{ok, id, ts, duplicate, doc}``."""
        payload: dict[str, Any] = {
            "text": text,
            "clientMessageId": client_message_id or uuid.uuid4().hex,
        }
        if to is not None:
            payload["to"] = to
        return await self.client.call(PRIVATE_SEND, payload, timeout_s=timeout_s)

    async def threads(self, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """``{ok, own, threads}``: a participant's own thread, or every thread
        of the room for a facilitator (ids, counts, times; no text)."""
        return await self.client.call(PRIVATE_THREADS, {}, timeout_s=timeout_s)

    def notices(self) -> list[Any]:
        """The ``private:message`` notices this connection receives from now
        on (a facilitator's: a thread has a new message)."""
        return self.client.listen(PRIVATE_MESSAGE)

    async def redact(self, doc: str, message_id: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """A facilitator redacts a message of private thread ``doc``."""
        payload = {"messageId": message_id, "doc": doc}
        return await self.client.call("mod:redact", payload, timeout_s=timeout_s)
