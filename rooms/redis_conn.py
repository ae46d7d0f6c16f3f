"""How every connection to Redis is made: one set of options, from the whole
URL and the Redis settings, used by the command client, the cluster client,
and each pub/sub subscriber (README: Redis security).

A URL is ``redis://[user][:password]@host[:port][/db]``,
``rediss://...`` (TLS) or ``unix://[user][:password]@/path/to.sock[?db=N]``.
The password may instead come from a file (``--redis-password-file``);
TLS takes a CA (else the system's), a client certificate and key, and
whether to check the server's name. :func:`redis_options` builds the
options, :meth:`RedisOptions.connection_kwargs` gives redis-py's keyword
arguments for one connection, :func:`connect_redis` opens the command
client, and :func:`describe_redis_error` turns a failure into a sentence
an operator can act on (never with the password in it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    NoPermissionError,
    RedisError,
)

__all__ = [
    "RedisConfigError",
    "RedisOptions",
    "connect_redis",
    "describe_redis_error",
    "redis_options",
]

_DEFAULT_PORT = 6379


class RedisConfigError(OSError):
    """The Redis URL or settings cannot make a connection (the message says why)."""


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Where Redis is and how to authenticate and encrypt every connection."""

    host: str | None = "127.0.0.1"
    port: int = _DEFAULT_PORT
    #: A unix socket instead of host and port.
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_check_hostname: bool = True

    @property
    def display(self) -> str:
        """The address as a URL without credentials (for messages and logs)."""
        if self.path is not None:
            return f"unix://{self.path}?db={self.db}"
        scheme = "rediss" if self.tls else "redis"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.db}"

    def connection_kwargs(
        self, *, host: str | None = None, port: int | None = None
    ) -> dict[str, Any]:
        """redis-py keyword arguments for one connection: to this address, or to
        ``host``:``port`` (a cluster node) with the same credentials and TLS."""
        kwargs: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            # No CLIENT SETINFO on connect: one command fewer for the ACL.
            "driver_info": None,
        }
        if host is not None:
            kwargs["host"], kwargs["port"] = host, port if port is not None else _DEFAULT_PORT
        elif self.path is not None:
            kwargs["unix_socket_path"] = self.path
        else:
            kwargs["host"], kwargs["port"] = self.host, self.port
        if host is None:
            kwargs["db"] = self.db
        if self.tls:
            kwargs.update(
                ssl=True,
                ssl_cert_reqs="required",
                ssl_ca_certs=self.tls_ca,
                ssl_certfile=self.tls_cert,
                ssl_keyfile=self.tls_key,
                ssl_check_hostname=self.tls_check_hostname,
            )
        return kwargs


def redis_options(
    url: str,
    *,
    password_file: Path | None = None,
    tls_ca: Path | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    tls_check_hostname: bool = True,
) -> RedisOptions:
    """The options of ``url`` and the Redis settings.

    Raises RedisConfigError for a URL collab cannot use, a password given
    twice, an unreadable password file, or TLS files without ``rediss://``.
    """
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise RedisConfigError("the Redis URL must start with redis://, rediss:// or unix://")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"db"})
    if unknown:
        raise RedisConfigError(
            f"the Redis URL has an option collab does not read ({', '.join(unknown)}): "
            "use the --redis-* settings for TLS"
        )
    try:
        db = int(query["db"][0]) if "db" in query else _path_db(parts.path, scheme)
        port = parts.port
    except ValueError:
        raise RedisConfigError("the Redis URL's port or database number is not a number") from None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if password_file is not None:
        if password is not None:
            raise RedisConfigError(
                "the Redis password is both in the URL and in --redis-password-file: give one"
            )
        password = _read_password(password_file)
    tls = scheme == "rediss"
    if not tls and (tls_ca or tls_cert or tls_key):
        raise RedisConfigError("--redis-tls-* settings need a rediss:// URL")
    if scheme == "unix":
        if not parts.path:
            raise RedisConfigError("a unix:// Redis URL needs the socket's path")
        return RedisOptions(
            host=None, path=unquote(parts.path), db=db, username=username, password=password
        )
    return RedisOptions(
        host=parts.hostname or "127.0.0.1",
        port=port or _DEFAULT_PORT,
        db=db,
        username=username,
        password=password,
        tls=tls,
        tls_ca=None if tls_ca is None else str(tls_ca),
        tls_cert=None if tls_cert is None else str(tls_cert),
        tls_key=None if tls_key is None else str(tls_key),
        tls_check_hostname=tls_check_hostname,
    )


def _path_db(path: str, scheme: str) -> int:
    if scheme == "unix" or path in ("", "/"):
        return 0
    return int(unquote(path).strip("/"))


def _read_password(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RedisConfigError(
            f"cannot read --redis-password-file {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    if not text:
        raise RedisConfigError(f"--redis-password-file {path} is empty")
    return text


def describe_redis_error(exc: BaseException, options: RedisOptions) -> str:
    """What went wrong connecting to Redis, and what to change (no secret in it)."""
    where = options.display
    reason = str(exc) or type(exc).__name__
    if options.password:
        reason = reason.replace(options.password, "***")
    lowered = reason.lower()
    if isinstance(exc, AuthenticationError | AuthenticationWrongNumberOfArgsError) or any(
        # Some connection classes wrap AUTH's answer in a ConnectionError.
        words in lowered
        for words in ("invalid username-password", "authentication required", "wrongpass")
    ):
        return (
            f"Redis refused the credentials at {where} ({reason}): check the user and "
            "password (in the URL or --redis-password-file)"
        )
    if isinstance(exc, NoPermissionError):
        return (
            f"the Redis user at {where} lacks a permission collab needs ({reason}): "
            "README (Redis security) has the ACL rule set"
        )
    hint = ""
    if (
        not options.tls
        and options.path is None
        and ("closed by server" in lowered or "reset by peer" in lowered or "timeout" in lowered)
    ):
        hint = "; if the server speaks TLS, use a rediss:// URL"
    elif options.tls and "certificate verify failed" in lowered:
        hint = "; --redis-tls-ca names the CA that signed the server's certificate"
    elif options.tls and "certificate required" in lowered:
        hint = "; the server asks for a client certificate (--redis-tls-cert, --redis-tls-key)"
    return f"cannot reach Redis at {where}: {reason}{hint}"


async def connect_redis(options: RedisOptions, *, timeout_s: float = 5.0) -> tuple[Any, bool]:
    """A command client and whether Redis is a cluster.

    Raises RedisConfigError (an OSError) with :func:`describe_redis_error`'s
    message when Redis cannot be reached or refuses the connection.
    """
    timeouts: dict[str, Any] = {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}
    probe = aioredis.Redis(**options.connection_kwargs(), **timeouts)
    try:
        info = await probe.info("cluster")
    except (RedisError, OSError) as exc:
        raise RedisConfigError(describe_redis_error(exc, options)) from None
    finally:
        await probe.aclose()
    if not info.get("cluster_enabled"):
        return aioredis.Redis(**options.connection_kwargs(), **timeouts), False
    if options.path is not None or options.db != 0:
        raise RedisConfigError("a Redis Cluster is reached over TCP, database 0")
    client: Any = RedisCluster(
        **options.connection_kwargs(host=options.host, port=options.port), **timeouts
    )
    try:
        await client.initialize()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise RedisConfigError(describe_redis_error(exc, options)) from None
    return client, True
