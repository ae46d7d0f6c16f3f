"""Assembling the server: store, rooms, Socket.IO and HTTP routes on one aiohttp app.

A stop keeps what the server acknowledged (protocol.md §11.3): the final
write gets ``shutdown_grace_s``; what the store did not take by then goes to
a recovery file in ``--data-dir`` (rooms.recovery), and the exit code says
so (:class:`ExitCode`). A start replays such files before it accepts a connect.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import secrets
import signal
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web
from aiohttp.typedefs import Middleware

from collab import __version__
from collab.admin import add_admin_routes
from collab.auth import Authenticator, Security, build_security
from collab.broadcast import Broadcaster
from collab.config import Settings
from collab.connections import ConnectionTable
from collab.emitter import Emitter
from collab.extensions import Extension, Extensions
from collab.front import CollabSite, FrontDoor
from collab.heartbeat import Heartbeat
from collab.images import add_image_routes
from collab.logs import WebSocketAccessLog, access_log_options, describe_exception
from collab.metrics import Metrics, StoreStats
from collab.packets import CollabPacket
from collab.polling import install_polling
from collab.reporting import Reporter
from collab.room_control import RoomControl
from collab.sessions import SessionGuard, SessionLimits
from collab.sync import SyncServer
from collab.transport import FrameLimits, WebSocketTracker, install_transport
from collab.upstream import install_direct_sends
from collab.web import add_web_routes
from collab.webhooks import Webhooks, webhooks_collector
from crdt.engine import engine_factory
from crdt.errors import CollabError
from crdt.text import bad_name_character
from rooms.checkin_seal import CheckinVault
from rooms.identity import Role
from rooms.limits import Limits, Rates
from rooms.names import validate_room_id
from rooms.nodes import Replication
from rooms.ratelimit import Rate
from rooms.recovery import replay_recovery_files, write_recovery_file
from rooms.redis_conn import redis_options
from rooms.registry import RoomRegistry
from rooms.revocations import Revocations
from rooms.store import Store
from rooms.store_memory import MemoryStore
from rooms.store_redis import RedisStore
from rooms.store_sqlite import SqliteStore

if TYPE_CHECKING:
    from rooms.store_postgres import PostgresStore

__all__ = [
    "CollabApp",
    "ExitCode",
    "StartupError",
    "create_app",
    "open_store",
    "serve",
    "tls_context",
]


class StartupError(Exception):
    """The server cannot start (its store is unreachable); the message says why."""


class ExitCode(IntEnum):
    """How ``collab serve`` ended (README, "Operating collab")."""

    #: Stopped; the store has everything.
    OK = 0
    #: Could not start (collab.cli).
    START_FAILED = 1
    #: Stopped; what the store did not take is in a recovery file, replayed
    #: by the next start (EX_TEMPFAIL).
    RECOVERY_FILE = 75
    #: Stopped; what the store did not take could not be written anywhere:
    #: it is lost (EX_IOERR). The log says how much.
    UNSAVED_LOST = 74


log = logging.getLogger("collab")

#: Answers that are one caller's data (the admin API and its exports, a dev
#: token) or the server's state (/metrics, /healthz): no cache may keep them
#: and no browser may read them as another type, error answers included. A
#: room's image sets its own Cache-Control (``private, no-cache``).
_PRIVATE_PREFIXES = ("/api/", "/dev/")
_PRIVATE_PATHS = frozenset({"/api", "/metrics", "/healthz", "/readyz"})
_PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
#: Sent on every answer when collab serves TLS itself (a proxy in front
#: sends its own): browsers use only HTTPS for the host for a year.
_HSTS = "max-age=31536000"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def checkin_vault(settings: Settings, node_id: str, store: Store) -> CheckinVault:
    """The check-ins' sealing key (rooms.checkin_seal): the cluster key's,
    else one kept in the data directory; a memory store's is its own."""
    if settings.cluster_key:
        return CheckinVault.from_secret(settings.cluster_key, writer=node_id)
    if isinstance(store, MemoryStore):
        return CheckinVault.ephemeral(writer=node_id)
    return CheckinVault.from_key_file(settings.data_dir, writer=node_id)


