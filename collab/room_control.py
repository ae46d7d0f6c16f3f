"""Room-wide control on the Socket.IO side: moderation events, closing
connections for a reason (expiry, removal, revocation, deletion), role
overrides on live connections, ``room:state``, and what another node's
moderation means here (protocol.md §6.2–§6.4, §10.1)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from collab.errors import ExpiredToken, Revoked, RoomDeleted
from collab.extensions import ModerationEvent, RoomEvent
from collab.logs import user_ref
from collab.wire import ERROR_EVENT, ROOM_STATE, ack_error, ack_ok, error_payload, one_argument
from crdt.errors import CollabError, InvalidPayload
from crdt.types import DocName, RoomId, UserId
from rooms.audit import AuditAction
from rooms.errors import Removed
from rooms.identity import Identity
from rooms.moderation import Outcome, moderate
from rooms.names import BOARD, CHAT, validate_doc_name
from rooms.room import Room
from rooms.store import Revocation

if TYPE_CHECKING:
    from collab.sync import Connection, SyncServer

__all__ = ["RoomControl", "room_state"]

log = logging.getLogger("collab.sync")

SYNC_UPDATE = "sync-update"

_MODERATION_AUDIT = {
    "mod:lock": AuditAction.LOCK,
    "mod:mute": AuditAction.MUTE,
    "mod:remove": AuditAction.REMOVE,
    "mod:redact": AuditAction.REDACT,
    "mod:redact-shape": AuditAction.REDACT,
    "mod:end": AuditAction.END,
    "mod:role": AuditAction.ROLE,
}


def _board_of(payload: Any) -> DocName:
    """The board a ``mod:redact-shape`` names (its payload is checked in full
    by rooms.moderation; this only picks what to load)."""
    name = payload.get("doc", BOARD) if isinstance(payload, dict) else BOARD
    try:
        return validate_doc_name(name) if isinstance(name, str) else BOARD
    except CollabError:
        return BOARD


def room_state(room: Room) -> dict[str, Any]:
    """The ``room:state`` payload (protocol.md §6.4): the moderation state,
    which documents are full (at their size limit, §8), and whether the store
    has the room's changes (``saving``, §11)."""
    state = room.policy.snapshot().as_json()
    state["roles"] = room.policy.roles_json()
    state["full"] = sorted(name for name, doc in room.docs.items() if doc.full)
    state["saving"] = room.saving.value
    return state


