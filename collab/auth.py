"""Who is connecting: the one place a connect ``auth`` payload becomes an Identity.

* :class:`~collab.tokens.TokenAuthenticator`: ``auth = {"token": "<JWT>"}``,
  signed by the embedding platform (the default, and the only mode without
  ``--dev``).
* :class:`OpenAuthenticator`: trusts ``auth = {"name", "role"}`` and assigns
  a fresh user id per connection. Only in ``--dev``.
* :class:`DevAuthenticator`: ``--dev``: a token if one is given, else open.
"""

from __future__ import annotations

import logging
import secrets
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

from collab.admin_keys import AdminKey, AdminKeys
from collab.config import Settings
from collab.tokens import KeySet, TokenAuthenticator, mint_token
from crdt.errors import InvalidPayload
from crdt.text import bad_name_character
from crdt.types import RoomId, UserId
from rooms.errors import InternalError
from rooms.identity import Identity, Role

__all__ = [
    "Authenticator",
    "DevAuthenticator",
    "OpenAuthenticator",
    "Security",
    "build_security",
]

log = logging.getLogger("collab")

MAX_NAME_CHARS = 64


class Authenticator(Protocol):
    def authenticate(self, auth: Any, room: RoomId) -> Identity:
        """The identity for a connect to ``room``; raise a CollabError to refuse."""


class OpenAuthenticator:
    """Trust the client: ``auth = {"name": str, "role": "participant"|...}``.

    For local use and tests only; every connection gets a new user id.
    """

    def authenticate(self, auth: Any, room: RoomId) -> Identity:
        if auth is None:
            auth = {}
        if not isinstance(auth, dict):
            raise InvalidPayload("auth must be an object")
        name = auth.get("name", "Guest")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_CHARS:
            raise InvalidPayload(f"name must be 1-{MAX_NAME_CHARS} characters")
        if bad_name_character(name) is not None:
            raise InvalidPayload("name holds a control, bidi or invalid character")
        try:
            role = Role(auth.get("role", Role.PARTICIPANT.value))
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise InvalidPayload(f"role must be one of {roles}") from None
        return Identity(UserId("u-" + secrets.token_hex(6)), name.strip(), role)


class DevAuthenticator:
    """``--dev``: verify a token when the client sends one, else trust the payload."""

    def __init__(self, tokens: TokenAuthenticator) -> None:
        self.tokens = tokens
        self.open = OpenAuthenticator()

    def authenticate(self, auth: Any, room: RoomId) -> Identity:
        if isinstance(auth, dict) and "token" in auth:
            return self.tokens.authenticate(auth, room)
        return self.open.authenticate(auth, room)


@dataclass(frozen=True)
class Security:
    """The server's identity setup: how connects are checked, the admin keys,
    and (``--dev`` only) the key dev tokens are minted with."""

    authenticator: Authenticator
    tokens: TokenAuthenticator
    admin_keys: AdminKeys
    #: ``--dev`` only: the HS256 key made up at start that ``POST /dev/token``
    #: signs with and only this process trusts. None outside ``--dev``: a
    #: production server never mints tokens (the platform does).
    mint_secret: str | None = field(default=None, repr=False)
    #: ``--dev`` only: the admin key made up at start (printed, so developers
    #: and tests can use it). None outside ``--dev``.
    dev_admin_key: str | None = field(default=None, repr=False)

    @property
    def dev(self) -> bool:
        return self.mint_secret is not None

    def mint(self, *, sub: str, name: str, room: str, role: str, ttl_s: float = 3600) -> str:
        """A token signed with ``--dev``'s own key (``ttl_s`` held to the maximum
        lifetime); InternalError outside ``--dev``."""
        if self.mint_secret is None:
            raise InternalError("tokens are minted in --dev only")
        return mint_token(
            self.mint_secret,
            algorithm="HS256",
            sub=sub,
            name=name,
            room=room,
            role=role,
            ttl_s=min(ttl_s, self.tokens.max_ttl_s),
            audience=self.tokens.audience,
            issuer=self.tokens.issuer,
        )


def build_security(settings: Settings) -> Security:
    """The Security for ``settings``; ValueError if a key cannot be loaded.

    In ``--dev`` (where the settings hold no configured key: collab.config
    refuses them), a random HS256 secret and admin key are made up for this
    process alone; a warning is logged, and printed with the admin key.
    Outside ``--dev`` no key is ever printed or logged.
    """
    tokens_kwargs: dict[str, Any] = {
        "audience": settings.jwt_audience,
        "issuer": settings.jwt_issuer,
        "leeway_s": settings.jwt_leeway_s,
        "max_ttl_s": settings.jwt_max_ttl_s,
    }
    if not settings.dev:
        keys = KeySet.from_config(secret=settings.jwt_secret, public_keys=settings.jwt_public_key)
        tokens = TokenAuthenticator(keys, **tokens_kwargs)
        admin_keys = AdminKeys.from_settings(settings.admin_key, settings.admin_key_file)
        return Security(tokens, tokens, admin_keys)
    if settings.jwt_secret or settings.jwt_public_key or settings.admin_key:
        raise ValueError("--dev refuses configured keys")  # collab.config says so first
    secret = secrets.token_hex(32)
    admin_key = secrets.token_urlsafe(24)
    tokens = TokenAuthenticator(KeySet.from_config(secret=secret, public_keys=()), **tokens_kwargs)
    warning = (
        "DEVELOPMENT MODE (--dev): open identity is accepted and tokens are minted "
        "with a key made up for this process; never use it with real sessions."
    )
    log.warning(warning)
    print(f"WARNING: {warning} Admin key: {admin_key}", file=sys.stderr, flush=True)
    return Security(
        DevAuthenticator(tokens),
        tokens,
        AdminKeys([AdminKey("dev", admin_key.encode())]),
        mint_secret=secret,
        dev_admin_key=admin_key,
    )
