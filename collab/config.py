"""The one Settings object, built from command-line flags and the environment.

Every setting has a flag ``--name-with-dashes`` and an environment variable
``COLLAB_NAME_IN_CAPS``; a flag wins over the environment, which wins over
the default. :data:`OPTIONS` is the single table both are built from (and the
README's settings table is checked against it).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from crdt.engine import ENGINES

__all__ = ["OPTIONS", "ConfigError", "Option", "Settings", "add_arguments", "settings_from"]

STORES = ("sqlite", "memory", "redis")
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
    node_id: str | None = None
    awareness_timeout_s: float = 30.0
    frame_ancestors: tuple[str, ...] = ("'self'",)
    content_security_policy: str | None = None

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
        if self.ping_interval_s <= 0 or self.ping_timeout_s <= 0:
            raise ConfigError("ping intervals must be positive")
        if not self.dev and not self.jwt_secret and not self.jwt_public_key:
            raise ConfigError(
                "refusing to start without a token key: set --jwt-secret or "
                "--jwt-public-key (COLLAB_JWT_SECRET / COLLAB_JWT_PUBLIC_KEY), "
                "or pass --dev for local use only"
            )
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < 32:
            raise ConfigError("the JWT secret must be at least 32 bytes")
        if self.admin_key is not None and len(self.admin_key) < 16:
            raise ConfigError("the admin key must be at least 16 characters")
        if self.jwt_leeway_s < 0 or self.jwt_leeway_s > 300:
            raise ConfigError("jwt leeway must be between 0 and 300 seconds")
        if self.node_id is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.node_id):
            raise ConfigError("node id must be 1-64 characters of [A-Za-z0-9_.-]")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("redis url must start with redis://, rediss:// or unix://")
        if self.awareness_timeout_s <= 0:
            raise ConfigError("awareness timeout must be positive")
        if self.retention_days <= 0 or self.retention_check_interval_s <= 0:
            raise ConfigError("retention days and its check interval must be positive")

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "collab.sqlite3"


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _origins(text: str) -> tuple[str, ...]:
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
    Option("store", str, "Where documents live: sqlite (default) or memory."),
    Option("engine", str, "CRDT engine: pycrdt (default) or ypy (needs the ypy extra)."),
    Option("max_message_bytes", int, "Largest binary payload accepted in one event."),
    Option("max_chat_chars", int, "Longest chat message, in characters."),
    Option("strict_board", _bool, "Refuse board updates outside the board schema's roots."),
    Option("unload_after_s", float, "Seconds an empty room stays loaded."),
    Option("flush_interval_s", float, "Seconds between batched writes to the store."),
    Option("compact_after_updates", int, "Stored updates after which a snapshot replaces them."),
    Option("cors_origins", _origins, "Comma-separated browser origins allowed ('*' for any)."),
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
    Option("log_level", str, "debug, info, warning or error."),
    Option("dev", _bool, "Development mode: open identity, local tokens. Never in production."),
    Option("jwt_secret", str, "HS256 secret the platform signs tokens with (32+ bytes)."),
    Option("jwt_public_key", _keys, "RS256/ES256/EdDSA public key: [kid=]PEM file or PEM text."),
    Option("jwt_audience", str, "Required 'aud' claim, if set."),
    Option("jwt_issuer", str, "Required 'iss' claim, if set."),
    Option("jwt_leeway_s", float, "Clock leeway for exp/nbf/iat."),
    Option("admin_key", str, "Bearer key of the admin API (16+ characters)."),
    Option(
        "retention_days", float, "Default days after the last activity before a room is purged."
    ),
    Option("retention_check_interval_s", float, "Seconds between retention checks."),
    Option("redis_url", str, "Redis (or Redis Cluster) URL for --store redis."),
    Option("node_id", str, "This node's id among the nodes sharing Redis (default: random)."),
    Option("awareness_timeout_s", float, "Drop other nodes' awareness not renewed for this long."),
    Option(
        "frame_ancestors",
        _origins,
        "Comma-separated sources that may embed the web app (CSP frame-ancestors); "
        "postMessage tokens are accepted from those that are origins.",
    ),
    Option("content_security_policy", str, "Replace the web app's whole CSP header."),
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
    return Settings(**values)


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Settings from an argument list (``serve`` flags only) and an environment."""
    parser = argparse.ArgumentParser(prog="collab serve")
    add_arguments(parser)
    return settings_from(parser.parse_args(list(argv)), environ)
