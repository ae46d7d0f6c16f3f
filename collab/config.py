"""The one Settings object, built from command-line flags and the environment.

Every setting has a flag ``--name-with-dashes`` and an environment variable
``COLLAB_NAME_IN_CAPS``; a flag wins over the environment, which wins over
the default. :data:`OPTIONS` is the single table both are built from (and the
README's settings table is checked against it).
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crdt.engine import ENGINES
from rooms.secret_files import read_secret_file

if TYPE_CHECKING:
    from collab.webhook_endpoints import Endpoint

__all__ = ["OPTIONS", "ConfigError", "Option", "Settings", "add_arguments", "settings_from"]

STORES = ("sqlite", "memory", "redis", "postgres")
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://")
LOG_FORMATS = ("text", "json")
ACCESS_LOGS = ("off", "scrubbed", "full")
#: Awareness fields a client may send (the rest are dropped); ``*`` allows any.
AWARENESS_FIELDS = (
    "user",
    "cursor",
    "selection",
    "tool",
    "color",
    "name",
    "status",
    "view",
    "pointer",
)
_ADMIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
TRANSPORTS = ("polling", "websocket")
LOG_LEVELS = ("debug", "info", "warning", "error")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")


class ConfigError(Exception):
    """A setting has an invalid value (the message names it)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server is configured with. Units are in the names."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    store: str = "sqlite"
    engine: str = "pycrdt"
    max_message_bytes: int = 1 << 20
    max_chat_chars: int = 4000
    strict_board: bool = False
    unload_after_s: float = 30.0
    flush_interval_s: float = 0.5
    compact_after_updates: int = 500
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    websocket_compression: bool = False
    fast_broadcast: bool = True
    event_loop: str = "auto"
    max_send_buffer_bytes: int = 4 << 20
    ping_interval_s: float = 25.0
    ping_timeout_s: float = 20.0
    #: Connections the kernel queues for accepting: a node restarted under
    #: thousands of clients gets them all at once (bench storm).
    listen_backlog: int = 1024
    log_level: str = "info"
    dev: bool = False
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: tuple[str, ...] = field(default_factory=tuple, repr=False)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_s: float = 30.0
    admin_key: str | None = field(default=None, repr=False)
    retention_days: float = 30.0
    retention_check_interval_s: float = 3600.0
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    #: ``postgresql://user@host:port/database`` for ``--store postgres``, or the
    #: system of record behind ``--store redis`` (rooms.store_tiered; no default).
    postgres_url: str | None = field(default=None, repr=False)
    node_id: str | None = None
    awareness_timeout_s: float = 30.0
    frame_ancestors: tuple[str, ...] = ("'self'",)
    content_security_policy: str | None = None
    # Limits on what one client can make the server do (protocol.md §8).
    update_rate_per_s: float = 200.0
    update_burst: int = 400
    update_bytes_per_s: int = 1 << 20
    update_bytes_burst: int = 8 << 20
    awareness_rate_per_s: float = 60.0
    awareness_burst: int = 120
    awareness_bytes_per_s: int = 64 << 10
    awareness_bytes_burst: int = 512 << 10
    chat_rate_per_s: float = 1.0
    chat_burst: int = 20
    event_rate_per_s: float = 10.0
    event_burst: int = 20
    max_refusals_per_min: int = 60
    max_board_bytes: int = 16 << 20
    max_chat_bytes: int = 8 << 20
    max_meta_bytes: int = 1 << 20
    max_pending_updates: int = 256
    max_pending_bytes: int = 2 << 20
    max_documents_per_session: int = 16
    max_connections_per_user: int = 24
    max_room_connections: int = 1000
    max_sessions_per_address: int = 256
    max_failed_connects_per_min: int = 60
    connect_timeout_s: float = 10.0
    transports: tuple[str, ...] = ("polling", "websocket")
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    # Security of a deployment (docs/security.md).
    redis_password_file: Path | None = None
    postgres_password_file: Path | None = None
    redis_tls_ca: Path | None = None
    redis_tls_cert: Path | None = None
    redis_tls_key: Path | None = None
    redis_tls_check_hostname: bool = True
    cluster_key: str | None = field(default=None, repr=False)
    cluster_key_file: Path | None = None
    jwt_secret_file: Path | None = None
    jwt_max_ttl_s: float = 4 * 3600.0
    admin_key_file: Path | None = None
    metrics_token: str | None = field(default=None, repr=False)
    metrics_token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_format: str = "text"
    access_log: str = "off"
    awareness_fields: tuple[str, ...] = AWARENESS_FIELDS
    # Faults (issue 14): what the server does while its store cannot write.
    store_delay_window_s: float = 30.0
    shutdown_grace_s: float = 10.0
    join_timeout_s: float = 10.0
    max_update_structs: int = 5_000
    # Webhooks (protocol.md §10.5): the endpoints come from --webhooks-file.
    webhooks_file: Path | None = None
    webhooks: tuple[Endpoint, ...] = field(default_factory=tuple, repr=False)
    webhook_timeout_s: float = 10.0
    webhook_give_up_after_s: float = 3 * 86_400.0
    # Images on the board (protocol.md §8.5, §10.6).
    max_image_bytes: int = 5 << 20
    max_image_pixels: int = 25_000_000
    max_room_image_bytes: int = 100 << 20
    image_rate_per_s: float = 0.2
    image_burst: int = 10
    # Restore points of boards (protocol.md §5.5).
    restore_interval_s: float = 300.0
    restore_points: int = 20
    # Session activities (protocol.md §6.6): reactions and deleting one's own message.
    reaction_rate_per_s: float = 2.0
    reaction_burst: int = 10
    chat_delete_window_s: float = 300.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0-65535, got {self.port}")
        if self.store not in STORES:
            raise ConfigError(f"store must be one of {', '.join(STORES)}, got {self.store!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError(f"event loop must be one of {', '.join(EVENT_LOOPS)}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}")
        if not 1024 <= self.max_message_bytes <= 64 << 20:
            raise ConfigError("max message bytes must be between 1 KiB and 64 MiB")
        if not 1 <= self.max_chat_chars <= 100_000:
            raise ConfigError("max chat chars must be between 1 and 100000")
        if self.unload_after_s < 0 or self.flush_interval_s <= 0:
            raise ConfigError("unload-after-s must be >= 0 and flush-interval-s > 0")
        if self.max_send_buffer_bytes < 64 << 10:
            raise ConfigError("max send buffer bytes must be at least 64 KiB")
        if self.compact_after_updates < 1:
            raise ConfigError("compact-after-updates must be at least 1")
        if not 1 <= self.listen_backlog <= 65535:
            raise ConfigError("--listen-backlog must be 1-65535")
        if self.ping_interval_s <= 0 or self.ping_timeout_s <= 0:
            raise ConfigError("ping intervals must be positive")
        self._check_security()
        if not self.dev and not self.jwt_secret and not self.jwt_public_key:
            raise ConfigError(
                "refusing to start without a token key: set --jwt-secret or "
                "--jwt-public-key (COLLAB_JWT_SECRET / COLLAB_JWT_PUBLIC_KEY), "
                "or pass --dev for local use only"
            )
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < 32:
            raise ConfigError("the JWT secret must be at least 32 bytes")
        if self.admin_key is not None:
            for entry in _comma_list(self.admin_key):
                name, _, key = entry.rpartition("=")
                if len(key) < 16 or (name and not _ADMIN_NAME.fullmatch(name)):
                    raise ConfigError(
                        "admin keys are [name=]key entries: a name of [A-Za-z0-9_.-] "
                        "and a key of 16+ characters"
                    )
        if self.jwt_leeway_s < 0 or self.jwt_leeway_s > 300:
            raise ConfigError("jwt leeway must be between 0 and 300 seconds")
        if self.node_id is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.node_id):
            raise ConfigError("node id must be 1-64 characters of [A-Za-z0-9_.-]")
        if not self.redis_url.startswith(_REDIS_SCHEMES):
            raise ConfigError(
                "redis url must start with redis://, rediss://, unix:// or redis+sentinel://"
            )
        self._check_postgres()
        for name in ("store_delay_window_s", "shutdown_grace_s", "join_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")
        if self.max_update_structs < 100:
            raise ConfigError("max-update-structs must be at least 100")
        if self.webhook_timeout_s <= 0 or self.webhook_give_up_after_s <= 0:
            raise ConfigError("webhook-timeout-s and webhook-give-up-after-s must be positive")
        if self.awareness_timeout_s <= 0:
            raise ConfigError("awareness timeout must be positive")
        if self.retention_days <= 0 or self.retention_check_interval_s <= 0:
            raise ConfigError("retention days and its check interval must be positive")
        self._check_limits()

    def _check_security(self) -> None:
        if self.dev:
            configured = [
                flag
                for flag, value in (
                    ("--jwt-secret", self.jwt_secret),
                    ("--jwt-public-key", self.jwt_public_key),
                    ("--admin-key", self.admin_key),
                    ("--admin-key-file", self.admin_key_file),
                    ("--cluster-key", self.cluster_key),
                    ("--metrics-token", self.metrics_token),
                )
                if value
            ]
            if configured:
                raise ConfigError(
                    f"--dev refuses production keys ({', '.join(configured)}): dev mode "
                    "signs its tokens with a key of its own, which nothing else trusts"
                )
            if not _is_loopback(self.host):
                raise ConfigError(f"--dev serves loopback addresses only, not {self.host!r}")
        elif self.store == "redis" and not self.cluster_key:
            raise ConfigError(
                "--store redis needs --cluster-key (or --cluster-key-file): the key every "
                "node authenticates its traffic through Redis with"
            )
        if self.cluster_key is not None and len(self.cluster_key.encode()) < 32:
            raise ConfigError("the cluster key must be at least 32 bytes")
        if self.metrics_token is not None and len(self.metrics_token) < 16:
            raise ConfigError("the metrics token must be at least 16 characters")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if (self.redis_tls_cert is None) != (self.redis_tls_key is None):
            raise ConfigError("--redis-tls-cert and --redis-tls-key go together")
        if self.jwt_max_ttl_s <= 0:
            raise ConfigError("jwt max ttl must be positive")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log format must be one of {', '.join(LOG_FORMATS)}")
        if self.access_log not in ACCESS_LOGS:
            raise ConfigError(f"access log must be one of {', '.join(ACCESS_LOGS)}")
        for name in self.awareness_fields:
            if name != "*" and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", name):
                raise ConfigError(f"awareness field {name!r} is not a field name")

    def _check_postgres(self) -> None:
        url = self.postgres_url
        if url is not None and not url.startswith(_POSTGRES_SCHEMES):
            raise ConfigError("postgres url must start with postgresql://")
        if url is not None and self.store not in ("postgres", "redis"):
            raise ConfigError(
                "a PostgreSQL URL is used by --store postgres, or by --store redis as the "
                f"system of record; not by --store {self.store}"
            )
        if self.store == "postgres" and not url:
            raise ConfigError(
                "--store postgres needs --postgres-url (or COLLAB_POSTGRES_URL): "
                "postgresql://user@host:port/database"
            )

    def _check_limits(self) -> None:
        for name in _POSITIVE_LIMITS:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")
        for name in ("update_burst", "awareness_burst", "chat_burst", "event_burst"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1")
        if min(self.max_board_bytes, self.max_chat_bytes, self.max_meta_bytes) < 64 << 10:
            raise ConfigError("document size limits must be at least 64 KiB")
        if not 1024 <= self.max_image_bytes <= 64 << 20:
            raise ConfigError("max-image-bytes must be between 1 KiB and 64 MiB")
        # Below Pillow's own warning threshold (about 89 million): collab.image_codec.
        if not 1 <= self.max_image_pixels <= 80_000_000:
            raise ConfigError("max-image-pixels must be between 1 and 80000000")
        if self.max_room_image_bytes < self.max_image_bytes:
            raise ConfigError("max-room-image-bytes must be at least max-image-bytes")
        if self.image_burst < 1:
            raise ConfigError("image-burst must be at least 1")
        if self.restore_interval_s < 0:
            raise ConfigError("restore-interval-s must be 0 (off) or more")
        if not 1 <= self.restore_points <= 200:
            raise ConfigError("restore-points must be between 1 and 200")
        if self.reaction_burst < 1:
            raise ConfigError("reaction-burst must be at least 1")
        if not 0 <= self.chat_delete_window_s <= 86_400:
            raise ConfigError("chat-delete-window-s must be between 0 (off) and 86400")
        if not self.transports or not set(self.transports) <= set(TRANSPORTS):
            raise ConfigError(f"transports must be some of {', '.join(TRANSPORTS)}")
        for address in self.trusted_proxies:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ConfigError(f"trusted proxy {address!r} is not an IP address") from None

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "collab.sqlite3"


#: Limits that must be above zero (the others are checked one by one).
_POSITIVE_LIMITS = (
    "update_rate_per_s",
    "update_bytes_per_s",
    "awareness_rate_per_s",
    "awareness_bytes_per_s",
    "chat_rate_per_s",
    "event_rate_per_s",
    "max_refusals_per_min",
    "max_pending_updates",
    "max_pending_bytes",
    "max_documents_per_session",
    "max_connections_per_user",
    "max_room_connections",
    "max_sessions_per_address",
    "max_failed_connects_per_min",
    "connect_timeout_s",
    "image_rate_per_s",
    "reaction_rate_per_s",
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in text.split(",") if o.strip())


def _keys(text: str) -> tuple[str, ...]:
    """PEM text is one value (it may hold several keys); otherwise a comma
    list of ``[kid=]path`` entries."""
    if "-----BEGIN" in text:
        return (text,)
    return tuple(k.strip() for k in text.split(",") if k.strip())


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its field, how to parse it, and what it means."""

    name: str
    parse: Callable[[str], Any]
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "COLLAB_" + self.name.upper()


OPTIONS: tuple[Option, ...] = (
    Option("host", str, "Address to listen on."),
    Option("port", int, "TCP port to listen on (0 picks a free one)."),
    Option("data_dir", Path, "Directory of the SQLite store."),
    Option(
        "store",
        str,
        "Where documents live: sqlite (default), memory, redis (shared by nodes) or postgres.",
    ),
    Option("engine", str, "CRDT engine: pycrdt (default) or ypy (needs the ypy extra)."),
    Option("max_message_bytes", int, "Largest binary payload accepted in one event."),
    Option("max_chat_chars", int, "Longest chat message, in characters."),
    Option("strict_board", _bool, "Refuse board updates outside the board schema's roots."),
    Option("unload_after_s", float, "Seconds an empty room stays loaded."),
    Option("flush_interval_s", float, "Seconds between batched writes to the store."),
    Option("compact_after_updates", int, "Stored updates after which a snapshot replaces them."),
    Option("cors_origins", _comma_list, "Comma-separated browser origins allowed ('*' for any)."),
    Option(
        "websocket_compression", _bool, "Negotiate permessage-deflate (costs CPU per recipient)."
    ),
    Option(
        "event_loop",
        str,
        "auto (default: uvloop where it is installed, else asyncio), uvloop or asyncio.",
    ),
    Option(
        "fast_broadcast", _bool, "Write each broadcast's frames once to every recipient's socket."
    ),
    Option(
        "max_send_buffer_bytes",
        int,
        "Bytes of broadcasts waiting for a recipient after which it is dropped "
        "as a slow consumer (one large message being written does not count).",
    ),
    Option("ping_interval_s", float, "Engine.IO ping interval."),
    Option("ping_timeout_s", float, "Engine.IO ping timeout."),
    Option(
        "listen_backlog",
        int,
        "Connections the kernel holds for accepting (capped by net.core.somaxconn): "
        "a restarted node's clients all come back at once.",
    ),
    Option("log_level", str, "debug, info, warning or error."),
    Option("dev", _bool, "Development mode: open identity, local tokens. Never in production."),
    Option("jwt_secret", str, "HS256 secret the platform signs tokens with (32+ bytes)."),
    Option("jwt_public_key", _keys, "RS256/ES256/EdDSA public key: [kid=]PEM file or PEM text."),
    Option("jwt_audience", str, "Required 'aud' claim, if set."),
    Option("jwt_issuer", str, "Required 'iss' claim, if set."),
    Option("jwt_leeway_s", float, "Clock leeway for exp/nbf/iat."),
    Option(
        "admin_key",
        str,
        "Admin API keys: comma-separated [name=]key entries (16+ characters each); the "
        "name is what the audit log records.",
    ),
    Option(
        "retention_days", float, "Default days after the last activity before a room is purged."
    ),
    Option("retention_check_interval_s", float, "Seconds between retention checks."),
    Option("redis_url", str, "Redis (or Redis Cluster) URL for --store redis."),
    Option(
        "postgres_url",
        str,
        "PostgreSQL URL: the store of --store postgres, or with --store redis the system "
        "of record behind Redis: postgresql://user@host:port/database[?sslmode=…].",
    ),
    Option("node_id", str, "This node's id among the nodes sharing Redis (default: random)."),
    Option("awareness_timeout_s", float, "Drop other nodes' awareness not renewed for this long."),
    Option(
        "frame_ancestors",
        _comma_list,
        "Comma-separated sources that may embed the web app (CSP frame-ancestors); "
        "postMessage tokens are accepted from those that are origins.",
    ),
    Option("content_security_policy", str, "Replace the web app's whole CSP header."),
    Option("update_rate_per_s", float, "Document updates per second one connection may send."),
    Option("update_burst", int, "Document updates one connection may send at once."),
    Option("update_bytes_per_s", int, "Bytes of document updates per second per connection."),
    Option("update_bytes_burst", int, "Bytes of document updates one connection may send at once."),
    Option("awareness_rate_per_s", float, "Awareness updates per second per connection."),
    Option("awareness_burst", int, "Awareness updates one connection may send at once."),
    Option("awareness_bytes_per_s", int, "Bytes of awareness per second per connection."),
    Option("awareness_bytes_burst", int, "Bytes of awareness one connection may send at once."),
    Option("chat_rate_per_s", float, "Chat messages per second per user in a room, steady."),
    Option("chat_burst", int, "Chat messages a user may send at once before the steady rate."),
    Option(
        "event_rate_per_s",
        float,
        "Other events (moderation, unknown events, acks) per second per connection.",
    ),
    Option("event_burst", int, "Other events one connection may send at once."),
    Option(
        "max_refusals_per_min",
        int,
        "Refused events after which a connection is closed (recovering one a second).",
    ),
    Option("max_board_bytes", int, "Largest encoded size of a board (and of each extra board)."),
    Option("max_chat_bytes", int, "Largest encoded size of a room's chat document."),
    Option("max_meta_bytes", int, "Largest encoded size of a room's meta document."),
    Option(
        "max_pending_updates",
        int,
        "Updates of one document that may wait for missing dependencies.",
    ),
    Option("max_pending_bytes", int, "Bytes of updates of one document that may wait likewise."),
    Option(
        "max_documents_per_session", int, "Documents (namespaces) one Engine.IO session may join."
    ),
    Option("max_connections_per_user", int, "Connections of one user id to one room."),
    Option("max_room_connections", int, "Connections to one room, all its documents together."),
    Option("max_sessions_per_address", int, "Open Engine.IO sessions from one remote address."),
    Option(
        "max_failed_connects_per_min",
        int,
        "Refused connects (bad or missing token) from one address per minute, after which "
        "its connects are refused unread.",
    ),
    Option(
        "connect_timeout_s",
        float,
        "Seconds an Engine.IO session may stay open without a connected document.",
    ),
    Option("transports", _comma_list, "Engine.IO transports to serve: polling,websocket (both)."),
    Option("redis_password_file", Path, "File holding the Redis password (instead of in the URL)."),
    Option(
        "postgres_password_file",
        Path,
        "File holding the PostgreSQL password (instead of in the URL).",
    ),
    Option("redis_tls_ca", Path, "CA certificate (PEM) to verify a rediss:// server with."),
    Option("redis_tls_cert", Path, "Client certificate (PEM) for a rediss:// server."),
    Option("redis_tls_key", Path, "Client certificate's key (PEM) for a rediss:// server."),
    Option(
        "redis_tls_check_hostname", _bool, "Check the rediss:// server's name against its cert."
    ),
    Option(
        "cluster_key",
        str,
        "Key (32+ bytes) every node authenticates its traffic through Redis with; "
        "required with --store redis.",
    ),
    Option("cluster_key_file", Path, "File holding the cluster key."),
    Option("jwt_secret_file", Path, "File holding the HS256 secret."),
    Option(
        "jwt_max_ttl_s",
        float,
        "Longest token lifetime accepted (exp - iat); tokens without iat are refused.",
    ),
    Option(
        "admin_key_file",
        Path,
        "File of admin keys, one [name=]key a line; re-read when it changes (rotation).",
    ),
    Option("metrics_token", str, "Bearer token /metrics requires (none: open)."),
    Option("metrics_token_file", Path, "File holding the /metrics token."),
    Option("tls_cert", Path, "Serve HTTPS/WSS with this certificate chain (PEM)."),
    Option("tls_key", Path, "The certificate's private key (PEM)."),
    Option("log_format", str, "text (one line per record) or json (one object per line)."),
    Option(
        "access_log",
        str,
        "off (default), scrubbed (method, status, time; no path or address) or full.",
    ),
    Option(
        "awareness_fields",
        _comma_list,
        "Awareness fields clients may send, comma-separated ('*' for any); others are dropped.",
    ),
    Option(
        "store_delay_window_s",
        float,
        "Seconds board edits are kept in memory while the store cannot write; "
        "past them the room is read-only until it can.",
    ),
    Option(
        "shutdown_grace_s",
        float,
        "Seconds a stop waits for the final write; past them what is unsaved goes to a "
        "recovery file and the exit code is non-zero.",
    ),
    Option(
        "join_timeout_s",
        float,
        "Seconds a join waits for its room to load before room_unavailable.",
    ),
    Option(
        "max_update_structs",
        int,
        "Structs (items) one update may carry: bounds the work of one update on the event loop.",
    ),
    Option(
        "trusted_proxies",
        _comma_list,
        "Comma-separated proxy addresses (or networks) whose X-Forwarded-For names the client.",
    ),
    Option(
        "webhooks_file",
        Path,
        "JSON file of webhook endpoints (name, url, secret, events, include_content); "
        "it holds secrets, so it must be 0600.",
    ),
    Option("webhook_timeout_s", float, "Seconds one webhook POST may take."),
    Option(
        "webhook_give_up_after_s",
        float,
        "Seconds after an event past which its webhook is no longer retried.",
    ),
    Option("max_image_bytes", int, "Largest image upload, in bytes (and once re-encoded)."),
    Option(
        "max_image_pixels",
        int,
        "Most pixels (width × height) an uploaded image may declare; checked before decoding.",
    ),
    Option("max_room_image_bytes", int, "Bytes of images one room may hold, all together."),
    Option("image_rate_per_s", float, "Image uploads per second per user in a room, steady."),
    Option("image_burst", int, "Image uploads a user may make at once before the steady rate."),
    Option(
        "restore_interval_s",
        float,
        "Seconds of a board's activity between automatic restore points (0: none).",
    ),
    Option("restore_points", int, "Restore points kept per board, newest first."),
    Option("reaction_rate_per_s", float, "Reactions per second one connection may send, steady."),
    Option("reaction_burst", int, "Reactions one connection may send at once."),
    Option(
        "chat_delete_window_s",
        float,
        "Seconds after sending in which an author may delete their own chat message (0: never).",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per option (defaults None: unset flags fall through to env)."""
    for option in OPTIONS:
        if option.parse is _keys:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action="append",
                default=None,
                help=option.help + " Repeat for several keys.",
            )
        elif option.parse is _bool:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=option.help,
            )
        else:
            parser.add_argument(
                option.flag,
                dest=option.name,
                type=option.parse,
                default=None,
                help=option.help,
            )


