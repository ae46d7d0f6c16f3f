"""Room-wide control on the Socket.IO side: moderation events, closing
connections for a reason (expiry, removal, revocation, deletion), role
overrides on live connections, ``room:state``, and what another node's
moderation means here (protocol.md §6.2–§6.4, §10.1).

It reads the node's :class:`~collab.connections.ConnectionTable` and sends
through its :class:`~collab.emitter.Emitter`. Its callers: the ``mod:*``
events, the admin API, the registry (another node's changes) and timers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from collab.breakout_control import BreakoutControl
from collab.connections import Connection, ConnectionTable
from collab.emitter import Emitter
from collab.errors import ExpiredToken, Revoked, RoomDeleted
from collab.extensions import Extensions, ModerationEvent, RoomEvent
from collab.logs import user_ref
from collab.reporting import Reporter
from collab.restore_control import RestoreControl
from collab.server_clock import server_time_ms, with_server_time
from collab.sessions import SessionGuard
from collab.templates import TemplateLibrary
from collab.wire import (
    ERROR_EVENT,
    ROOM_STATE,
    TEMPLATES_LIST,
    ack_error,
    ack_ok,
    error_payload,
    one_argument,
)
from crdt.errors import CollabError, InvalidPayload
from crdt.schemas import DocKind
from crdt.types import DocName, RoomId, UserId
from rooms.audit import AuditAction
from rooms.blobs import release_images
from rooms.breakouts import BREAKOUT_EVENT, token_rooms
from rooms.checkin_seal import CheckinVault
from rooms.checkins import moderate_checkin
from rooms.errors import PrivateLineForbidden, Removed
from rooms.hands import lower_hand_of, lower_hands
from rooms.identity import Identity, Role
from rooms.moderation import (
    CHECKIN_EVENT,
    LOWER_HANDS_EVENT,
    NOTICE_EVENT,
    TEMPLATE_EVENT,
    Outcome,
    messages_of,
    moderate,
)
from rooms.moderation import RESTORE_EVENTS as MOD_RESTORE_EVENTS
from rooms.names import BOARD, is_private, validate_doc_name
from rooms.notices import set_notice_by
from rooms.registry import RoomRegistry
from rooms.room import Room
from rooms.store import Revocation
from rooms.templates import LANGUAGES, place_template, template_id_of

__all__ = ["Decided", "RoomControl", "room_state"]

log = logging.getLogger("collab.sync")

SYNC_UPDATE = "sync-update"

#: What a facilitator's change decided: its outcome, and what its ack adds.
Decided = tuple[Outcome, dict[str, Any]]

_MODERATION_AUDIT = {
    "mod:lock": AuditAction.LOCK,
    "mod:mute": AuditAction.MUTE,
    "mod:remove": AuditAction.REMOVE,
    "mod:redact": AuditAction.REDACT,
    "mod:redact-shape": AuditAction.REDACT,
    "mod:lock-shapes": AuditAction.LOCK,
    TEMPLATE_EVENT: AuditAction.TEMPLATE,
    "mod:restore-point": AuditAction.RESTORE,
    "mod:restore": AuditAction.RESTORE,
    "mod:end": AuditAction.END,
    "mod:role": AuditAction.ROLE,
    LOWER_HANDS_EVENT: AuditAction.HAND,
    NOTICE_EVENT: AuditAction.NOTICE,
    BREAKOUT_EVENT: AuditAction.BREAKOUT,
    CHECKIN_EVENT: AuditAction.CHECKIN,
}

#: Session activities' moderation (protocol.md §6.6): facilitators only.
_ACTIVITIES = {LOWER_HANDS_EVENT: lower_hands, NOTICE_EVENT: set_notice_by}


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
    """What happens to a room's connections as a whole: moderation, closes
    for a reason, role changes and ``room:state``, whoever asks for it (a
    facilitator's ``mod:*``, the admin API, another node, a timer)."""

    def __init__(
        self,
        connections: ConnectionTable,
        emitter: Emitter,
        registry: RoomRegistry,
        reporter: Reporter,
        sessions: SessionGuard,
        extensions: Extensions,
        *,
        revocation_clock_ms: Callable[[], float],
        templates: TemplateLibrary | None = None,
        restore_interval_s: float = 0.0,
        restore_points: int = 20,
        checkin_vault: CheckinVault | None = None,
    ) -> None:
        #: Seals check-in results and receipts (rooms.checkin_seal, protocol.md §6.9).
        self.checkin_vault = checkin_vault or CheckinVault.ephemeral()
        #: The board templates ``mod:template`` places (collab.templates).
        self.templates = (
            templates if templates is not None else TemplateLibrary(store=registry.store)
        )
        #: Restore points (collab.restore_control).
        self.restore = RestoreControl(
            registry,
            lambda room, outcome, actor: self.apply_outcome(room, outcome, actor=actor),
            interval_s=restore_interval_s,
            keep=restore_points,
        )
        self.connections = connections
        self.emitter = emitter
        self.registry = registry
        self.reporter = reporter
        self.sessions = sessions
        self.extensions = extensions
        #: The revocations' clock (rooms.revocations.Revocations.clock_ms):
        #: whether a revocation still applies is judged by it.
        self.revocation_clock_ms = revocation_clock_ms
        #: Breakout groups (collab.breakout_control).
        self.breakouts = BreakoutControl(self, server_time_ms)

    def policy_changed(self, room: Room) -> None:
        """Another node moderated: tell local connections, apply role
        overrides to them, close removed users'."""
        self.refresh_roles(room)
        self.emitter.spawn(self.broadcast_state(room))
        self.breakouts.group_changed(room)
        for user in room.policy.removed:
            if self.connections.of_user(room.id, user):
                self.emitter.spawn(
                    self.close_user(room.id, user, Removed("removed by a facilitator"))
                )

    def refresh_roles(self, room: Room) -> None:
        """Give every local connection of the room the role the room's policy
        says (its token's, or an override): their next writes are checked
        with it, and their awareness is stamped with it (protocol.md §6.3)."""
        for conn in self.connections.in_room(room.id):
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
                if is_private(conn.doc_name) and identity.role is Role.OBSERVER:
                    # An observer may not read private threads (rooms.private_line).
                    refused = PrivateLineForbidden("observers cannot read private threads")
                    self.emitter.spawn(self.close(conn, refused))

    def revoked(self, revocations: list[Revocation]) -> None:
        """New revocations (from this node's admin API or another node's):
        close every local connection they cover with ``revoked``."""
        now = self.revocation_clock_ms()
        doomed = [
            conn
            for conn in self.connections.all()
            if any(
                r.applies(
                    sub=conn.identity.user_id,
                    jti=conn.identity.token_id,
                    room=room,
                    now_ms=now,
                )
                for r in revocations
                for room in token_rooms(conn.room_id)  # a breakout group's main room too
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
            self.emitter.spawn(self._close_all(doomed, Revoked("the token was revoked")))

    def remote_delete(self, room_id: RoomId) -> None:
        """Another node deleted the room: close its connections here, then drop it."""

        async def close_and_drop() -> None:
            await self.close_room(room_id, RoomDeleted("the room was deleted"))
            self.registry.drop_deleted(room_id)

        self.emitter.spawn(close_and_drop())

    def on_expired(self, sid: str) -> None:
        """The token of ``sid``'s connection expired (its timer): close it."""
        conn = self.connections.get(sid)
        if conn is not None:
            log.info("token expired sid=%s room=%s", sid, conn.room_id)
            self.emitter.spawn(
                self.close(conn, ExpiredToken("the token has expired; reconnect with a new one"))
            )

    async def close(self, conn: Connection, reason: CollabError) -> None:
        """Tell the client why (``collab:error`` with ``event: "disconnect"``),
        then disconnect its namespace."""
        self.emitter.count_error(reason)
        try:
            await self.emitter.emit(conn, ERROR_EVENT, error_payload(reason, event="disconnect"))
        finally:
            await self.emitter.disconnect(conn)

    async def close_room(self, room_id: RoomId, reason: CollabError) -> int:
        """Close every connection to ``room_id``; return how many there were."""
        return await self._close_all(self.connections.in_room(room_id), reason)

    async def close_user(self, room_id: RoomId, user_id: UserId, reason: CollabError) -> int:
        """Close every connection of ``user_id`` to ``room_id``."""
        return await self._close_all(self.connections.of_user(room_id, user_id), reason)

    async def _close_all(self, conns: list[Connection], reason: CollabError) -> int:
        await asyncio.gather(*(self.close(c, reason) for c in conns), return_exceptions=True)
        return len(conns)

    def moderation_handler(self, event: str) -> Any:
        async def handler(namespace: str, sid: str, *args: Any) -> dict[str, Any]:
            return await self.on_moderation(event, sid, args)

        return handler

    async def on_moderation(self, event: str, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """``mod:*`` events (protocol.md §6.3): facilitators only; ack with the room state."""

        async def decide(room: Room, actor: Identity, payload: Any) -> Decided:
            return await self._moderate(event, room, actor, payload)

        done = await self.facilitate(event, sid, args, _MODERATION_AUDIT[event], decide)
        if isinstance(done, dict):
            return done
        conn, room, outcome, extra = done
        extensions = self.extensions
        if extensions.wants("on_moderation"):
            moderation = ModerationEvent(room.id, event, conn.identity, {"detail": outcome.detail})
            extensions.notify("on_moderation", moderation)
        if event == "mod:end" and extensions.wants("on_room_ended"):
            extensions.notify("on_room_ended", RoomEvent(room.id, "ended", conn.identity))
        return ack_ok(state=room_state(room), **extra)

    async def facilitate(
        self,
        event: str,
        sid: str,
        args: tuple[Any, ...],
        action: AuditAction,
        decide: Callable[[Room, Identity, Any], Awaitable[Decided]],
        *,
        refused_detail: str = "",
    ) -> tuple[Connection, Room, Outcome, dict[str, Any]] | dict[str, Any]:
        """The one road of an acknowledged change a user asks of a room (a
        ``mod:*`` event, a session activity): the connection's event rate,
        ``decide(room, identity, payload)`` while the room is in use, its
        outcome applied (and stored before the ack, :meth:`apply_outcome`).
        A refusal is counted, audited as ``action`` (with
        ``refused_detail``), logged by code and is one strike against the
        session: its error ack is returned. Else the change is audited and
        logged (ids only: the detail names its target user, the log does
        not), and ``(conn, room, outcome, what the ack adds)`` returned."""
        conn = self.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, event, "events"))
        try:
            payload = one_argument(args) if args else {}
            async with self.registry.use(conn.room_id) as room:
                outcome, extra = await decide(room, conn.identity, payload)
                await self.apply_outcome(room, outcome, actor=conn.identity)
        except CollabError as exc:
            self.emitter.count_refusal(exc)
            self.reporter.audit(
                action,
                room=conn.room_id,
                identity=conn.identity,
                outcome=exc.code.value,
                detail=refused_detail,
            )
            log.info("%s refused sid=%s code=%s", event, sid, exc.code.value)
            if conn.session is not None:
                self.sessions.strike(conn.session)
            return ack_error(exc)
        self.registry.audit(
            action, room=conn.room_id, identity=conn.identity, detail=outcome.detail
        )
        log.info("%s room=%s by=%s", event, conn.room_id, user_ref(conn.identity.user_id))
        return conn, room, outcome, extra

    async def _moderate(self, event: str, room: Room, actor: Identity, payload: Any) -> Decided:
        """Run moderation ``event`` in ``room`` (in use): what it changed and
        what the ack carries besides the room's state."""
        if event == "mod:redact":
            room.policy.check_moderate(actor)  # before a private thread is loaded
            await self.registry.document(room.id, messages_of(payload))
            async with room.chat_lock:  # not between a message and its store write
                return moderate(event, room, actor, payload), {}
        if event in ("mod:redact-shape", "mod:lock-shapes"):
            doc = _board_of(payload)
            await self.registry.document(room.id, doc)
            outcome = moderate(event, room, actor, payload)
            if event == "mod:redact-shape":
                # Out of every restore point too, before its picture may go.
                await self.restore.forget_shape(room, doc, payload["shapeId"])
            return outcome, {}
        if event == TEMPLATE_EVENT:
            room.policy.check_moderate(actor)
            room.policy.check_write(actor, DocKind.BOARD)  # not after the session ended
            template = await self.templates.get(template_id_of(payload))
            await self.registry.document(room.id, _board_of(payload))
            return place_template(room, actor, payload, template), {}
        if event in MOD_RESTORE_EVENTS:
            room.policy.check_moderate(actor)
            if event == "mod:restore":
                room.policy.check_write(actor, DocKind.BOARD)  # not after the session ended
            await self.registry.document(room.id, _board_of(payload))
            changed, extra = await self.restore.handle(event, room, actor, payload)
            assert changed is not None  # a mod:* event always changes something
            return changed, extra
        if event == BREAKOUT_EVENT:
            return await self.breakouts.moderate(room, actor, payload)
        if event == CHECKIN_EVENT:
            return moderate_checkin(room, actor, payload, now_ms=self.registry.clock_ms())
        if event in _ACTIVITIES:
            room.policy.check_moderate(actor)
            return _ACTIVITIES[event](room, actor, payload), {}
        outcome = moderate(event, room, actor, payload)
        if outcome.expel is not None:  # a removed user's hand goes down (§6.6)
            lowered = lower_hand_of(room, outcome.expel)
            if lowered is not None:
                outcome = dataclasses.replace(outcome, changes=(*outcome.changes, lowered))
        return outcome, {}

    async def apply_outcome(
        self, room: Room, outcome: Outcome, *, actor: Identity | None = None
    ) -> None:
        started = time.perf_counter()
        for change in outcome.changes:
            self.emitter.broadcast(room.id, change.doc, SYNC_UPDATE, change.update, started)
            self.emitter.changed(room.id, change.doc, change.update, actor)
        if outcome.action is AuditAction.ROLE:
            self.refresh_roles(room)
        await self.broadcast_state(room)
        if outcome.expel is not None:
            self.breakouts.expel(room.id, {outcome.expel})
            await self.close_user(room.id, outcome.expel, Removed("removed by a facilitator"))
        purged = room.docs.get(outcome.purge) if outcome.purge is not None else None
        if purged is not None:
            try:
                await self.registry.flush_document(room, purged, force_compact=True)
            except OSError as exc:  # the periodic flush compacts it later
                purged.compact_due = True
                log.error("compaction after redaction failed room=%s: %s", room.id, exc)
            purged.purge_memory()
        elif outcome.changes:
            # What the actor is told "ok" about is stored first (§11.1).
            await self.registry.store_acknowledged(room)
        if outcome.images:
            await self._release_images(room, outcome.images)

    async def _release_images(self, room: Room, images: tuple[str, ...]) -> None:
        """The images a redacted shape named, unless another shape names them
        (rooms.blobs); a store failure is logged (an unload or the room's
        deletion removes them later)."""
        try:
            deleted = await release_images(self.registry, room.id, images)
        except OSError as exc:
            log.error("image deletion after redaction failed room=%s: %s", room.id, exc)
            return
        log.info("images deleted after redaction room=%s count=%d", room.id, deleted)

    def query_handler(self, event: str) -> Any:
        async def handler(namespace: str, sid: str, *args: Any) -> dict[str, Any]:
            return await self.on_query(event, sid, args)

        return handler

    async def on_query(self, event: str, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """A facilitator's question that changes nothing (protocol.md §6.3):
        ``templates:list {lang}`` (the templates they may place, their words
        in ``lang``, every language's without) and ``restore:shapes
        {pointId, doc}`` (the shapes a restore point holds that the board lacks)."""
        conn = self.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, event, "events"))
        try:
            payload = one_argument(args) if args else {}
            async with self.registry.use(conn.room_id) as room:
                room.policy.check_moderate(conn.identity)
                if event == TEMPLATES_LIST:
                    answer = {"templates": await self._templates(payload)}
                else:
                    await self.registry.document(room.id, _board_of(payload))
                    _, answer = await self.restore.handle(event, room, conn.identity, payload)
        except CollabError as exc:
            self.emitter.count_refusal(exc)
            return ack_error(exc)
        return ack_ok(**answer)

    async def _templates(self, payload: Any) -> list[dict[str, Any]]:
        lang = payload.get("lang") if isinstance(payload, dict) else None
        if lang is not None and lang not in LANGUAGES:
            raise InvalidPayload(f"lang must be one of {', '.join(LANGUAGES)}")
        return [t.summary(lang) for t in await self.templates.all()]

    def saving_changed(self, room: Room) -> None:
        """The room's saving state changed (delayed, read-only, ok again):
        tell everyone in it (protocol.md §11)."""
        self.emitter.spawn(self.broadcast_state(room))

    def fullness_changed(self, room_id: RoomId) -> None:
        """A document of the room became full or has room again: tell everyone."""
        room = self.registry.rooms.get(room_id)
        if room is not None:
            self.emitter.spawn(self.broadcast_state(room))

    async def broadcast_state(self, room: Room) -> None:
        """``room:state`` to every connection of the room, whatever its
        document, with the server's time (protocol.md §6.4)."""
        await self.emitter.emit_to_room(room.id, ROOM_STATE, with_server_time(room_state(room)))
