"""Who is connecting: the one place a connect ``auth`` payload becomes an Identity.

Until signed tokens land, :class:`OpenAuthenticator` trusts the payload's
``name`` and ``role`` and assigns a fresh user id per connection. A token
authenticator implements the same :class:`Authenticator` protocol and
replaces it in ``collab.app.create_server``.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from crdt.errors import InvalidPayload
from crdt.types import RoomId, UserId
from rooms.identity import Identity, Role

__all__ = ["Authenticator", "OpenAuthenticator"]

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
        try:
            role = Role(auth.get("role", Role.PARTICIPANT.value))
        except ValueError:
            raise InvalidPayload(
                f"role must be one of {', '.join(r.value for r in Role)}"
            ) from None
        return Identity(UserId("u-" + secrets.token_hex(6)), name.strip(), role)
