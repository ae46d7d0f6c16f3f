"""The private line on the Socket.IO side (protocol.md §6.8): ``private:send``
and ``private:threads``, the audit record of each read, and the
``private:message`` notice to the room's facilitators and the thread's participant.

A message is the chat's (collab.chat_handler ``append_message``): stamped by
the server, idempotent per (user, ``clientMessageId``) across nodes, stored
before it is acknowledged, under the room's chat lock and the user's chat
allowance. It goes to the members of the thread's document only; the group
chat never holds it, and extensions are not told (no ``on_change``, no
``on_chat_message``: it is health information). Logs carry ids and sizes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from collab.chat_handler import ChatHandler
from collab.connections import Connection, ConnectionTable
from collab.emitter import Emitter
from collab.export import PrivateThread
from collab.logs import user_ref
from collab.wire import ack_error, ack_ok, one_argument
from crdt.errors import CollabError, InvalidPayload
from crdt.schemas import CHAT_ROOT, read_chat
from crdt.types import DocName
from rooms import private_line
from rooms.audit import AuditAction
from rooms.errors import InvalidName, PrivateLineForbidden, PrivateThreadLimit, RoomUnavailable
from rooms.identity import Identity, Role
from rooms.names import is_private, validate_doc_name
from rooms.private_line import (
    PRIVATE_MESSAGE,
    PRIVATE_SEND,
    PRIVATE_THREADS,
    THREAD_OF,
    recipient,
    thread_doc,
    thread_owner,
    thread_summary,
)
from rooms.registry import RoomRegistry
from rooms.room import Room
from rooms.store import BlobStore

__all__ = ["MAX_LISTED_THREADS", "PrivateHandler", "private_threads"]

log = logging.getLogger("collab.sync")

SYNC_UPDATE = "sync-update"
#: The most threads one ``private:threads`` answer lists (newest first).
MAX_LISTED_THREADS = 500
_SEND_FIELDS = frozenset({"to", "text", "clientMessageId"})

Handler = Callable[..., Awaitable[dict[str, Any]]]
RemoteEvent = Callable[[Room, str, dict[str, Any]], None]


class PrivateHandler:
    """The private line's events, and what a read of a thread leaves in the audit log."""

    def __init__(
        self,
        connections: ConnectionTable,
        registry: RoomRegistry,
        emitter: Emitter,
        chat: ChatHandler,
    ) -> None:
        self.connections = connections
        self.registry = registry
        self.emitter = emitter
        self.chat = chat

    def handlers(self) -> dict[str, Handler]:
        return {PRIVATE_SEND: self.on_send, PRIVATE_THREADS: self.on_threads}

    def remote_events(self, others: RemoteEvent) -> RemoteEvent:
        """The registry's ``on_remote_event``: another node's ``private:message``
        goes to this node's facilitators and the thread's participant;
        anything else to ``others``."""

        def on_remote_event(room: Room, event: str, data: dict[str, Any]) -> None:
            if event != PRIVATE_MESSAGE:
                others(room, event, data)
                return
            notice = _notice_fields(data)
            if notice is None:
                log.warning("dropped a private:message from another node room=%s", room.id)
                return
            self.emitter.spawn(self._tell(room.id, notice))

        return on_remote_event

    # -- reads -------------------------------------------------------------------

    def joined(self, conn: Connection) -> None:
        """A private thread was joined: an audit record of who read whose
        thread (ids only; every join, not once per window)."""
        if not is_private(conn.doc_name):
            return
        owner = (
            conn.identity.user_id
            if conn.identity.role is not Role.FACILITATOR
            else thread_owner(conn.doc)
        )
        self.registry.audit(
            AuditAction.PRIVATE_READ,
            room=conn.room_id,
            identity=conn.identity,
            detail=f"{conn.doc_name} of={owner or '-'}",
        )

    # -- private:send -----------------------------------------------------------

    async def on_send(self, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        """``private:send {to?, text, clientMessageId}`` → ack ``{ok, id, ts,
        duplicate, doc}``, stored before it is acknowledged."""
        started = time.perf_counter()
        conn = self.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        try:
            payload = one_argument(args)
            if not isinstance(payload, dict):
                raise InvalidPayload("private:send takes one object {to?, text, clientMessageId}")
            unknown = set(payload) - _SEND_FIELDS
            if unknown:
                raise InvalidPayload(f"unknown fields: {', '.join(sorted(unknown))}")
            async with self.registry.use(conn.room_id) as room:
                owner = recipient(room.id, room.policy, conn.identity, payload.get("to"))
                doc_name = thread_doc(room.id, owner)
                self.chat.check_chat_rate(room, conn)
                async with room.chat_lock:
                    await self._check_new_thread(room, doc_name)
                    result = await self.chat.append_message(
                        room, conn, doc_name, payload, extra={THREAD_OF: owner}
                    )
        except CollabError as exc:
            self.emitter.refused(conn, PRIVATE_SEND, exc)
            return ack_error(exc)
        message = result.message
        if result.update is not None:
            log.info(
                "private message room=%s doc=%s id=%s user=%s chars=%d",
                conn.room_id,
                doc_name,
                message.id,
                user_ref(conn.identity.user_id),
                len(message.text),
            )
            self.emitter.broadcast(conn.room_id, doc_name, SYNC_UPDATE, result.update, started)
            notice = {
                "doc": doc_name,
                "userId": owner,
                "id": message.id,
                "ts": message.ts,
                "role": message.role,
            }
            self.emitter.spawn(self._tell(conn.room_id, notice))
            self.registry.publish_event(conn.room_id, PRIVATE_MESSAGE, notice)
        return ack_ok(id=message.id, ts=message.ts, duplicate=result.duplicate, doc=doc_name)

    async def _check_new_thread(self, room: Room, doc_name: DocName) -> None:
        """PrivateThreadLimit if ``doc_name`` would be one thread more than
        the room may hold (under the room's chat lock: one at a time)."""
        if doc_name in room.docs:
            return
        stored = await stored_documents(self.registry, room)
        if doc_name in stored:
            return
        if sum(1 for name in stored if is_private(name)) >= private_line.MAX_PRIVATE_THREADS:
            raise PrivateThreadLimit(
                f"the room holds {private_line.MAX_PRIVATE_THREADS} private threads"
            )

    async def _tell(self, room_id: Any, notice: dict[str, Any]) -> None:
        """``private:message`` to each connection on this node of the room's
        facilitators and of the thread's participant, except their
        connections to private threads (the update itself reaches those):
        ids and times, never text."""
        for conn in self.connections.in_room(room_id):
            if is_private(conn.doc_name):
                continue
            if conn.identity.role is Role.FACILITATOR or conn.identity.user_id == notice["userId"]:
                await self.emitter.emit(conn, PRIVATE_MESSAGE, notice)

    # -- private:threads ---------------------------------------------------------

    async def on_threads(self, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        """``private:threads {}`` → ack ``{ok, own, threads}``: a participant's
        own thread (``own``: its document; ``threads``: its summary, if it
        has messages); every thread of the room for a facilitator (``own``
        null), newest first. Observers: ``private_line_forbidden``."""
        conn = self.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, PRIVATE_THREADS, "events"))
        try:
            payload = one_argument(args) if args else {}
            if payload is None:
                payload = {}
            if not isinstance(payload, dict) or payload:
                raise InvalidPayload("private:threads takes an empty object")
            async with self.registry.use(conn.room_id) as room:
                own, names = await self._visible(room, conn.identity)
                summaries = []
                for name in names:
                    doc = await self.registry.document(room.id, name)
                    summary = thread_summary(doc)
                    if summary is not None:
                        summaries.append(summary)
        except CollabError as exc:
            self.emitter.refused(conn, PRIVATE_THREADS, exc)
            return ack_error(exc)
        except OSError as exc:
            log.warning("private threads unlisted room=%s: %s", conn.room_id, exc)
            return ack_error(RoomUnavailable("the threads could not be listed; try again"))
        summaries.sort(key=lambda s: (-s.last_ts, s.doc))
        threads = [s.to_json() for s in summaries[:MAX_LISTED_THREADS]]
        return ack_ok(own=own, threads=threads)

    async def _visible(self, room: Room, identity: Identity) -> tuple[str | None, list[DocName]]:
        """The thread a participant may read, or every thread of the room for a facilitator."""
        role = room.policy.role_of(identity)
        if role is Role.OBSERVER:
            raise PrivateLineForbidden("observers cannot read private threads")
        if role is not Role.FACILITATOR:
            own = thread_doc(room.id, identity.user_id)
            stored = await stored_documents(self.registry, room)
            return own, [own] if own in stored else []
        stored = await stored_documents(self.registry, room)
        return None, sorted(name for name in stored if is_private(name))