async def open_store(settings: Settings, *, node_id: str) -> Store:
    """The store the settings name, opened; OSError saying why if it cannot be
    reached, or the Redis or PostgreSQL settings cannot make a connection."""
    if settings.store == "memory":
        return MemoryStore()
    if settings.store == "redis":
        options = redis_options(
            settings.redis_url,
            password_file=settings.redis_password_file,
            tls_ca=settings.redis_tls_ca,
            tls_cert=settings.redis_tls_cert,
            tls_key=settings.redis_tls_key,
            tls_check_hostname=settings.redis_tls_check_hostname,
        )
        live = await RedisStore.open(options, node_id=node_id, cluster_key=settings.cluster_key)
        if settings.postgres_url is None:
            return live
        # PostgreSQL as the system of record behind Redis (rooms.store_tiered).
        try:
            records = await _open_postgres(settings)
        except BaseException:
            await live.close()
            raise
        from rooms.store_tiered import TieredStore  # needs asyncpg, as above

        return TieredStore(live, records)
    if settings.store == "postgres":
        return await _open_postgres(settings)
    return await SqliteStore.open(settings.sqlite_path)


async def _open_postgres(settings: Settings) -> PostgresStore:
    assert settings.postgres_url is not None  # Settings checks it
    try:
        # asyncpg is the optional `postgres` extra: imported only when chosen.
        from rooms.postgres_conn import postgres_options
        from rooms.store_postgres import PostgresStore
    except ImportError as exc:
        raise OSError(
            f"PostgreSQL needs {exc.name or 'asyncpg'}: pip install 'collab[postgres]'"
        ) from None
    pg = postgres_options(settings.postgres_url, password_file=settings.postgres_password_file)
    return await PostgresStore.open(pg)


def limits_from(s: Settings) -> Limits:
    """The room layer's limits from the settings (protocol.md §8)."""
    return Limits(
        max_message_bytes=s.max_message_bytes,
        max_update_structs=s.max_update_structs,
        max_chat_chars=s.max_chat_chars,
        chat_delete_window_s=s.chat_delete_window_s,
        strict_board=s.strict_board,
        max_board_bytes=s.max_board_bytes,
        max_chat_bytes=s.max_chat_bytes,
        max_meta_bytes=s.max_meta_bytes,
        max_pending_updates=s.max_pending_updates,
        max_pending_bytes=s.max_pending_bytes,
        max_room_connections=s.max_room_connections,
        max_connections_per_user=s.max_connections_per_user,
        awareness_fields=None if "*" in s.awareness_fields else frozenset(s.awareness_fields),
        rates=Rates(
            updates=Rate(s.update_rate_per_s, s.update_burst),
            # A burst always admits one message of the largest size allowed
            # (an answer to the server's sync-step-1 costs a burst at most).
            update_bytes=Rate(s.update_bytes_per_s, max(s.update_bytes_burst, s.max_message_bytes)),
            awareness=Rate(s.awareness_rate_per_s, s.awareness_burst),
            awareness_bytes=Rate(s.awareness_bytes_per_s, s.awareness_bytes_burst),
            chat=Rate(s.chat_rate_per_s, s.chat_burst),
            events=Rate(s.event_rate_per_s, s.event_burst),
            refusals=Rate(s.max_refusals_per_min / 60.0, s.max_refusals_per_min),
            reactions=Rate(s.reaction_rate_per_s, s.reaction_burst),
        ),
    )


def frame_limits(s: Settings) -> FrameLimits:
    """The largest frames a client may send (protocol.md §8.1): a binary
    frame may hold the answer to the server's sync-step-1, as large as the
    largest document (one the server accepted can always be given back to
    it whole); a text frame, an event's payload."""
    largest = max(s.max_board_bytes, s.max_chat_bytes, s.max_meta_bytes)
    return FrameLimits.of(max_message_bytes=s.max_message_bytes, max_document_bytes=largest)


def session_limits_from(s: Settings) -> SessionLimits:
    """The Engine.IO session limits from the settings (protocol.md §8)."""
    return SessionLimits(
        max_sessions_per_address=s.max_sessions_per_address,
        max_documents_per_session=s.max_documents_per_session,
        max_failed_connects_per_min=s.max_failed_connects_per_min,
        connect_timeout_s=s.connect_timeout_s,
        acks=Rate(s.event_rate_per_s, s.event_burst),
        refusals=Rate(s.max_refusals_per_min / 60.0, s.max_refusals_per_min),
        # The longest chat message fits, JSON escapes and all (\uXXXX: 6 bytes).
        lane_event_bytes=max(64 << 10, 6 * s.max_chat_chars + 4096),
    )


