"""How collab connects to PostgreSQL: one set of options from the URL and
``--postgres-password-file``, and failures told without the password
(README: The PostgreSQL store).

A URL is libpq's: ``postgresql://[user[:password]@][host][:port][,host[:port]…][/database][?param=value&…]``
(``postgres://`` too). asyncpg reads it, including ``sslmode``,
``sslrootcert``, ``sslcert``, ``sslkey``, ``host=/run/postgresql`` for a unix
socket directory and ``target_session_attrs``; other parameters become the
session's server settings (``?search_path=collab``). The password may come
from a file instead (0600; the URL then names only the user). Like libpq,
asyncpg also falls back to ``PG*`` environment variables and ``~/.pgpass``
for what the URL leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from asyncpg.exceptions import (
    InsufficientPrivilegeError,
    InvalidAuthorizationSpecificationError,
    InvalidCatalogNameError,
    InvalidPasswordError,
)

from rooms.secret_files import read_secret_file

__all__ = [
    "PostgresConfigError",
    "PostgresOptions",
    "describe_postgres_error",
    "display_url",
    "postgres_options",
]

SCHEMES = ("postgresql", "postgres")
#: Query parameters that carry secrets (never shown).
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


class PostgresConfigError(OSError):
    """The PostgreSQL URL or settings cannot make a connection (the message says why)."""


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """Where PostgreSQL is and how to log in: the URL and a password from a file."""

    url: str = field(repr=False)
    #: From ``--postgres-password-file`` (else the URL's, if any).
    password: str | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        """The URL without its password (for messages and logs)."""
        return display_url(self.url)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every password these options carry (to scrub from messages)."""
        found = [self.password] if self.password else []
        parts = urlsplit(self.url)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        found += [v for k, v in parse_qsl(parts.query) if k in _SECRET_PARAMS and v]
        # Longest first, so a password containing another is scrubbed whole.
        return tuple(sorted(set(found), key=len, reverse=True))

    def connect_kwargs(self) -> dict[str, Any]:
        """asyncpg's keyword arguments for a connection or a pool."""
        kwargs: dict[str, Any] = {"dsn": self.url}
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs

    def scrub(self, text: str) -> str:
        """``text`` with every password replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def postgres_options(url: str, *, password_file: Path | None = None) -> PostgresOptions:
    """The options of ``url`` and ``password_file``.

    Raises PostgresConfigError for a URL that is not a PostgreSQL one, a
    password given twice, or a password file that cannot be read or is empty.
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise PostgresConfigError("the PostgreSQL URL must start with postgresql://")
    if password_file is None:
        return PostgresOptions(url)
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo or any(k == "password" for k, _ in parse_qsl(parts.query)):
        raise PostgresConfigError(
            "the PostgreSQL password is both in the URL and in --postgres-password-file: give one"
        )
    return PostgresOptions(url, password=_read_password(password_file))


def display_url(url: str) -> str:
    """``url`` without its password (in the user part or the query)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}@{hosts}" if at and user else hosts
    query = "&".join(f"{k}={v}" for k, v in parse_qsl(parts.query) if k not in _SECRET_PARAMS)
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _read_password(path: Path) -> str:
    try:
        return read_secret_file(path, "--postgres-password-file")
    except ValueError as exc:
        raise PostgresConfigError(str(exc)) from None


def describe_postgres_error(exc: BaseException, options: PostgresOptions) -> str:
    """What went wrong connecting to PostgreSQL, and what to change (no secret in it)."""
    where = options.display
    reason = options.scrub(str(exc) or type(exc).__name__)
    if isinstance(exc, InvalidPasswordError | InvalidAuthorizationSpecificationError):
        return (
            f"PostgreSQL refused the credentials at {where} ({reason}): check the user and "
            "password (in the URL or --postgres-password-file) and pg_hba.conf"
        )
    if isinstance(exc, InvalidCatalogNameError):
        return f"no such database at {where} ({reason}): create it (createdb) or fix the URL"
    if isinstance(exc, InsufficientPrivilegeError):
        return (
            f"the PostgreSQL user at {where} lacks a permission collab needs ({reason}): "
            "README (The PostgreSQL store) says which"
        )
    if isinstance(exc, TimeoutError):
        reason = "no answer in time"
    return f"cannot reach PostgreSQL at {where}: {reason}"
