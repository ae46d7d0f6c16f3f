"""Session activities on the Socket.IO side (protocol.md §6.6): a user's
own ``hand:raise``, ``reaction:send`` and ``chat:delete``. Each handler is
feed → decide → emit: the rooms layer decides (rooms.hands,
rooms.reactions, rooms.chat_delete), this sends what came back. The
facilitator's side (``mod:lower-hands``, ``mod:notice``) is moderation:
collab.room_control.

Logs carry ids, kinds and sizes, never chat text or names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from collab.connections import Connection, ConnectionTable
from collab.emitter import Emitter
from collab.logs import user_ref
from collab.reporting import Reporter
from collab.room_control import RoomControl
from collab.wire import ack_error, ack_ok, one_argument
from crdt.errors import CollabError, InvalidPayload
from crdt.text import quote
from rooms.audit import AuditAction
from rooms.chat_delete import CHAT_DELETE, delete_own_message
from rooms.hands import HAND_EVENT, raise_hand
from rooms.moderation import messages_of
from rooms.names import META, is_private
from rooms.private_line import check_private_join
from rooms.reactions import REACTION, REACTION_SEND, Reaction, make_reaction
from rooms.registry import RoomRegistry
from rooms.room import Room

__all__ = ["ACTIVITY_EVENTS", "Activities"]

log = logging.getLogger("collab.sync")

SYNC_UPDATE = "sync-update"

#: The events a user sends for themselves (the facilitator's are ``mod:*``).
ACTIVITY_EVENTS = (HAND_EVENT, REACTION_SEND, CHAT_DELETE)

Handler = Callable[..., Awaitable[dict[str, Any]]]


class Activities:
    """The handlers of a user's own activity events, and what other nodes'
    reactions mean here."""

    def __init__(
        self,
        connections: ConnectionTable,
        registry: RoomRegistry,
        emitter: Emitter,
        control: RoomControl,
        reporter: Reporter,
    ) -> None:
        self.connections = connections
        self.registry = registry
        self.emitter = emitter
        self.control = control
        self.reporter = reporter

    def handlers(self) -> dict[str, Handler]:
        """Event name → handler, for collab.sync to register."""
        return {
            HAND_EVENT: self.on_hand,
            REACTION_SEND: self.on_reaction,
            CHAT_DELETE: self.on_chat_delete,
        }

    def _connection(self, sid: str) -> Connection | None:
        return self.connections.get(sid)

    # -- raise hand --------------------------------------------------------------

    async def on_hand(self, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        """``hand:raise {raised}`` → ack ``{ok, raised, ts?}`` (``ts``: when
        the hand went up). The queue is meta's ``hands`` (rooms.hands)."""
        conn = self._connection(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, HAND_EVENT, "events"))
        try:
            payload = one_argument(args) if args else {}
            async with self.registry.use(conn.room_id) as room:
                change = raise_hand(room, conn.identity, payload, now_ms=self.registry.clock_ms())
                if change.update is not None:
                    self.emitter.broadcast(conn.room_id, META, SYNC_UPDATE, change.update)
                    self.emitter.changed(conn.room_id, META, change.update, conn.identity)
                    await self.registry.store_acknowledged(room)  # before the ack (§11.1)
        except CollabError as exc:
            self.emitter.refused(conn, HAND_EVENT, exc)
            return ack_error(exc)
        hand = change.hand
        if change.update is not None:
            log.info(
                "hand %s room=%s user=%s",
                "raised" if hand is not None else "lowered",
                conn.room_id,
                user_ref(conn.identity.user_id),
            )
        if hand is None:
            return ack_ok(raised=False)
        return ack_ok(raised=True, ts=hand.ts)

    # -- reactions ---------------------------------------------------------------

    async def on_reaction(self, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        """``reaction:send {kind}`` → ack ``{ok, ts}``; ``reaction {userId,
        kind, ts}`` goes to every connection of the room on every node,
        the sender's too. Nothing is stored."""
        conn = self._connection(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.reactions.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, REACTION_SEND, "reactions"))
        try:
            payload = one_argument(args)
            async with self.registry.use(conn.room_id) as room:
                reaction = make_reaction(
                    room.policy, conn.identity, payload, now_ms=self.registry.clock_ms()
                )
        except CollabError as exc:
            self.emitter.refused(conn, REACTION_SEND, exc)
            return ack_error(exc)
        data = reaction.serialize()
        # Not awaited: a large room's fan-out must not hold the sender's lane.
        self.emitter.spawn(self.emitter.emit_to_room(conn.room_id, REACTION, data))
        self.registry.publish_event(conn.room_id, REACTION, data)
        log.debug(
            "reaction room=%s user=%s kind=%s",
            conn.room_id,
            user_ref(conn.identity.user_id),
            reaction.kind.value,
        )
        return ack_ok(ts=reaction.ts)

    def on_remote_event(self, room: Room, event: str, data: dict[str, Any]) -> None:
        """Another node's room event (rooms.replication): a reaction goes to
        this node's connections of the room, checked again; anything else is
        dropped."""
        if event != REACTION:
            log.warning("dropped a room event from another node event=%s", quote(event, limit=32))
            return
        try:
            reaction = Reaction.parse(data)
        except CollabError as exc:
            log.warning("dropped a reaction from another node room=%s: %s", room.id, exc)
            return
        self.emitter.spawn(self.emitter.emit_to_room(room.id, REACTION, reaction.serialize()))

    # -- deleting one's own chat message --------------------------------------------

    async def on_chat_delete(self, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        """``chat:delete {messageId}`` → ack ``{ok, id}``: the author's own
        message, within the window, removed as a redaction removes it
        (rooms.chat_delete; RoomControl.apply_outcome compacts the stored
        log). Audited, allowed or refused."""
        conn = self._connection(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, CHAT_DELETE, "events"))
        try:
            payload = one_argument(args)
            async with self.registry.use(conn.room_id) as room:
                name = messages_of(payload)
                if is_private(name):  # before it is loaded
                    check_private_join(room.policy, room.id, name, conn.identity)
                chat = await self.registry.document(room.id, name)
                async with room.chat_lock:  # not between a message and its store write
                    await self.registry.settle(chat)  # other nodes' messages first
                    outcome = delete_own_message(
                        room,
                        conn.identity,
                        payload,
                        now_ms=self.registry.clock_ms(),
                        window_s=self.registry.limits.chat_delete_window_s,
                    )
                if outcome.changes:
                    await self.control.apply_outcome(room, outcome, actor=conn.identity)
        except CollabError as exc:
            # As a refused mod:* is: counted, audited under its own action
            # (once per kind a minute), one strike against the session.
            self.emitter.count_refusal(exc)
            self.reporter.audit(
                AuditAction.DELETE_MESSAGE,
                room=conn.room_id,
                identity=conn.identity,
                outcome=exc.code.value,
            )
            log.info("%s refused sid=%s code=%s", CHAT_DELETE, sid, exc.code.value)
            if conn.session is not None:
                self.control.sessions.strike(conn.session)
            return ack_error(exc)
        self.registry.audit(
            AuditAction.DELETE_MESSAGE,
            room=conn.room_id,
            identity=conn.identity,
            detail=outcome.detail,
        )
        message_id = outcome.detail.split(" ", 1)[0]
        log.info(
            "chat message deleted by its author room=%s id=%s user=%s",
            conn.room_id,
            message_id,
            user_ref(conn.identity.user_id),
        )
        return ack_ok(id=message_id)