@dataclass
class CollabApp:
    """A configured server: the aiohttp app plus handles the tests and CLI use."""

    settings: Settings
    web_app: web.Application
    sio: socketio.AsyncServer
    metrics: Metrics
    security: Security
    authenticator: Authenticator
    sessions: SessionGuard
    websockets: WebSocketTracker = field(default_factory=WebSocketTracker)
    #: collab's own WebSocket server for Engine.IO opens on a WebSocket (collab.front).
    front: FrontDoor | None = None
    node_id: str = field(default_factory=lambda: "node-" + secrets.token_hex(4))
    registry: RoomRegistry | None = None
    replication: Replication | None = None
    #: This node's Socket.IO connections (empty until the server starts).
    connections: ConnectionTable = field(default_factory=ConnectionTable)
    #: The Socket.IO side, made at startup: what sends, what acts on whole
    #: rooms, revocations, coalesced audit and log lines, and the handlers.
    emitter: Emitter | None = None
    control: RoomControl | None = None
    revocations: Revocations | None = None
    reporter: Reporter | None = None
    sync: SyncServer | None = None
    store: Store | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: What ``collab serve`` exits with (set by a stop that could not save).
    exit_code: ExitCode = ExitCode.OK
    #: The platform's hooks (collab.extensions).
    extensions: Extensions = field(default_factory=Extensions)
    #: A store given to create_app, used instead of opening the configured one.
    given_store: Store | None = None

    def site(
        self,
        runner: web.AppRunner,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> web.TCPSite:
        """The listening site for ``runner`` (this app's): collab.front in
        front of aiohttp, with the configured listen backlog."""
        assert self.front is not None
        return CollabSite(
            runner,
            self.front,
            host,
            port,
            ssl_context=ssl_context,
            backlog=self.settings.listen_backlog,
        )

    async def startup(self, _app: web.Application) -> None:
        s = self.settings
        self.store = self.given_store or await open_store(s, node_id=self.node_id)
        limits = limits_from(s)
        # How nodes sharing the store keep in step: the store knows (rooms.nodes).
        replication = self.store.replication(
            node_id=self.node_id, awareness_timeout_s=s.awareness_timeout_s
        )
        self.replication = replication
        self.registry = RoomRegistry(
            store=self.store,
            engine_factory=engine_factory(s.engine),
            limits=limits,
            unload_after_s=s.unload_after_s,
            flush_interval_s=s.flush_interval_s,
            compact_after_updates=s.compact_after_updates,
            retention_days=s.retention_days,
            retention_check_interval_s=s.retention_check_interval_s,
            store_delay_window_s=s.store_delay_window_s,
            join_timeout_s=s.join_timeout_s,
            replication=replication,
        )
        await replication.start(self.registry)
        if replication.shared:  # how this node hears the others, for /metrics
            self.metrics.bind_replication(replication.counters, lambda: replication.healthy)
        if s.store != "memory":
            # What an earlier stop could not store, back before any connect.
            await replay_recovery_files(self.registry, s.data_dir)
        self.registry.start()
        broadcaster = Broadcaster(
            self.sio,
            self.websockets,
            # Per-connection deflate state forbids sharing one encoded frame.
            enabled=s.fast_broadcast and not s.websocket_compression,
            max_send_buffer_bytes=s.max_send_buffer_bytes,
        )
        self.metrics.bind_broadcast(broadcaster.stats)
        self.sync = self._sync_server(self.registry, broadcaster)
        webhooks = [e for e in self.extensions.extensions if isinstance(e, Webhooks)]
        for hooks in webhooks:
            try:
                hooks.use_store(self.store)  # the outbox lives with the documents
            except ValueError as exc:
                raise StartupError(str(exc)) from None
        if webhooks:
            self.metrics.registry.register(webhooks_collector(webhooks))
        await self.extensions.start(self.sync.port)
        self.metrics.bind_extensions(lambda: self.extensions.stats)
        registry = self.registry
        self.metrics.bind_gauges(lambda: len(registry.rooms), lambda: registry.document_count)
        self.metrics.bind_store(lambda: _store_stats(registry))
        self.ready.set()
        log.info(
            "started node=%s store=%s engine=%s version=%s",
            self.node_id,
            s.store,
            s.engine,
            __version__,
        )

    def _sync_server(self, registry: RoomRegistry, broadcaster: Broadcaster) -> SyncServer:
        """The Socket.IO handlers and the parts they share with the admin API,
        each kept on this app; the reporter and revocations are started."""
        self.reporter = reporter = Reporter(registry)
        self.emitter = emitter = Emitter(
            self.sio,
            broadcaster,
            self.metrics,
            registry,
            self.connections,
            reporter,
            self.sessions,
            self.extensions,
        )
        # Revocations (protocol.md §10.1) are polled from the store; a new one
        # closes the local connections it covers (on_new, once RoomControl exists).
        self.revocations = revocations = Revocations(registry.store)
        self.control = control = RoomControl(
            self.connections,
            emitter,
            registry,
            reporter,
            self.sessions,
            self.extensions,
            revocation_clock_ms=revocations.clock_ms,
            restore_interval_s=self.settings.restore_interval_s,
            restore_points=self.settings.restore_points,
            checkin_vault=checkin_vault(self.settings, self.node_id, registry.store),
        )
        revocations.on_new = control.revoked
        reporter.start()
        revocations.start()
        control.restore.start()
        return SyncServer(
            self.sio,
            registry,
            self.authenticator,
            self.metrics,
            self.sessions,
            self.extensions,
            connections=self.connections,
            emitter=emitter,
            control=control,
            reporter=reporter,
            revocations=revocations,
            node_id=self.node_id,
        )

    async def shutdown(self, _app: web.Application) -> None:
        """Close every WebSocket (1001: clients reconnect by themselves), let
        chat and moderation in flight finish, flush every room within
        ``shutdown_grace_s`` (else write a recovery file and set
        :attr:`exit_code`), close the store."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_grace_s
        if self.sessions.heartbeat is not None:
            self.sessions.heartbeat.close()
        self.websockets.end_polls(self.sio.eio)
        await self.websockets.close_all()
        await self.sessions.drain(timeout_s=max(0.0, deadline - loop.time()))
        if self.reporter is not None:
            await self.reporter.close()
        if self.control is not None:
            await self.control.restore.close()
            self.control.breakouts.stop()
        if self.registry is not None:
            saved = await self.registry.close(grace_s=max(0.0, deadline - loop.time()))
            if not saved:
                self._keep_unsaved(self.registry)
        # What the last flush stored is told before the extensions stop.
        await self.extensions.stop(timeout_s=min(5.0, max(1.0, deadline - loop.time())))
        if self.replication is not None:
            await self.replication.close()
        if self.store is not None:
            await self.store.close()
        log.info("stopped")

    def _keep_unsaved(self, registry: RoomRegistry) -> None:
        """The final write did not go through in time: write what the store
        lacks to a recovery file in the data directory (rooms.recovery)."""
        recovery = registry.unsaved_state(self.node_id)
        reason = registry.health.last_error or "it did not answer"
        if recovery is None:
            log.warning("the final write did not go through (%s); nothing was unsaved", reason)
            return
        try:
            path = write_recovery_file(self.settings.data_dir, recovery)
        except OSError as exc:
            self.exit_code = ExitCode.UNSAVED_LOST
            log.critical(
                "the store did not take the final write within %g s (%s), and the recovery "
                "file could not be written (%s): unsaved changes of %d documents and %d audit "
                "records are lost",
                self.settings.shutdown_grace_s,
                reason,
                exc,
                len(recovery.documents),
                len(recovery.audit),
            )
            return
        self.exit_code = ExitCode.RECOVERY_FILE
        log.error(
            "the store did not take the final write within %g s (%s): the unsaved state of %d "
            "documents and %d audit records is in %s (mode 0600); the next start replays it",
            self.settings.shutdown_grace_s,
            reason,
            len(recovery.documents),
            len(recovery.audit),
            path,
        )

    def _store_status(self) -> dict[str, Any]:
        """Whether the store (and Redis) take writes, for /healthz and /readyz."""
        registry = self.registry
        assert registry is not None
        health = registry.health
        body: dict[str, Any] = {
            "storeStatus": "ok" if health.ok else "failing",
            "oldestUnsavedSeconds": round(registry.oldest_unsaved_s, 1),
        }
        if self.replication is not None and self.replication.shared:
            body["redis"] = "connected" if self.replication.healthy else "disconnected"
        return body

    async def healthz(self, _request: web.Request) -> web.Response:
        """Open to anyone (load balancers): whether this node serves, whether
        its store takes writes, and aggregate counts. Never a room id, a user,
        an address, a setting other than the store and ``--dev``, or a secret
        (protocol.md §10). 200 while the process serves, degraded or not."""
        registry = self.registry
        status = "ok" if registry is not None else "starting"
        body: dict[str, Any] = {
            "status": status,
            "version": __version__,
            "node": self.node_id,
            "store": self.settings.store,
            # A dev server accepts anyone as anyone: a monitor should see it.
            "dev": self.settings.dev,
            "rooms": len(registry.rooms) if registry else 0,
            "connections": len(self.connections),
        }
        if registry is not None:
            body.update(self._store_status())
            # Degraded: serving from memory, not saving (or not replicating).
            if body["storeStatus"] != "ok" or body.get("redis") == "disconnected":
                body["status"] = "degraded"
        return web.json_response(body, status=200 if registry is not None else 503)

    async def readyz(self, _request: web.Request) -> web.Response:
        """200 only while this node can take writes (its store does, and with
        Redis, Redis is connected); 503 otherwise, starting and stopping
        included. For a load balancer that should send new sessions elsewhere."""
        registry = self.registry
        if registry is None or registry.closing:
            state = "starting" if registry is None else "stopping"
            return web.json_response({"ready": False, "status": state}, status=503)
        body = self._store_status()
        ready = body["storeStatus"] == "ok" and body.get("redis", "connected") == "connected"
        return web.json_response({"ready": ready, **body}, status=200 if ready else 503)

    async def dev_token(self, request: web.Request) -> web.Response:
        """``--dev`` only: mint a token for ``{room, name, role[, sub]}``."""
        try:
            body = await request.json()
            room = validate_room_id(body["room"])
            name, role = str(body["name"])[:64], str(body.get("role", "participant"))
            Role(role)
            if not name.strip() or bad_name_character(name) is not None:
                raise ValueError("name must be 1-64 characters, no control or bidi characters")
            sub = str(body.get("sub") or "dev-" + secrets.token_hex(6))[:128]
        except (ValueError, KeyError, TypeError, CollabError) as exc:
            return web.json_response(
                {"error": {"code": "invalid_payload", "message": f"bad request: {exc}"}},
                status=400,
            )
        token = self.security.mint(sub=sub, name=name, room=room, role=role)
        return web.json_response({"token": token, "sub": sub})

    async def metrics_view(self, request: web.Request) -> web.Response:
        """Prometheus text; with ``--metrics-token``, only for a request that
        carries ``Authorization: Bearer <token>`` (401 otherwise)."""
        token = self.settings.metrics_token
        if token is not None and not _bearer_matches(request, token):
            return web.json_response(
                {"error": {"code": "unauthorized", "message": "/metrics needs its bearer token"}},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return web.Response(
            body=self.metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )


APP_KEY = web.AppKey("collab", CollabApp)


def _bearer_matches(request: web.Request, token: str) -> bool:
    """Whether the request's ``Authorization`` is ``Bearer <token>``, compared
    in constant time (the scheme is case-insensitive, RFC 9110 §11.1)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), token.encode("utf-8")
    )


