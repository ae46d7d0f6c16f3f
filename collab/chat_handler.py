"""``chat:send`` (protocol.md §6.1): a server-written chat message, stored
before it is acknowledged.

The message is appended to the room's chat document under the room's chat
lock, written to the store, and only then acknowledged and relayed; one the
store does not take is taken back out of the document and refused
``store_unavailable`` (the client sends it again with the same
``clientMessageId``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from collab.connections import Connection
from collab.emitter import Emitter
from collab.errors import RateLimited
from collab.extensions import ChatEvent, Extensions
from collab.logs import user_ref
from collab.metrics import Metrics
from collab.room_control import RoomControl
from collab.wire import ack_error, ack_ok, one_argument
from crdt.errors import CollabError, InvalidPayload
from crdt.types import DocName, Update
from rooms.chat import SendResult
from rooms.document import Document
from rooms.errors import StoreUnavailable
from rooms.names import CHAT
from rooms.registry import RoomRegistry
from rooms.room import Room

__all__ = ["CHAT_SEND", "ChatHandler"]

log = logging.getLogger("collab.sync")

CHAT_SEND = "chat:send"
SYNC_UPDATE = "sync-update"


class ChatHandler:
    """The ``chat:send`` handler and what it needs of the server."""

    def __init__(
        self,
        connections: dict[str, Connection],
        registry: RoomRegistry,
        emitter: Emitter,
        control: RoomControl,
        metrics: Metrics,
        extensions: Extensions,
    ) -> None:
        self.connections = connections
        self.registry = registry
        self.emitter = emitter
        self.control = control
        self.metrics = metrics
        self.extensions = extensions

    async def on_chat_send(self, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        """``chat:send {text, clientMessageId}`` → ack ``{ok, id, ts, duplicate}``.

        The ack means stored: the message is appended, written to the store,
        and only then acknowledged and relayed. If the store cannot take it,
        it is taken back out of the document and refused (``store_unavailable``);
        the client sends it again with the same ``clientMessageId``.
        """
        started = time.perf_counter()
        conn = self.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        try:
            payload = one_argument(args)
            if not isinstance(payload, dict):
                raise InvalidPayload("chat:send takes one object {text, clientMessageId}")
            async with self.registry.use(conn.room_id) as room:
                self.check_chat_rate(room, conn)  # before queueing for the lock
                async with room.chat_lock:
                    result = await self._append_chat(room, conn, payload)
        except CollabError as exc:
            self.emitter.refused(conn, CHAT_SEND, exc)
            return ack_error(exc)
        if result.update is not None:
            log.info(
                "chat message room=%s id=%s user=%s chars=%d",
                conn.room_id,
                result.message.id,
                user_ref(conn.identity.user_id),
                len(result.message.text),
            )
            self.emitter.broadcast(conn.room_id, CHAT, SYNC_UPDATE, result.update, started)
            self.emitter.changed(conn.room_id, CHAT, result.update, conn.identity)
            if self.extensions.wants("on_chat_message"):
                message = result.message.to_fields()
                self.extensions.notify(
                    "on_chat_message", ChatEvent(conn.room_id, message, conn.identity)
                )
        return ack_ok(id=result.message.id, ts=result.message.ts, duplicate=result.duplicate)

    async def _append_chat(
        self, room: Room, conn: Connection, payload: dict[str, Any]
    ) -> SendResult:
        return await self.append_message(room, conn, CHAT, payload)

    async def append_message(
        self,
        room: Room,
        conn: Connection,
        doc_name: DocName,
        payload: dict[str, Any],
        *,
        extra: dict[str, Any] | None = None,
    ) -> SendResult:
        """Append the message to ``doc_name`` (the chat or a private thread:
        collab.private_handler) and store it; called under the room's chat
        lock. A message the store did not take is taken back
        (StoreUnavailable). One whose ``clientMessageId`` another node stored
        first (the store checks it with the append) is taken back too, and
        the stored message is the answer, a duplicate (protocol.md §6.1)."""
        chat = await self.registry.document(conn.room_id, doc_name)
        # Other nodes' messages first, so this one is appended after them.
        await self.registry.settle(chat)
        if self.registry.reseeding(chat):
            # Redis lost this chat: its re-seed goes in before a new message
            # is made (a re-seed holds everything the document holds).
            with contextlib.suppress(OSError):
                await self.registry.flush_document(room, chat)
            if self.registry.reseeding(chat):
                raise StoreUnavailable("the message could not be stored; send it again")
        chat_log = (
            self.registry.chat(conn.room_id)
            if doc_name == CHAT
            else self.registry.private_log(conn.room_id, doc_name)
        )
        full = chat.full
        try:
            result = chat_log.send(
                conn.identity,
                payload.get("text"),
                payload.get("clientMessageId"),
                hold=True,
                extra=extra,
            )
        finally:
            if chat.full is not full:
                self.control.fullness_changed(conn.room_id)
        if result.update is None:
            return result
        try:
            await self._store_before_ack(room, chat, result.update)
            stored = chat_log.stored_elsewhere(result)
            if stored is not None:
                chat_log.take_back(result)
                return stored
        except StoreUnavailable:
            chat_log.take_back(result)
            raise
        finally:
            chat_log.settled(result)
            chat.release()
        return result

    def check_chat_rate(self, room: Room, conn: Connection) -> None:
        """RateLimited past the user's chat allowance in the room (a burst,
        then a steady rate; kept with the room, so reconnecting resets nothing)."""
        now = time.monotonic()
        bucket = room.chat_rates.get(conn.identity.user_id)
        if bucket is None:
            bucket = room.chat_rates[conn.identity.user_id] = (
                self.registry.limits.rates.chat.bucket(now)
            )
        if not bucket.take(now):
            self.metrics.refused("chat")
            raise RateLimited("chat messages past the limit; wait a moment")

    async def _store_before_ack(self, room: Room, doc: Document, update: Update) -> None:
        """Write ``update`` before acknowledging it; StoreUnavailable if the
        store did not take it (it is then still pending). With Redis the
        update may also have been refused as a duplicate (not pending, not
        stored: the chat log knows)."""
        try:
            await self.registry.flush_document(room, doc)
        except OSError as exc:
            log.warning("store write failed room=%s doc=%s: %s", room.id, doc.name, exc)
        if doc.is_pending(update):
            raise StoreUnavailable("the message could not be stored; send it again")
