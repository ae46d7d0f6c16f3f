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
from dataclasses import dataclass
from typing import Any, Protocol

from collab.config import Settings
from collab.tokens import KeySet, TokenAuthenticator, mint_token
from crdt.errors import InvalidPayload
from crdt.text import bad_name_character
from crdt.types import RoomId, UserId
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
    """The server's identity setup: how connects are checked, how dev tokens
    are minted, and the admin key."""

    authenticator: Authenticator
    tokens: TokenAuthenticator
    admin_key: str | None
    #: HS256 key for minting tokens locally (``--dev`` lobby, ``collab token``).
    mint_secret: str | None

    def mint(self, *, sub: str, name: str, room: str, role: str, ttl_s: float = 3600) -> str:
        if self.mint_secret is None:
            raise RuntimeError("no HS256 secret to mint tokens with")
        return mint_token(
            self.mint_secret,
            algorithm="HS256",
            sub=sub,
            name=name,
            room=room,
            role=role,
            ttl_s=ttl_s,
            audience=self.tokens.audience,
            issuer=self.tokens.issuer,
        )


def build_security(settings: Settings) -> Security:
    """The Security for ``settings``. In ``--dev`` without keys, a random secret
    and admin key are made up and the admin key is printed with a warning."""
    secret = settings.jwt_secret
    admin_key = settings.admin_key
    if settings.dev:
        if secret is None and not settings.jwt_public_key:
            secret = secrets.token_hex(32)
        if admin_key is None:
            admin_key = secrets.token_urlsafe(24)
        warning = (
            "DEVELOPMENT MODE (--dev): open identity is accepted and tokens are minted "
            f"locally; never use it with real sessions. Admin key: {admin_key}"
        )
        log.warning(warning)
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)
    keys = KeySet.from_config(secret=secret, public_keys=settings.jwt_public_key)
    tokens = TokenAuthenticator(
        keys,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway_s=settings.jwt_leeway_s,
    )
    authenticator: Authenticator = DevAuthenticator(tokens) if settings.dev else tokens
    return Security(authenticator, tokens, admin_key, secret)