def _is_private(path: str) -> bool:
    return path in _PRIVATE_PATHS or path.startswith(_PRIVATE_PREFIXES)


def _security_headers(settings: Settings) -> Middleware:
    """The middleware that puts :data:`_PRIVATE_HEADERS` on every answer of
    the private paths, errors included (an aiohttp ``HTTPException`` and an
    unexpected failure, which becomes a JSON 500 here), and HSTS on every
    answer when collab serves TLS itself."""
    hsts = {"Strict-Transport-Security": _HSTS} if settings.tls_cert is not None else {}

    @web.middleware
    async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        extra = {**_PRIVATE_HEADERS, **hsts} if _is_private(request.path) else hsts
        if not extra:
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(extra)
            raise
        except Exception as exc:
            if not _is_private(request.path):
                raise
            # aiohttp's own 500 carries none of the headers. The route's
            # pattern, not its path: a path names the room.
            resource = request.match_info.route.resource
            log.error(
                "request failed method=%s route=%s error=%s",
                request.method if request.method in ("GET", "POST", "DELETE") else "OTHER",
                resource.canonical if resource is not None else "-",
                describe_exception(exc),
            )
            return web.json_response(
                {"error": {"code": "internal_error", "message": "internal error"}},
                status=500,
                headers=extra,
            )
        if not response.prepared:  # a WebSocket has sent its headers already
            # An image keeps its own Cache-Control (private: collab.images).
            for name, value in extra.items():
                response.headers.setdefault(name, value)
        return response

    return security_headers