def settings_from(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings: keyword overrides, then flags, then the environment, then defaults.

    Raises ConfigError naming the setting whose value is invalid.
    """
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    for option in OPTIONS:
        raw_env = (environ or {}).get(option.env)
        if raw_env is not None:
            try:
                values[option.name] = option.parse(raw_env)
            except ValueError as exc:
                raise ConfigError(f"{option.env}: {exc}") from None
        flag_value = getattr(args, option.name, None) if args is not None else None
        if flag_value is not None:
            if option.parse is _keys:
                flag_value = tuple(k for spec in flag_value for k in _keys(spec))
            values[option.name] = flag_value
    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = value
    for secret, path_setting in _SECRET_FILES.items():
        path = values.get(path_setting)
        if path is None:
            continue
        if values.get(secret):
            raise ConfigError(f"set {secret.replace('_', '-')} or its file, not both")
        values[secret] = _read_secret(Path(path), path_setting)
    if values.get("webhooks_file") is not None:
        values["webhooks"] = _read_webhooks(Path(values["webhooks_file"]), values.get("webhooks"))
    return Settings(**values)


def _read_webhooks(path: Path, given: Any) -> tuple[Endpoint, ...]:
    """The endpoints of ``--webhooks-file`` (collab.webhooks); ConfigError if
    the file is unreadable, open to others, or invalid."""
    if given:
        raise ConfigError("set webhooks or webhooks-file, not both")
    from collab.webhook_endpoints import load_webhooks_file

    try:
        return load_webhooks_file(path)
    except ValueError as exc:
        raise ConfigError(f"webhooks-file: {exc}") from None


#: Secrets that may come from a file instead of a flag or variable (a flag
#: is visible to every user of the machine; a file can be 0600).
_SECRET_FILES = {
    "jwt_secret": "jwt_secret_file",
    "cluster_key": "cluster_key_file",
    "metrics_token": "metrics_token_file",
}


def _read_secret(path: Path, setting: str) -> str:
    try:
        return read_secret_file(path, "--" + setting.replace("_", "-") + "-file")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Settings from an argument list (``serve`` flags only) and an environment."""
    parser = argparse.ArgumentParser(prog="collab serve")
    add_arguments(parser)
    return settings_from(parser.parse_args(list(argv)), environ)