def _notice_fields(data: dict[str, Any]) -> dict[str, Any] | None:
    """Another node's ``private:message``, checked: its fields, or None."""
    doc, user, message_id, ts, role = (
        data.get("doc"),
        data.get("userId"),
        data.get("id"),
        data.get("ts"),
        data.get("role"),
    )
    try:
        if not (isinstance(doc, str) and is_private(validate_doc_name(doc))):
            return None
    except InvalidName:
        return None
    if not (isinstance(user, str) and 1 <= len(user) <= 128):
        return None
    if not (isinstance(message_id, str) and len(message_id) <= 64):
        return None
    if not isinstance(ts, int | float) or role not in {r.value for r in Role}:
        return None
    return {"doc": doc, "userId": user, "id": message_id, "ts": ts, "role": role}


async def private_threads(registry: RoomRegistry, room: Room) -> tuple[PrivateThread, ...]:
    """Every private thread of ``room`` (in use) with messages, for its export,
    ordered by participant. OSError if the store cannot list its documents."""
    names = await stored_documents(registry, room)
    threads = []
    for name in sorted(n for n in names if is_private(n)):
        doc = await registry.document(room.id, name)
        owner = thread_owner(doc)
        messages = tuple(read_chat(doc.engine.read_array(CHAT_ROOT)))
        if owner is not None and messages:
            threads.append(PrivateThread(name, owner, messages))
    return tuple(sorted(threads, key=lambda t: (t.user_id, t.doc)))


async def stored_documents(registry: RoomRegistry, room: Room) -> set[DocName]:
    """The room's documents, stored or loaded (a store that keeps no blobs
    cannot list them: then only those loaded)."""
    names = set(room.docs)
    if isinstance(registry.store, BlobStore):
        names |= set(await registry.store.list_documents(room.id))
    return names