def create_app(
    settings: Settings,
    *,
    authenticator: Authenticator | None = None,
    extensions: Sequence[Extension] | Extensions = (),
    store: Store | None = None,
) -> CollabApp:
    """A server for ``settings``; start it with aiohttp (``serve`` or a test runner).

    ``extensions`` are the platform's hooks (collab.extensions; README,
    "Extensions"): a list, or an ``Extensions`` made with other cache,
    timeout or queue settings. ``store``, if given, is used instead of the one the
    settings name (it is closed at shutdown; a ``RedisStore`` also brings
    replication).

    With ``--webhooks-file`` (``settings.webhooks``), the webhooks extension
    (collab.webhooks) is added to a list of extensions; an ``Extensions``
    object must hold it already (``Webhooks.from_settings``).

    Raises ValueError if a configured key cannot be loaded, if two
    extensions claim one custom event, or if webhooks are configured beside
    an ``Extensions`` object that lacks them.
    """
    security = build_security(settings)
    cors: Any = list(settings.cors_origins) if settings.cors_origins else None
    if settings.cors_origins == ("*",):
        cors = "*"
    frames = frame_limits(settings)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        namespaces="*",
        # Run each event's handler in the task Engine.IO made for its message:
        # no second task per event, and one connection's events start in
        # arrival order (tests/integration/test_sync.py).
        async_handlers=False,
        cors_allowed_origins=cors,
        serializer=CollabPacket,
        # A long-polling body's limit (maxPayload); WebSocket frames have theirs.
        max_http_buffer_size=frames.polling_body_bytes,
        ping_interval=settings.ping_interval_s,
        ping_timeout=settings.ping_timeout_s,
        # collab.heartbeat pings every session from one timer and ends the
        # silent ones: no service task walking the sessions.
        monitor_clients=False,
        transports=list(settings.transports),
        logger=False,
        engineio_logger=False,
    )
    if settings.webhooks:
        if isinstance(extensions, Extensions):
            if not any(isinstance(e, Webhooks) for e in extensions.extensions):
                raise ValueError(
                    "webhooks are configured: add Webhooks.from_settings(settings) to the "
                    "Extensions given to create_app"
                )
        else:
            extensions = [*extensions, Webhooks.from_settings(settings)]
    web_app = web.Application(middlewares=[_security_headers(settings)])
    metrics = Metrics()
    app = CollabApp(
        node_id=settings.node_id or "node-" + secrets.token_hex(4),
        settings=settings,
        web_app=web_app,
        sio=sio,
        metrics=metrics,
        sessions=SessionGuard(
            sio, session_limits_from(settings), metrics, trusted_proxies=settings.trusted_proxies
        ),
        security=security,
        authenticator=authenticator or security.authenticator,
        extensions=extensions if isinstance(extensions, Extensions) else Extensions(extensions),
        given_store=store,
    )
    web_app[APP_KEY] = app
    install_transport(
        sio.eio,
        tracker=app.websockets,
        compress=settings.websocket_compression,
        frames=frames,
        metrics=app.metrics,
    )
    polling = install_polling(sio.eio, web_app=web_app, metrics=app.metrics, frames=frames)
    install_direct_sends(sio)
    app.front = FrontDoor(
        sio.eio,
        frames=frames,
        tracker=app.websockets,
        metrics=app.metrics,
        stopping=polling.stopping,
        compress=settings.websocket_compression,
        access_log=WebSocketAccessLog(settings.access_log),
        at_once=app.sessions.at_once,
    )
    app.sessions.heartbeat = Heartbeat(
        sio.eio,
        websockets=app.websockets.by_eio_sid.get,
        interval_s=settings.ping_interval_s,
        timeout_s=settings.ping_timeout_s,
        spawn=app.sessions.spawn,
    )
    sio.attach(web_app)
    web_app.router.add_get("/healthz", app.healthz)
    web_app.router.add_get("/readyz", app.readyz)
    web_app.router.add_get("/metrics", app.metrics_view)
    add_admin_routes(web_app, app)
    add_image_routes(web_app, app)
    add_web_routes(web_app, app)
    if settings.dev:
        web_app.router.add_post("/dev/token", app.dev_token)
    web_app.on_startup.append(app.startup)
    web_app.on_shutdown.append(app.shutdown)
    return app


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context for ``--tls-cert``/``--tls-key`` (None
    without them): TLS 1.2 or later, Python's default server ciphers, no
    client certificate asked for. Raises StartupError if the certificate
    chain or key cannot be loaded (an encrypted key cannot: collab never
    prompts for a passphrase)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key, password=_no_passphrase)
    except OSError as exc:  # ssl.SSLError is an OSError
        reason = exc.strerror or getattr(exc, "reason", None) or type(exc).__name__
        raise StartupError(
            f"cannot load --tls-cert {settings.tls_cert} / --tls-key {settings.tls_key}: {reason}"
        ) from None
    return context


