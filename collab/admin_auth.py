"""Who is calling the admin API (protocol.md §10.1): a named admin key, or,
on the export route only, a facilitator's own token; and failed logins,
counted per address (:class:`FailedLogins`).

A request is authorized as a :class:`Principal`, which every audit record
of the request names: ``user_id`` is the admin key's name (role ``admin``)
or the token's ``sub`` (role ``facilitator``). A bearer value that is no
admin key and no valid token is a failed login (401 ``unauthorized``). A
valid facilitator token that may not export this room is refused with its
reason (403: ``permission_denied`` for another role or a prefix token,
``wrong_room``, ``revoked``), audited with who it was, once per kind a
minute (collab.reporting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from collab.errors import AppCode, Revoked, Unauthorized, WrongRoom
from collab.logs import user_ref
from crdt.errors import CollabError
from crdt.text import quote
from crdt.types import RoomId
from rooms.audit import AuditAction
from rooms.errors import PermissionDenied, RoomUnavailable
from rooms.identity import Identity, Role
from rooms.incidents import Incidents
from rooms.names import validate_room_id

if TYPE_CHECKING:
    from collab.app import CollabApp

__all__ = [
    "ADMIN_FAILURES",
    "ADMIN_ROLE",
    "AdminAuth",
    "FailedLogins",
    "FailedLoginsCollector",
    "Principal",
]

log = logging.getLogger("collab.admin")

#: The methods of the admin routes (what the router can have matched).
_ROUTE_METHODS = frozenset({"GET", "HEAD", "POST", "DELETE"})
#: How long a path may be in an audit record or a log line (quoted, cut).
_MAX_PATH_CHARS = 120
#: The audit ``role`` of a record an admin key's holder caused.
ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made an admin API request."""

    #: The admin key's name, or the token's ``sub``.
    name: str
    #: ``admin``, or the token's role (``facilitator``).
    role: str
    #: ``admin-key`` or ``token``.
    via: str
    #: The token's identity (token principals only).
    identity: Identity | None = None

    @property
    def by_token(self) -> bool:
        return self.identity is not None

    @property
    def log_name(self) -> str:
        """How a log line names the caller: the admin key's name, or a
        pseudonym of the token's ``sub`` (collab.logs.user_ref)."""
        return user_ref(self.name) if self.by_token else self.name

    def describe(self) -> str:
        """``via=...`` (and the token's ``jti``) for an audit record's detail."""
        jti = self.identity.token_id if self.identity is not None else None
        return f"via={self.via}" + (f" jti={quote(jti, limit=64)}" if jti else "")


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
                AuditAction.ADMIN_AUTH, outcome=AppCode.UNAUTHORIZED.value, detail=detail
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


class FailedLoginsCollector(Collector):
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


class AdminAuth:
    """Authorizes admin API requests for a :class:`collab.app.CollabApp`."""

    def __init__(self, app: CollabApp, failures: FailedLogins) -> None:
        self.app = app
        self.failures = failures

    async def authorize(self, request: web.Request, *, facilitator_ok: bool) -> Principal:
        """The request's principal; Unauthorized (a failed login) for no or a
        wrong key, or a refusal of a valid token (see the module docstring)."""
        keys = self.app.security.admin_keys
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        given = given.strip()
        bearer = scheme.lower() == "bearer" and bool(given)
        name = keys.match(given) if bearer else None
        if name is not None:
            return Principal(name, ADMIN_ROLE, "admin-key")
        if bearer and facilitator_ok and given.count(".") == 2:
            claims = self._verified(given)
            if claims is not None:
                return await self._facilitator(request, claims)
        self.failures.failed(request)
        if not keys.enabled:
            raise Unauthorized("the admin API is disabled (no --admin-key)")
        raise Unauthorized("missing or wrong admin key")

    def _verified(self, token: str) -> dict[str, Any] | None:
        """The claims of a token that verifies (None: a failed login)."""
        try:
            return self.app.security.tokens.verify(token)
        except CollabError:
            return None

    async def _facilitator(self, request: web.Request, claims: dict[str, Any]) -> Principal:
        """A facilitator's token for exactly the room in the path, not revoked
        (protocol.md §10.1: the facilitator-token export path). Whether the
        user was removed from the room is checked with the room loaded."""
        identity = self.app.security.tokens.identity(claims)
        claims_room = str(claims["room"])
        try:
            room = validate_room_id(request.match_info.get("room", ""))
            if identity.role is not Role.FACILITATOR:
                raise PermissionDenied("only a facilitator's token may export a room")
            if claims_room.endswith("/*"):
                raise PermissionDenied(
                    "a prefix token (room 'prefix/*') may not export: use a token for this room"
                )
            if claims_room != room:
                raise WrongRoom("the token is not valid for this room")
            revocations = self.app.revocations
            if revocations is None:
                raise RoomUnavailable("the server is starting")
            try:
                await revocations.refresh()  # exports are rare: ask the store now
            except OSError:
                raise RoomUnavailable("the server cannot check revocations; try again") from None
            if revocations.match(sub=identity.user_id, jti=identity.token_id, room=room):
                raise Revoked("the token was revoked")
        except CollabError as exc:
            self.refused(request, identity, exc)
            raise
        return Principal(identity.user_id, identity.role.value, "token", identity)

    def refused(self, request: web.Request, identity: Identity, exc: CollabError) -> None:
        """Audit (once per kind a minute) and log a valid token's refused export."""
        reporter = self.app.reporter
        raw_room = request.match_info.get("room")
        try:
            room: RoomId | None = validate_room_id(raw_room or "")
        except CollabError:
            room = None
        if reporter is not None:
            reporter.audit(
                AuditAction.EXPORT,
                room=room,
                identity=identity,
                outcome=exc.code.value,
                detail="via=token",
            )
            reporter.line(
                ("export refused", exc.code.value, identity.user_id),
                "export refused code=%s room=%s user=%s",
                exc.code.value,
                room or "-",
                user_ref(identity.user_id),
            )