class RoomControl:
    """The room-wide half of a :class:`collab.sync.SyncServer`."""

    def __init__(self, sync: SyncServer) -> None:
        self.sync = sync

    def policy_changed(self, room: Room) -> None:
        """Another node moderated: tell local connections, apply role
        overrides to them, close removed users'."""
        self.refresh_roles(room)
        self.sync._spawn(self.broadcast_state(room))
        for user in room.policy.removed:
            if any(c.identity.user_id == user for c in self.room_connections(room.id)):
                self.sync._spawn(
                    self.close_user(room.id, user, Removed("removed by a facilitator"))
                )

    def refresh_roles(self, room: Room) -> None:
        """Give every local connection of the room the role the room's policy
        says (its token's, or an override): their next writes are checked
        with it, and their awareness is stamped with it (protocol.md §6.3)."""
        for conn in self.room_connections(room.id):
            identity = room.policy.effective(conn.token_identity)
            if identity != conn.identity:
                conn.identity = identity
                log.info(
                    "role changed sid=%s room=%s user=%s role=%s",
                    conn.sid,
                    room.id,
                    user_ref(identity.user_id),
                    identity.role.value,
                )

    def revoked(self, revocations: list[Revocation]) -> None:
        """New revocations (from this node's admin API or another node's):
        close every local connection they cover with ``revoked``."""
        now = self.sync.revocations.clock_ms()
        doomed = [
            conn
            for conn in list(self.sync.connections.values())
            if any(
                r.applies(
                    sub=conn.identity.user_id,
                    jti=conn.identity.token_id,
                    room=conn.room_id,
                    now_ms=now,
                )
                for r in revocations
            )
        ]
        for conn in doomed:
            log.info(
                "revoked sid=%s room=%s user=%s",
                conn.sid,
                conn.room_id,
                user_ref(conn.identity.user_id),
            )
        if doomed:
            self.sync._spawn(self._close_all(doomed, Revoked("the token was revoked")))

    def remote_delete(self, room_id: RoomId) -> None:
        async def close_and_drop() -> None:
            await self.close_room(room_id, RoomDeleted("the room was deleted"))
            self.sync.registry.drop_deleted(room_id)

        self.sync._spawn(close_and_drop())

    def room_connections(self, room_id: RoomId) -> list[Connection]:
        return [
            self.sync.connections[s]
            for s in self.sync.by_room.get(room_id, ())
            if s in self.sync.connections
        ]

    def on_expired(self, sid: str) -> None:
        conn = self.sync.connections.get(sid)
        if conn is not None:
            log.info("token expired sid=%s room=%s", sid, conn.room_id)
            self.sync._spawn(
                self.close(conn, ExpiredToken("the token has expired; reconnect with a new one"))
            )

    async def close(self, conn: Connection, reason: CollabError) -> None:
        """Tell the client why (``collab:error`` with ``event: "disconnect"``),
        then disconnect its namespace."""
        self.sync._count_error(reason)
        try:
            await self.sync.sio.emit(
                ERROR_EVENT,
                error_payload(reason, event="disconnect"),
                to=conn.sid,
                namespace=conn.namespace,
            )
        finally:
            await self.sync.sio.disconnect(conn.sid, namespace=conn.namespace)

    async def close_room(self, room_id: RoomId, reason: CollabError) -> int:
        """Close every connection to ``room_id``; return how many there were."""
        return await self._close_all(self.room_connections(room_id), reason)

    async def close_user(self, room_id: RoomId, user_id: UserId, reason: CollabError) -> int:
        """Close every connection of ``user_id`` to ``room_id``."""
        conns = [c for c in self.room_connections(room_id) if c.identity.user_id == user_id]
        return await self._close_all(conns, reason)

    async def _close_all(self, conns: list[Connection], reason: CollabError) -> int:
        await asyncio.gather(*(self.close(c, reason) for c in conns), return_exceptions=True)
        return len(conns)

    def moderation_handler(self, event: str) -> Any:
        async def handler(namespace: str, sid: str, *args: Any) -> dict[str, Any]:
            return await self.on_moderation(event, sid, args)

        return handler

    async def on_moderation(self, event: str, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """``mod:*`` events (protocol.md §6.3): facilitators only; ack with the room state."""
        conn = self.sync.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.sync.rate_limited(conn, event, "events"))
        action = _MODERATION_AUDIT[event]
        try:
            payload = one_argument(args) if args else {}
            async with self.sync.registry.use(conn.room_id) as room:
                if event == "mod:redact":
                    await self.sync.registry.document(conn.room_id, CHAT)
                    async with room.chat_lock:  # not between a message and its store write
                        outcome = moderate(event, room, conn.identity, payload)
                elif event == "mod:redact-shape":
                    await self.sync.registry.document(conn.room_id, _board_of(payload))
                    outcome = moderate(event, room, conn.identity, payload)
                else:
                    outcome = moderate(event, room, conn.identity, payload)
                await self.apply_outcome(room, outcome, actor=conn.identity)
        except CollabError as exc:
            self.sync.count_refusal(exc)
            self.sync.reporter.audit(
                action, room=conn.room_id, identity=conn.identity, outcome=exc.code.value
            )
            log.info("%s refused sid=%s code=%s", event, sid, exc.code.value)
            if conn.session is not None:
                self.sync.sessions.strike(conn.session)
            return ack_error(exc)
        self.sync.registry.audit(
            action, room=conn.room_id, identity=conn.identity, detail=outcome.detail
        )
        # The detail names its target user: the audit record keeps it, the log does not.
        log.info("%s room=%s by=%s", event, conn.room_id, user_ref(conn.identity.user_id))
        extensions = self.sync.extensions
        if extensions.wants("on_moderation"):
            moderation = ModerationEvent(room.id, event, conn.identity, {"detail": outcome.detail})
            extensions.notify("on_moderation", moderation)
        if event == "mod:end" and extensions.wants("on_room_ended"):
            extensions.notify("on_room_ended", RoomEvent(room.id, "ended", conn.identity))
        return ack_ok(state=room_state(room))

    async def apply_outcome(
        self, room: Room, outcome: Outcome, *, actor: Identity | None = None
    ) -> None:
        started = time.perf_counter()
        for change in outcome.changes:
            self.sync.broadcast(room.id, change.doc, SYNC_UPDATE, change.update, started)
            self.sync.changed(room.id, change.doc, change.update, actor)
        if outcome.action is AuditAction.ROLE:
            self.refresh_roles(room)
        await self.broadcast_state(room)
        if outcome.expel is not None:
            await self.close_user(room.id, outcome.expel, Removed("removed by a facilitator"))
        purged = room.docs.get(outcome.purge) if outcome.purge is not None else None
        if purged is not None:
            try:
                await self.sync.registry.flush_document(room, purged, force_compact=True)
            except OSError as exc:  # the periodic flush compacts it later
                purged.compact_due = True
                log.error("compaction after redaction failed room=%s: %s", room.id, exc)
            purged.purge_memory()

    def saving_changed(self, room: Room) -> None:
        """The room's saving state changed (delayed, read-only, ok again):
        tell everyone in it (protocol.md §11)."""
        self.sync._spawn(self.broadcast_state(room))

    def fullness_changed(self, room_id: RoomId) -> None:
        """A document of the room became full or has room again: tell everyone."""
        room = self.sync.registry.rooms.get(room_id)
        if room is not None:
            self.sync._spawn(self.broadcast_state(room))

    async def broadcast_state(self, room: Room) -> None:
        """``room:state`` to every connection of the room, whatever its document."""
        state = room_state(room)
        for sid in list(self.sync.by_room.get(room.id, ())):
            conn = self.sync.connections.get(sid)
            if conn is not None:
                await self.sync.sio.emit(ROOM_STATE, state, to=sid, namespace=conn.namespace)
