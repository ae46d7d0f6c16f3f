"""The admin HTTP API under ``/api/`` (protocol.md §10; OpenAPI at /api/openapi.json).

Every route but the OpenAPI document needs ``Authorization: Bearer <admin
key>``. Room ids travel URL-encoded in the path (``clinic-7%2Fgroup-a``).
Errors are JSON ``{"error": {"code", "message"}}`` with the HTTP status of
their code.

Failed logins are audited per remote address per minute (:class:`FailedLogins`),
so a flood of bad keys costs a few audit records and log lines, not one each.
Every client-supplied string written to a log line or an audit record goes
through :func:`crdt.text.quote` (protocol.md §10.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from collab.export import RoomExport, to_json, to_markdown, to_svg
from collab.openapi import OPENAPI
from collab.room_control import room_state
from collab.tokens import room_matches
from crdt.errors import (
    CollabError,
    Conflict,
    ErrorCode,
    InvalidPayload,
    NotFound,
    RoomDeleted,
    RoomUnavailable,
    Unauthorized,
)
from crdt.schemas import BOARD_ROOT, CHAT_ROOT, read_board, read_chat
from crdt.text import quote
from crdt.types import RoomId
from rooms.audit import AuditAction
from rooms.identity import Role
from rooms.incidents import Incidents
from rooms.moderation import set_title
from rooms.names import BOARD, CHAT, META, validate_room_id

if TYPE_CHECKING:
    from collab.app import CollabApp
    from collab.sync import SyncServer
    from rooms.registry import RoomRegistry

__all__ = ["ADMIN_FAILURES", "FailedLogins", "add_admin_routes"]

log = logging.getLogger("collab.admin")

_STATUS = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.ROOM_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}
_MAX_BODY_BYTES = 64 << 10
_EXPORT_FORMATS = {"json", "markdown", "svg"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The methods of the admin routes (what the router can have matched).
_ROUTE_METHODS = frozenset({"GET", "HEAD", "POST", "DELETE"})
#: How long a path may be in an audit record or a log line (quoted, cut).
_MAX_PATH_CHARS = 120


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(exc: CollabError) -> web.Response:
    status = _STATUS.get(exc.code, 400)
    return _json({"error": {"code": exc.code.value, "message": str(exc)}}, status)


class FailedLogins:
    """Failed admin logins, counted per remote address per window.

    The first failure of an address in a window of ``window_s`` is audited
    (``admin_auth``, outcome ``unauthorized``, detail: the method, the quoted
    path and address) and logged; the rest of that window's are only counted.
    When the window is over, :meth:`report` writes one record and one line
    per address that failed again (``repeats=N``). So a flood of bad keys
    costs a few records and lines a minute whatever its rate: an attacker
    cannot fill the audit log or the server log with them. At most
    ``max_addresses`` addresses are told apart per window; the others are
    counted together as ``"other"`` (:data:`rooms.incidents.OTHER`).

    :meth:`start` runs :meth:`report` every ``report_every_s``; :meth:`stop`
    ends that and reports every window, ended or not.
    """

    def __init__(
        self,
        app: CollabApp,
        *,
        window_s: float = 60.0,
        max_addresses: int = 100,
        report_every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.incidents = Incidents(window_s=window_s, max_keys=max_addresses)
        self.report_every_s = report_every_s
        self.clock = clock
        #: Every failed login since the start (``collab_admin_auth_failures_total``).
        self.total = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def window_s(self) -> float:
        return self.incidents.window_s

    def failed(self, request: web.Request) -> None:
        """Count a request refused for its key; audit and log it if it is the
        first of its address in this window."""
        self.total += 1
        remote = request.remote or "-"
        if not self.incidents.note(remote, self.clock()):
            return
        # The router matched the method to a route, so it is one of ours.
        method = request.method if request.method in _ROUTE_METHODS else quote(request.method)
        path = quote(request.path, limit=_MAX_PATH_CHARS)
        detail = f"{method} {path} remote={quote(remote)}"
        self._audit(detail)
        log.warning("admin login failed %s", detail)

    def report(self, now: float | None = None) -> int:
        """Write one audit record and one log line for each address whose
        failures repeated in a window that ended by ``now`` (the clock's
        time by default); return how many were written."""
        repeats = self.incidents.drain(self.clock() if now is None else now)
        for summary in repeats:
            detail = f"repeats={summary.count} remote={quote(summary.key)}"
            self._audit(detail)
            log.warning("admin login failed again %s window_s=%g", detail, self.window_s)
        return len(repeats)

    def _audit(self, detail: str) -> None:
        registry = self.app.registry
        if registry is not None:  # None while starting: logged only
            registry.audit(
                AuditAction.ADMIN_AUTH, outcome=ErrorCode.UNAUTHORIZED.value, detail=detail
            )

    async def start(self, _web_app: web.Application) -> None:
        """Report ended windows every ``report_every_s`` (an on_startup hook)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._report_loop())

    async def stop(self, _web_app: web.Application) -> None:
        """Stop reporting on a timer and report every window now (an
        on_shutdown hook, run before the server's last audit flush)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.report(math.inf)

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.report_every_s)
            self.report()


class _FailedLoginsCollector(Collector):
    def __init__(self, failures: FailedLogins) -> None:
        self._failures = failures

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "collab_admin_auth_failures",
            "Admin API requests refused for a missing or wrong key.",
            value=self._failures.total,
        )


#: The server's :class:`FailedLogins` (on the aiohttp application).
ADMIN_FAILURES = web.AppKey("collab.admin.failures", FailedLogins)


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
    def __init__(self, app: CollabApp, failures: FailedLogins) -> None:
        self.app = app
        self.failures = failures

    @property
    def registry(self) -> RoomRegistry:
        if self.app.registry is None:
            raise RoomUnavailable("the server is starting")
        return self.app.registry

    @property
    def sync(self) -> SyncServer:
        if self.app.sync is None:
            raise RoomUnavailable("the server is starting")
        return self.app.sync

    def guarded(
        self, handler: Handler, action: AuditAction | None = None, *, facilitator_ok: bool = False
    ) -> Handler:
        """Check the admin key, then run ``handler``; CollabErrors become JSON
        errors, and failed ``action`` requests are written to the audit log."""

        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                self._authorize(request, facilitator_ok=facilitator_ok)
            except CollabError as exc:
                return _error(exc)
            try:
                return await handler(request)
            except CollabError as exc:
                if action is not None and self.app.registry is not None:
                    room, detail = _audited_room(request.match_info.get("room"))
                    self.app.registry.audit(
                        action, room=room, outcome=exc.code.value, detail=detail
                    )
                return _error(exc)

        return wrapper

    def _authorize(self, request: web.Request, *, facilitator_ok: bool = False) -> None:
        key = self.app.security.admin_key if self.app.security else None
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        given = given.strip()
        ok = (
            key is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.encode(), key.encode())
        )
        if not ok and facilitator_ok and scheme.lower() == "bearer":
            ok = self._facilitator_of(request, given)
        if not ok:
            self.failures.failed(request)
            reason = (
                "the admin API is disabled (no --admin-key)"
                if key is None
                else ("missing or wrong admin key")
            )
            raise Unauthorized(reason)

    def _facilitator_of(self, request: web.Request, token: str) -> bool:
        """Whether ``token`` is a facilitator's token for the room in the path
        (the web app's export button uses its own token, not the admin key)."""
        try:
            room = validate_room_id(request.match_info.get("room", ""))
            claims = self.app.security.tokens.verify(token)
        except CollabError:
            return False
        return claims["role"] == Role.FACILITATOR.value and room_matches(claims["room"], room)

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

    # -- routes -------------------------------------------------------------

    async def create_room(self, request: web.Request) -> web.Response:
        body = await self._body(
            request, {"id": (str,), "title": (str,), "retentionDays": (int, float, type(None))}
        )
        if "id" not in body:
            raise InvalidPayload("field 'id' is required")
        room_id = validate_room_id(body["id"])
        days = body.get("retentionDays")
        if days is not None and not 0 < days <= 36500:
            raise InvalidPayload("retentionDays must be between 0 and 36500")
        if await self._exists(room_id):
            raise Conflict(f"room {room_id} already exists")
        async with self.registry.use(room_id) as room:
            change = set_title(room, body.get("title", ""))
            await self.sync.control.broadcast_state(room)
            self.sync.broadcast(room_id, META, "sync-update", change.update)
            await self.registry.set_retention(room, days)
            await self.registry.flush_document(room, room.docs[META])
        self.registry.audit(AuditAction.CREATE, room=room_id, detail="admin")
        log.info("room created room=%s", room_id)
        return _json(await self._info(room_id), 201)

    async def list_rooms(self, request: web.Request) -> web.Response:
        infos = {i.room: i for i in await self.registry.store.list_room_infos()}
        ids = sorted(
            set(infos) | set(await self.registry.store.list_rooms()) | set(self.registry.rooms)
        )
        return _json({"rooms": [self._summary(r, infos.get(r)) for r in ids]})

    def _summary(self, room_id: RoomId, info: Any) -> dict[str, Any]:
        loaded = self.registry.rooms.get(room_id)
        if loaded is not None and loaded.info is not None:
            info = loaded.info
        online = len(self.sync.by_room.get(room_id, ())) if self.app.sync is not None else 0
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
            for sid in self.sync.by_room.get(room_id, ()):
                conn = self.sync.connections.get(sid)
                if conn is None:
                    continue
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
            summary.update(
                state=room_state(room),
                online=sorted(users.values(), key=lambda u: u["userId"]),
                documentBytes=sizes,
                pendingBytes={name: doc.waiting_bytes for name, doc in room.docs.items()},
                retentionDefaultDays=self.registry.retention_days,
            )
            return summary

    async def room_info(self, request: web.Request) -> web.Response:
        return _json(await self._info(await self._room_id(request)))

    async def export_room(self, request: web.Request) -> web.Response:
        room_id = await self._room_id(request)
        fmt = request.query.get("format", "json")
        if fmt not in _EXPORT_FORMATS:
            raise InvalidPayload(f"format must be one of {', '.join(sorted(_EXPORT_FORMATS))}")
        async with self.registry.use(room_id) as room:
            board = await self.registry.document(room_id, BOARD)
            chat = await self.registry.document(room_id, CHAT)
            export = RoomExport(
                room=room_id,
                meta=room.policy.snapshot(),
                messages=tuple(read_chat(chat.engine.read_array(CHAT_ROOT))),
                shapes=tuple(read_board(board.engine.read_map(BOARD_ROOT))),
                exported_ms=self.registry.clock_ms(),
            )
        self.registry.audit(AuditAction.EXPORT, room=room_id, detail=fmt)
        log.info(
            "export room=%s format=%s messages=%d shapes=%d",
            room_id,
            fmt,
            len(export.messages),
            len(export.shapes),
        )
        filename = room_id.replace("/", "_")
        if fmt == "markdown":
            return web.Response(
                text=to_markdown(export),
                content_type="text/markdown",
                headers={"Content-Disposition": f'attachment; filename="{filename}.md"'},
            )
        if fmt == "svg":
            return web.Response(
                text=to_svg(export),
                content_type="image/svg+xml",
                headers={
                    "Content-Disposition": f'attachment; filename="{filename}.svg"',
                    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                },
            )
        return _json(to_json(export))

    async def delete_room(self, request: web.Request) -> web.Response:
        room_id = await self._room_id(request)
        closed = await self.sync.control.close_room(room_id, RoomDeleted("the room was deleted"))
        await self.registry.delete_room(room_id)
        self.registry.audit(AuditAction.DELETE, room=room_id, detail=f"connections={closed}")
        await self.registry.flush_audit()
        log.info("room deleted room=%s connections=%d", room_id, closed)
        return _json({"deleted": room_id, "connectionsClosed": closed})

    async def audit_log(self, request: web.Request) -> web.Response:
        room_id = await self._room_id(request, must_exist=False)
        try:
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            raise InvalidPayload("limit must be an integer") from None
        if not 1 <= limit <= 10_000:
            raise InvalidPayload("limit must be between 1 and 10000")
        await self.registry.flush_audit()
        records = await self.registry.store.read_audit(room_id, limit=limit)
        return _json({"room": room_id, "records": [r.as_json() for r in records]})

    async def openapi(self, request: web.Request) -> web.Response:
        return _json(OPENAPI)


def add_admin_routes(web_app: web.Application, app: CollabApp) -> None:
    """Route ``/api/`` to the admin API, count failed logins in ``app``'s
    metrics, and report them on a timer while ``web_app`` runs.

    Call before the server's own on_shutdown hook is added: the last report
    of failed logins must be queued before the last audit flush.
    """
    failures = FailedLogins(app)
    web_app[ADMIN_FAILURES] = failures
    web_app.on_startup.append(failures.start)
    web_app.on_shutdown.append(failures.stop)
    app.metrics.registry.register(_FailedLoginsCollector(failures))
    api = AdminApi(app, failures)
    r = web_app.router
    r.add_get("/api/openapi.json", api.openapi)
    r.add_post("/api/rooms", api.guarded(api.create_room, AuditAction.CREATE))
    r.add_get("/api/rooms", api.guarded(api.list_rooms))
    r.add_get(
        "/api/rooms/{room}/export",
        api.guarded(api.export_room, AuditAction.EXPORT, facilitator_ok=True),
    )
    r.add_get("/api/rooms/{room}/audit", api.guarded(api.audit_log))
    r.add_get("/api/rooms/{room}", api.guarded(api.room_info))
    r.add_delete("/api/rooms/{room}", api.guarded(api.delete_room, AuditAction.DELETE))
