"""The admin HTTP API under ``/api/`` (protocol.md §10; OpenAPI at /api/openapi.json).

Every route but the OpenAPI document needs ``Authorization: Bearer <admin
key>`` (named keys: collab.admin_keys); the export route also takes a
facilitator's own token for that room (collab.admin_auth). Room ids travel
URL-encoded in the path (``clinic-7%2Fgroup-a``). Errors are JSON
``{"error": {"code", "message"}}`` with the HTTP status of their code.

Every request is audited with who made it (the admin key's name, role
``admin``; or the token's ``sub`` and role): changes and exports always,
reads (room list, room info, audit log, revocations) too, each as one
record. Failed logins are audited per remote address per minute
(:class:`collab.admin_auth.FailedLogins`), so a flood of bad keys costs a
few audit records and log lines, not one each. Every client-supplied string
written to a log line or an audit record goes through
:func:`crdt.text.quote` (protocol.md §10.2).
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from aiohttp import web

from collab.admin_auth import (
    ADMIN_FAILURES,
    AdminAuth,
    FailedLogins,
    FailedLoginsCollector,
    Principal,
)
from collab.admin_templates import add_template_routes
from collab.errors import AppCode, Conflict, RoomDeleted
from collab.export import RoomExport, time_zone, to_json, to_markdown, to_svg
from collab.extensions import ExportEvent, ModerationEvent, RoomEvent
from collab.images import image_usage
from collab.logs import user_ref
from collab.openapi import OPENAPI
from collab.private_handler import private_threads
from collab.room_control import room_state
from collab.templates import TemplateLibrary
from collab.tokens import valid_subject, valid_token_id
from crdt.errors import CollabError, CrdtCode, InvalidPayload
from crdt.schemas import BOARD_ROOT, CHAT_ROOT, META_ROOT, Shape, read_board, read_chat
from crdt.text import quote
from crdt.types import RoomId, UserId
from rooms.audit import AuditAction
from rooms.checkins import export_checkins
from rooms.errors import NotFound, Removed, RoomCode, RoomUnavailable
from rooms.moderation import assign_role, role_detail, role_request, set_title
from rooms.names import BOARD, CHAT, META, validate_room_id
from rooms.notices import notice_detail, read_notice, set_notice, validate_notice
from rooms.store import BlobStore, Revocation

if TYPE_CHECKING:
    from collab.app import CollabApp
    from collab.connections import ConnectionTable
    from collab.emitter import Emitter
    from collab.extensions import Extensions
    from collab.room_control import RoomControl
    from rooms.registry import RoomRegistry
    from rooms.revocations import Revocations

__all__ = ["ADMIN_FAILURES", "AdminApi", "FailedLogins", "add_admin_routes"]

log = logging.getLogger("collab.admin")

_STATUS = {
    AppCode.UNAUTHORIZED: 401,
    RoomCode.PERMISSION_DENIED: 403,
    AppCode.WRONG_ROOM: 403,
    RoomCode.REMOVED: 403,
    AppCode.REVOKED: 403,
    RoomCode.NOT_FOUND: 404,
    AppCode.CONFLICT: 409,
    AppCode.TEMPLATES_UNAVAILABLE: 501,
    RoomCode.ROOM_UNAVAILABLE: 503,
    CrdtCode.INTERNAL_ERROR: 500,
}
_MAX_BODY_BYTES = 64 << 10
_EXPORT_FORMATS = {"json", "markdown", "svg"}
#: The latest ``until`` a revocation may have, from now (protocol.md §10.1).
MAX_REVOCATION_MS = 366 * 86_400_000.0
_MAX_REVOCATION_ID_CHARS = 64

_T = TypeVar("_T")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(exc: CollabError) -> web.Response:
    status = _STATUS.get(exc.code, 400)
    return _json({"error": {"code": exc.code.value, "message": str(exc)}}, status)


def _started(part: _T | None) -> _T:
    """A part of the server made at its start; RoomUnavailable before."""
    if part is None:
        raise RoomUnavailable("the server is starting")
    return part


def _audited_room(raw: str | None) -> tuple[RoomId | None, str]:
    """The room and detail of a failed admin action's audit record: a room id
    from the path if it is one; otherwise no room, and the string quoted."""
    if raw is None:
        return None, "admin"
    try:
        return validate_room_id(raw), "admin"
    except CollabError:
        return None, f"admin room={quote(raw)}"


class AdminApi:
    """The admin API's routes. The parts of the server they use beyond its
    connections and extensions are made at its start: until then each
    raises RoomUnavailable."""

    def __init__(self, app: CollabApp, failures: FailedLogins) -> None:
        self.app = app
        self.failures = failures
        self.auth = AdminAuth(app, failures)
        #: This node's connections (empty until the server starts).
        self.connections: ConnectionTable = app.connections
        self.extensions: Extensions = app.extensions

    @property
    def registry(self) -> RoomRegistry:
        return _started(self.app.registry)

    @property
    def control(self) -> RoomControl:
        return _started(self.app.control)

    @property
    def emitter(self) -> Emitter:
        return _started(self.app.emitter)

    @property
    def revocations(self) -> Revocations:
        return _started(self.app.revocations)

    def guarded(
        self, handler: Route, action: AuditAction | None = None, *, facilitator_ok: bool = False
    ) -> Handler:
        """Authorize the request (collab.admin_auth), then run ``handler`` with
        who made it; CollabErrors become JSON errors, and failed ``action``
        requests are written to the audit log with who made them."""

        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                principal = await self.auth.authorize(request, facilitator_ok=facilitator_ok)
            except CollabError as exc:
                return _error(exc)
            try:
                try:
                    return await handler(request, principal)
                except OSError as exc:  # the store: say so, as to a client (not a 500)
                    log.warning("admin call failed: store error=%s", type(exc).__name__)
                    raise RoomUnavailable("the store cannot be reached; try again") from None
            except CollabError as exc:
                if principal.identity is not None:
                    self.auth.refused(request, principal.identity, exc)
                elif action is not None and self.app.registry is not None:
                    room, detail = _audited_room(request.match_info.get("room"))
                    self._audit(action, principal, room=room, outcome=exc.code.value, detail=detail)
                return _error(exc)

        return wrapper

    def _audit(
        self,
        action: AuditAction,
        principal: Principal,
        *,
        room: RoomId | None = None,
        outcome: str = "ok",
        detail: str = "",
    ) -> None:
        """One audit record naming ``principal`` (user: the key's name or the
        token's sub; role: ``admin`` or the token's role)."""
        self.registry.audit(
            action,
            room=room,
            outcome=outcome,
            detail=detail,
            user_id=UserId(principal.name),
            role=principal.role,
        )

    async def _body(
        self, request: web.Request, allowed: dict[str, tuple[type, ...]]
    ) -> dict[str, Any]:
        raw = await request.content.read(_MAX_BODY_BYTES + 1)
        if len(raw) > _MAX_BODY_BYTES:
            raise InvalidPayload("request body too large")
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            raise InvalidPayload("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidPayload("the request body must be a JSON object")
        unknown = set(body) - set(allowed)
        if unknown:
            raise InvalidPayload(f"unknown fields: {', '.join(sorted(unknown))}")
        for name, kinds in allowed.items():
            if name in body and not isinstance(body[name], kinds):
                raise InvalidPayload(f"field {name!r} has the wrong type")
            if name in body and isinstance(body[name], bool) and bool not in kinds:
                raise InvalidPayload(f"field {name!r} has the wrong type")
        return body

    async def _exists(self, room_id: RoomId) -> bool:
        return room_id in self.registry.rooms or room_id in await self.registry.store.list_rooms()

    async def _room_id(self, request: web.Request, *, must_exist: bool = True) -> RoomId:
        room_id = validate_room_id(request.match_info["room"])
        if must_exist and not await self._exists(room_id):
            raise NotFound(f"no room {room_id}")
        return room_id

    # -- rooms --------------------------------------------------------------

    async def create_room(self, request: web.Request, principal: Principal) -> web.Response:
        body = await self._body(
            request,
            {
                "id": (str,),
                "title": (str,),
                "retentionDays": (int, float, type(None)),
                "notice": (str,),
            },
        )
        if "id" not in body:
            raise InvalidPayload("field 'id' is required")
        room_id = validate_room_id(body["id"])
        days = body.get("retentionDays")
        if days is not None and not 0 < days <= 36500:
            raise InvalidPayload("retentionDays must be between 0 and 36500")
        notice = validate_notice(body.get("notice", ""))  # before anything is written
        if await self._exists(room_id):
            raise Conflict(f"room {room_id} already exists")
        async with self.registry.use(room_id) as room:
            changes = [set_title(room, body.get("title", ""))]
            if notice:  # the session notice (protocol.md §6.6)
                changes.append(set_notice(room, notice))
            await self.control.broadcast_state(room)
            for change in changes:
                self.emitter.broadcast(room_id, META, "sync-update", change.update)
                self.emitter.changed(room_id, META, change.update, None)
            await self.registry.set_retention(room, days)
            await self.registry.flush_document(room, room.docs[META])
        self._audit(AuditAction.CREATE, principal, room=room_id, detail="admin")
        if notice:
            self._audit(AuditAction.NOTICE, principal, room=room_id, detail=notice_detail(notice))
        log.info("room created room=%s by=%s", room_id, principal.log_name)
        return _json(await self._info(room_id), 201)

    async def list_rooms(self, request: web.Request, principal: Principal) -> web.Response:
        infos = {i.room: i for i in await self.registry.store.list_room_infos()}
        ids = sorted(
            set(infos) | set(await self.registry.store.list_rooms()) | set(self.registry.rooms)
        )
        self._audit(AuditAction.ADMIN_READ, principal, detail=f"rooms count={len(ids)}")
        return _json({"rooms": [self._summary(r, infos.get(r)) for r in ids]})

    def _summary(self, room_id: RoomId, info: Any) -> dict[str, Any]:
        loaded = self.registry.rooms.get(room_id)
        if loaded is not None and loaded.info is not None:
            info = loaded.info
        online = self.connections.count_in(room_id)
        return {
            "id": room_id,
            "title": loaded.policy.title if loaded is not None else (info.title if info else ""),
            "retentionDays": info.retention_days if info else None,
            "createdAt": info.created_ms if info else None,
            "lastActivityAt": max(
                info.last_activity_ms if info else 0.0,
                loaded.last_activity_ms if loaded is not None else 0.0,
            )
            or None,
            "connections": online,
        }

    async def _info(self, room_id: RoomId) -> dict[str, Any]:
        async with self.registry.use(room_id) as room:
            for name in (BOARD, CHAT):
                await self.registry.document(room_id, name)
            sizes = {name: len(doc.engine.full_state()) for name, doc in room.docs.items()}
            users: dict[str, dict[str, Any]] = {}
            for conn in self.connections.in_room(room_id):
                entry = users.setdefault(
                    conn.identity.user_id,
                    {
                        "userId": conn.identity.user_id,
                        "name": conn.identity.name,
                        "role": conn.identity.role.value,
                        "documents": [],
                    },
                )
                entry["documents"].append(conn.doc_name)
            summary = self._summary(room_id, room.info)
            try:
                usage = await image_usage(self.registry.store, room_id)
            except OSError:  # the rest of the answer is memory's: say what is known
                usage = None
            summary.update(
                state=room_state(room),
                # The room's images count in its size (collab.images; null: no images kept).
                images=usage[0] if usage is not None else None,
                imageBytes=usage[1] if usage is not None else None,
                online=sorted(users.values(), key=lambda u: u["userId"]),
                documentBytes=sizes,
                pendingBytes={name: doc.waiting_bytes for name, doc in room.docs.items()},
                retentionDefaultDays=self.registry.retention_days,
            )
            return summary

    async def room_info(self, request: web.Request, principal: Principal) -> web.Response:
        room_id = await self._room_id(request)
        info = await self._info(room_id)
        self._audit(AuditAction.ADMIN_READ, principal, room=room_id, detail="room")
        return _json(info)

    async def export_room(self, request: web.Request, principal: Principal) -> web.Response:
        """The room's export, for an admin key or the room's own facilitator
        (not removed from it: checked here, with the room's meta loaded)."""
        room_id = await self._room_id(request)
        fmt = request.query.get("format", "json")
        if fmt not in _EXPORT_FORMATS:
            raise InvalidPayload(f"format must be one of {', '.join(sorted(_EXPORT_FORMATS))}")
        zone = time_zone(request.query.get("tz"))
        async with self.registry.use(room_id) as room:
            if principal.identity is not None and principal.name in room.policy.removed:
                raise Removed("you were removed from this room")
            board = await self.registry.document(room_id, BOARD)
            chat = await self.registry.document(room_id, CHAT)
            shapes = tuple(read_board(board.engine.read_map(BOARD_ROOT)))
            export = RoomExport(
                room=room_id,
                meta=room.policy.snapshot(),
                messages=tuple(read_chat(chat.engine.read_array(CHAT_ROOT))),
                shapes=shapes,
                exported_ms=self.registry.clock_ms(),
                images=await self._images(room_id, shapes),
                threads=await private_threads(self.registry, room),
                checkins=tuple(export_checkins(room, self.control.checkin_vault)),
            )
        self._audit(
            AuditAction.EXPORT, principal, room=room_id, detail=f"{fmt} {principal.describe()}"
        )
        log.info(
            "export room=%s format=%s by=%s via=%s messages=%d shapes=%d",
            room_id,
            fmt,
            principal.log_name,
            principal.via,
            len(export.messages),
            len(export.shapes),
        )
        extensions = self.extensions
        if extensions.wants("on_export"):
            key = None if principal.by_token else principal.name
            extensions.notify("on_export", ExportEvent(room_id, fmt, principal.identity, key))
        filename = room_id.replace("/", "_")
        if fmt == "markdown":
            return web.Response(
                text=to_markdown(export, zone),
                content_type="text/markdown",
                headers={"Content-Disposition": f'attachment; filename="{filename}.md"'},
            )
        if fmt == "svg":
            return web.Response(
                text=to_svg(export),
                content_type="image/svg+xml",
                headers={
                    "Content-Disposition": f'attachment; filename="{filename}.svg"',
                    # Its images are data: URLs (collab.export).
                    "Content-Security-Policy": (
                        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
                    ),
                },
            )
        return _json(to_json(export))

    async def _images(
        self, room_id: RoomId, shapes: tuple[Shape, ...]
    ) -> dict[str, tuple[bytes, str]]:
        """The stored images the exported shapes name (those still stored)."""
        store = self.registry.store
        if not isinstance(store, BlobStore):
            return {}
        found = {}
        for digest in sorted({s.src for s in shapes if s.src is not None}):
            image = await store.get_blob(room_id, digest)
            if image is not None:
                found[digest] = image
        return found

    async def set_role(self, request: web.Request, principal: Principal) -> web.Response:
        """``{userId, role}``: a role override in the room, as ``mod:role``
        (participant or observer; null: back to the token's role)."""
        room_id = await self._room_id(request)
        user, role = role_request(await self._body(request, {"userId": (str,), "role": (object,)}))
        async with self.registry.use(room_id) as room:
            change = assign_role(room, user, role)
            self.emitter.broadcast(room_id, META, "sync-update", change.update)
            self.emitter.changed(room_id, META, change.update, None)
            self.control.refresh_roles(room)
            await self.control.broadcast_state(room)
            state = room_state(room)
        self._audit(AuditAction.ROLE, principal, room=room_id, detail=role_detail(user, role))
        log.info("role set room=%s user=%s by=%s", room_id, user_ref(user), principal.log_name)
        if self.extensions.wants("on_moderation"):
            detail = {"detail": role_detail(user, role), "key": principal.name}
            event = ModerationEvent(room_id, "admin:role", principal.identity, detail)
            self.extensions.notify("on_moderation", event)
        return _json({"userId": user, "role": role.value if role else None, "state": state})

    async def put_notice(self, request: web.Request, principal: Principal) -> web.Response:
        """``{text}``: the room's session notice (protocol.md §6.6), as
        ``mod:notice`` sets it (``""`` clears it); audited with its size."""
        room_id = await self._room_id(request)
        body = await self._body(request, {"text": (str,)})
        if "text" not in body:
            raise InvalidPayload("field 'text' is required ('' clears the notice)")
        async with self.registry.use(room_id) as room:
            change = set_notice(room, body["text"])
            self.emitter.broadcast(room_id, META, "sync-update", change.update)
            self.emitter.changed(room_id, META, change.update, None)
            await self.registry.flush_document(room, room.docs[META])
            notice = read_notice(room.docs[META].engine.read_map(META_ROOT))
        self._audit(AuditAction.NOTICE, principal, room=room_id, detail=notice_detail(notice))
        log.info("notice set room=%s chars=%d by=%s", room_id, len(notice), principal.log_name)
        return _json({"room": room_id, "notice": notice})

    # -- revocations (protocol.md §10.1) ---------------------------------------------

    async def revoke(self, request: web.Request, principal: Principal) -> web.Response:
        body = await self._body(
            request, {"jti": (str,), "sub": (str,), "room": (str,), "until": (int, float)}
        )
        if ("jti" in body) == ("sub" in body):
            raise InvalidPayload("give exactly one of 'jti' (a token) and 'sub' (a user)")
        if "jti" in body and not valid_token_id(body["jti"]):
            raise InvalidPayload("jti must be 1-128 printable ASCII characters, no space")
        if "sub" in body and not valid_subject(body["sub"]):
            raise InvalidPayload("sub must be 1-128 characters of [A-Za-z0-9_.:@|+-]")
        room = validate_room_id(body["room"]) if "room" in body else None
        revocations = self.revocations
        now = revocations.clock_ms()
        until = body.get("until")
        if until is None or not math.isfinite(until) or not now < until <= now + MAX_REVOCATION_MS:
            raise InvalidPayload(
                "until (milliseconds since the Unix epoch) is required, in the future, "
                "and at most 366 days away"
            )
        revocation = Revocation(
            id=secrets.token_hex(8),
            until_ms=float(until),
            created_ms=now,
            by=principal.name,
            jti=body.get("jti"),
            sub=body.get("sub"),
            room=room,
        )
        try:
            await revocations.add(revocation)
        except OSError as exc:
            log.error("revocation not stored: %s", exc)
            raise RoomUnavailable("the revocation could not be stored; try again") from None
        self._audit(AuditAction.REVOKE, principal, room=room, detail=_revocation_detail(revocation))
        await self.registry.flush_audit()
        log.info("revoked id=%s by=%s", revocation.id, principal.log_name)
        return _json(revocation.as_json(), 201)

    async def list_revocations(self, request: web.Request, principal: Principal) -> web.Response:
        revocations = self.revocations
        try:
            await revocations.refresh()
        except OSError:
            raise RoomUnavailable("the revocations could not be read; try again") from None
        current = revocations.current()
        self._audit(AuditAction.ADMIN_READ, principal, detail=f"revocations count={len(current)}")
        return _json({"revocations": [r.as_json() for r in current]})

    async def unrevoke(self, request: web.Request, principal: Principal) -> web.Response:
        revocation_id = request.match_info["id"]
        if len(revocation_id) > _MAX_REVOCATION_ID_CHARS:
            raise NotFound("no such revocation")
        try:
            deleted = await self.revocations.delete(revocation_id)
        except OSError:
            raise RoomUnavailable("the revocation could not be deleted; try again") from None
        if not deleted:
            raise NotFound("no such revocation")
        self._audit(AuditAction.UNREVOKE, principal, detail=f"id={quote(revocation_id)}")
        log.info("revocation lifted id=%s by=%s", quote(revocation_id), principal.log_name)
        return _json({"deleted": revocation_id})

    async def delete_room(self, request: web.Request, principal: Principal) -> web.Response:
        room_id = await self._room_id(request)
        closed = await self.control.close_room(room_id, RoomDeleted("the room was deleted"))
        await self.registry.delete_room(room_id)
        self._audit(AuditAction.DELETE, principal, room=room_id, detail=f"connections={closed}")
        await self.registry.flush_audit()
        log.info("room deleted room=%s connections=%d", room_id, closed)
        if self.extensions.wants("on_room_ended"):
            self.extensions.notify("on_room_ended", RoomEvent(room_id, "deleted"))
        return _json({"deleted": room_id, "connectionsClosed": closed})

    async def audit_log(self, request: web.Request, principal: Principal) -> web.Response:
        room_id = await self._room_id(request, must_exist=False)
        try:
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            raise InvalidPayload("limit must be an integer") from None
        if not 1 <= limit <= 10_000:
            raise InvalidPayload("limit must be between 1 and 10000")
        await self.registry.flush_audit()
        records = await self.registry.store.read_audit(room_id, limit=limit)
        # Recorded after the read: the answer is the log as it was before it.
        self._audit(AuditAction.ADMIN_READ, principal, room=room_id, detail=f"audit limit={limit}")
        return _json({"room": room_id, "records": [r.as_json() for r in records]})

    async def openapi(self, request: web.Request) -> web.Response:
        return _json(OPENAPI)

    # -- templates (collab.admin_templates) ------------------------------------

    @property
    def templates(self) -> TemplateLibrary:
        return self.control.templates

    def audit_template(self, action: AuditAction, principal: Principal, detail: str) -> None:
        self._audit(action, principal, detail=detail)


def _revocation_detail(revocation: Revocation) -> str:
    target = (
        f"jti={quote(revocation.jti, limit=64)}"
        if revocation.jti is not None
        else f"sub={revocation.sub}"
    )
    return f"id={revocation.id} {target} until={revocation.until_ms:.0f}"


def add_admin_routes(web_app: web.Application, app: CollabApp) -> None:
    """Route ``/api/`` to the admin API, count failed logins in ``app``'s
    metrics, and report them on a timer while ``web_app`` runs; stop the
    node's revocation polling (rooms.revocations) at shutdown.

    Call before the server's own on_shutdown hook is added: the last report
    of failed logins must be queued before the last audit flush.
    """
    failures = FailedLogins(app)
    web_app[ADMIN_FAILURES] = failures
    web_app.on_startup.append(failures.start)
    web_app.on_shutdown.append(failures.stop)

    async def stop_revocations(_web_app: web.Application) -> None:
        if app.revocations is not None:
            await app.revocations.close()

    web_app.on_shutdown.append(stop_revocations)
    app.metrics.registry.register(FailedLoginsCollector(failures))
    api = AdminApi(app, failures)
    r = web_app.router
    r.add_get("/api/openapi.json", api.openapi)
    r.add_post("/api/rooms", api.guarded(api.create_room, AuditAction.CREATE))
    r.add_get("/api/rooms", api.guarded(api.list_rooms, AuditAction.ADMIN_READ))
    r.add_get(
        "/api/rooms/{room}/export",
        api.guarded(api.export_room, AuditAction.EXPORT, facilitator_ok=True),
    )
    r.add_get("/api/rooms/{room}/audit", api.guarded(api.audit_log, AuditAction.ADMIN_READ))
    r.add_post("/api/rooms/{room}/roles", api.guarded(api.set_role, AuditAction.ROLE))
    r.add_put("/api/rooms/{room}/notice", api.guarded(api.put_notice, AuditAction.NOTICE))
    r.add_get("/api/rooms/{room}", api.guarded(api.room_info, AuditAction.ADMIN_READ))
    r.add_delete("/api/rooms/{room}", api.guarded(api.delete_room, AuditAction.DELETE))
    r.add_post("/api/revocations", api.guarded(api.revoke, AuditAction.REVOKE))
    r.add_get("/api/revocations", api.guarded(api.list_revocations, AuditAction.ADMIN_READ))
    r.add_delete("/api/revocations/{id}", api.guarded(api.unrevoke, AuditAction.UNREVOKE))
    add_template_routes(r, api.guarded, lambda: api.templates, api.audit_template)
