"""How every connection to Redis is made: one set of options, from the whole
URL and the Redis settings, used by the command client, the cluster client,
and each pub/sub subscriber (README: Redis security).

A URL is ``redis://[user][:password]@host[:port][/db]``,
``rediss://...`` (TLS), ``unix://[user][:password]@/path/to.sock[?db=N]``, or
``redis+sentinel://[user][:password]@host[:port][,host[:port]...]/<master
name>[/db]`` (``rediss+sentinel://`` for TLS): Redis Sentinel, asked for the
current master's address before every new connection (the command client's
pool and each subscriber), so a failover moves every connection to the new
master. The user and password are the data servers'; sentinels are reached
without credentials, with the same TLS settings.
The password may instead come from a file (``--redis-password-file``);
TLS takes a CA (else the system's), a client certificate and key, and
whether to check the server's name. :func:`redis_options` builds the
options, :meth:`RedisOptions.connection_kwargs` gives redis-py's keyword
arguments for one connection, :func:`connect_redis` opens the command
client (:func:`close_redis` closes it), :func:`master_address` finds where
a subscriber connects, and :func:`describe_redis_error` turns a failure into
a sentence an operator can act on (never with the password in it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    NoPermissionError,
    RedisError,
)

from rooms.secret_files import read_secret_file

__all__ = [
    "RedisConfigError",
    "RedisOptions",
    "close_redis",
    "connect_redis",
    "describe_redis_error",
    "master_address",
    "redis_options",
]

_DEFAULT_PORT = 6379
_SENTINEL_PORT = 26379
_SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


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
    #: Redis Sentinel: the sentinels' addresses and the master's name (a
    #: ``redis+sentinel://`` URL); ``host`` and ``port`` are then unused.
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None

    @property
    def sentinel(self) -> bool:
        return bool(self.sentinels)

    @property
    def display(self) -> str:
        """The address as a URL without credentials (for messages and logs)."""
        if self.path is not None:
            return f"unix://{self.path}?db={self.db}"
        scheme = "rediss" if self.tls else "redis"
        user = f"{self.username}@" if self.username else ""
        if self.sentinel:
            hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"{scheme}+sentinel://{user}{hosts}/{self.master_name}/{self.db}"
        return f"{scheme}://{user}{self.host}:{self.port}/{self.db}"

    def connection_kwargs(
        self, *, host: str | None = None, port: int | None = None
    ) -> dict[str, Any]:
        """redis-py keyword arguments for one connection: to this address, or to
        ``host``:``port`` (a cluster node, or the master a sentinel named) with
        the same credentials and TLS. With Sentinel and no ``host``, no
        address: the connection pool asks the sentinels."""
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
        elif not self.sentinel:
            kwargs["host"], kwargs["port"] = self.host, self.port
        if host is None or self.sentinel:
            kwargs["db"] = self.db
        kwargs.update(self._tls_kwargs())
        return kwargs

    def sentinel_kwargs(self, **timeouts: Any) -> dict[str, Any]:
        """redis-py keyword arguments for a connection to a sentinel: TLS as
        for the data servers, no credentials."""
        return {"driver_info": None, **timeouts, **self._tls_kwargs()}

    def _tls_kwargs(self) -> dict[str, Any]:
        if not self.tls:
            return {}
        return {
            "ssl": True,
            "ssl_cert_reqs": "required",
            "ssl_ca_certs": self.tls_ca,
            "ssl_certfile": self.tls_cert,
            "ssl_keyfile": self.tls_key,
            "ssl_check_hostname": self.tls_check_hostname,
        }


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
    if scheme not in ("redis", "rediss", "unix", *_SENTINEL_SCHEMES):
        raise RedisConfigError(
            "the Redis URL must start with redis://, rediss://, unix:// or redis+sentinel://"
        )
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"db"})
    if unknown:
        raise RedisConfigError(
            f"the Redis URL has an option collab does not read ({', '.join(unknown)}): "
            "use the --redis-* settings for TLS"
        )
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    try:
        if scheme in _SENTINEL_SCHEMES:
            sentinels = _sentinels(parts.netloc.rpartition("@")[2])
            master_name, db = _sentinel_path(parts.path)
            port = None
        else:
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
    tls = scheme in ("rediss", "rediss+sentinel")
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
        sentinels=sentinels,
        master_name=master_name,
    )


def _sentinels(hosts: str) -> tuple[tuple[str, int], ...]:
    """``host[:port],host[:port]...`` (``[v6]:port`` too); ValueError for a bad port."""
    found = []
    for item in hosts.split(","):
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port = item.partition(":")
        found.append((unquote(host), int(port) if port else _SENTINEL_PORT))
    if not found or not all(host for host, _ in found):
        raise RedisConfigError("a redis+sentinel:// URL names at least one sentinel host:port")
    return tuple(found)


def _sentinel_path(path: str) -> tuple[str, int]:
    """``/<master name>[/<db>]``; ValueError for a database that is not a number."""
    name, _, db = unquote(path).strip("/").partition("/")
    if not name:
        raise RedisConfigError("a redis+sentinel:// URL ends with /<master name>[/<db>]")
    return name, int(db) if db else 0


def _path_db(path: str, scheme: str) -> int:
    if scheme == "unix" or path in ("", "/"):
        return 0
    return int(unquote(path).strip("/"))


def _read_password(path: Path) -> str:
    try:
        return read_secret_file(path, "--redis-password-file")
    except ValueError as exc:
        raise RedisConfigError(str(exc)) from None


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
    if options.sentinel:
        return await _connect_sentinel(options, {**timeouts, "retry": _command_retry()}), False
    probe = aioredis.Redis(**options.connection_kwargs(), **timeouts)
    try:
        info = await probe.info("cluster")
    except (RedisError, OSError) as exc:
        raise RedisConfigError(describe_redis_error(exc, options)) from None
    finally:
        await probe.aclose()
    if not info.get("cluster_enabled"):
        single = aioredis.Redis(**options.connection_kwargs(), **timeouts, retry=_command_retry())
        return single, False
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


def _command_retry() -> Retry:
    """How a command retries on a dropped connection: a few times within
    about a second (a restart's reset connection is one retry), then the
    error reaches the caller, who keeps its state and retries later (a chat
    message is refused ``store_unavailable`` rather than held for seconds)."""
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.4), 3)


async def _connect_sentinel(options: RedisOptions, timeouts: dict[str, Any]) -> Any:
    """The master's client through Sentinel: each new connection of its pool
    asks the sentinels where the master is (a failover closes the old ones)."""
    assert options.master_name is not None
    manager = Sentinel(  # type: ignore[no-untyped-call]
        list(options.sentinels),
        sentinel_kwargs=options.sentinel_kwargs(**timeouts),
        **options.connection_kwargs(),
        **timeouts,
    )
    client = manager.master_for(options.master_name)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await close_redis(client)
        raise RedisConfigError(describe_redis_error(exc, options)) from None
    return client


async def close_redis(client: Any) -> None:
    """Close a command client from :func:`connect_redis` (and, through
    Sentinel, its connections to the sentinels)."""
    pool = getattr(client, "connection_pool", None)
    await client.aclose()
    if isinstance(pool, SentinelConnectionPool):
        await pool.sentinel_manager.aclose()


async def master_address(options: RedisOptions, *, timeout_s: float = 5.0) -> tuple[str, int]:
    """Where the master is now, as the sentinels say (an OSError if none
    names one); without Sentinel, the URL's own address."""
    if not options.sentinel:
        return str(options.host or ""), options.port
    assert options.master_name is not None
    timeouts = {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}
    manager = Sentinel(  # type: ignore[no-untyped-call]
        list(options.sentinels), sentinel_kwargs=options.sentinel_kwargs(**timeouts)
    )
    try:
        host, port = await manager.discover_master(options.master_name)
    except RedisError as exc:
        raise OSError(f"no master from the sentinels: {exc}") from None
    finally:
        await manager.aclose()
    return str(host), int(port)