def _no_passphrase() -> bytes:
    """An encrypted key fails to load instead of OpenSSL asking on the terminal."""
    return b""


async def serve(settings: Settings) -> ExitCode:
    """Run until SIGTERM or SIGINT; then stop accepting, flush and return how
    the stop went (:class:`ExitCode`: non-zero if something could not be
    stored, and then whether it is in a recovery file).

    Serves HTTPS and WSS with ``--tls-cert``/``--tls-key``, plain HTTP
    otherwise; ``--access-log`` chooses the access log (collab/logs.py).
    """
    tls = tls_context(settings)
    # Signals first: a SIGTERM from the moment the server says it is ready
    # (or while it starts) is a graceful stop, never the default kill.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(settings)
    runner = web.AppRunner(
        app.web_app, handle_signals=False, **access_log_options(settings.access_log)
    )
    try:
        await runner.setup()
    except OSError as exc:  # the store (Redis) cannot be reached: fail fast
        await runner.cleanup()
        raise StartupError(str(exc)) from None
    site = app.site(runner, settings.host, settings.port, ssl_context=tls)
    await site.start()
    tune_gc()
    port = runner.addresses[0][1] if runner.addresses else settings.port
    loop_name = type(loop).__module__.partition(".")[0]  # uvloop or asyncio
    scheme = "https" if tls is not None else "http"
    log.info("listening on %s://%s:%s loop=%s", scheme, settings.host, port, loop_name)
    print(f"collab listening on {scheme}://{settings.host}:{port}", flush=True)

    await stop.wait()
    log.info("signal received; stopping")
    await site.stop()  # stop accepting new connections
    await runner.cleanup()  # on_shutdown: disconnect, flush, close store
    if app.exit_code is not ExitCode.OK:
        log.error("stopped with unsaved changes exit_code=%d", app.exit_code)
    return app.exit_code


#: The cyclic collector's thresholds for a serving process: a young
#: collection every 50,000 container allocations instead of 700, and older
#: generations as rarely in proportion. A server holds many long-lived objects
#: per connection; at the default thresholds their collections cost about a
#: sixth of the CPU of connecting 6,000 clients (BENCHMARKS.md, ``bench
#: conns``). Cyclic garbage lives a little longer: what 50,000 allocations
#: leave, at most.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Once the server is up: what startup made (modules, the app) is moved
    out of the collector's sight (``gc.freeze``: never collected, never
    walked again), and the thresholds become :data:`GC_THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _store_stats(registry: RoomRegistry) -> StoreStats:
    health = registry.health
    saving: dict[str, int] = {}
    for room in registry.rooms.values():
        saving[room.saving.value] = saving.get(room.saving.value, 0) + 1
    return StoreStats(
        up=health.ok,
        write_failures=health.write_failures,
        writes_delayed=health.writes_delayed,
        unsaved_updates=registry.unsaved_updates,
        oldest_unsaved_s=registry.oldest_unsaved_s,
        rooms_saving=saving,
    )
