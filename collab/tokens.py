"""Signed tokens (JWT): verifying the platform's tokens, and minting for local use.

The embedding platform signs one token per user and room (docs/architecture.md §8):

* HS256 with a shared secret, or RS256 / ES256 / EdDSA with a private key
  whose public half collab holds;
* key ids (``kid`` header) select among several keys, so a key can be
  rotated while tokens signed with the old one are still valid;
* claims: ``sub``, ``name``, ``room`` (an exact room id or a prefix pattern
  ``clinic-7/*``), ``role``, ``iat`` and ``exp``; ``exp - iat`` at most
  ``max_ttl_s``; ``nbf`` when present, ``jti`` (the id a revocation names)
  when present, ``aud`` and ``iss`` when configured;
* one clock leeway for every time check: a token is accepted until
  ``exp + leeway`` (at connect, for the live connection's expiry and for
  exports alike: :attr:`rooms.identity.Identity.expires_at` is that moment),
  and ``iat`` and ``nbf`` may be up to ``leeway`` in the future;
* RSA keys of at least 2048 bits (:data:`MIN_RSA_BITS`).

The algorithm is taken from the key, never from the token: a token's
``alg`` must equal its key's algorithm, so ``alg: none`` and HMAC signed
with a public key (the classic confusion attack) are refused.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from collab.errors import ExpiredToken, InvalidToken, MissingToken, WrongRoom
from crdt.text import bad_name_character
from crdt.types import RoomId, UserId
from rooms.identity import Identity, Role

__all__ = [
    "KeySet",
    "TokenAuthenticator",
    "VerificationKey",
    "load_private_key",
    "load_public_keys",
    "mint_token",
    "new_token_id",
    "room_matches",
    "valid_subject",
    "valid_token_id",
]

MAX_TOKEN_CHARS = 8192
MAX_NAME_CHARS = 64
MIN_SECRET_BYTES = 32
#: The smallest RSA modulus accepted for RS256 (NIST SP 800-131A).
MIN_RSA_BITS = 2048
_SUB = re.compile(r"[A-Za-z0-9_.:@|+-]{1,128}")
#: A ``jti``: 1-128 printable ASCII characters, no space.
_JTI = re.compile(r"[!-~]{1,128}")
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.S)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key collab verifies with, and the one algorithm it may verify."""

    kid: str | None
    algorithm: str
    key: Any  # bytes (HS256) or a cryptography public key


def _algorithm_for(public_key: Any) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise ValueError(
                f"RSA keys must have at least {MIN_RSA_BITS} bits, not {public_key.key_size}"
            )
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name != "secp256r1":
            raise ValueError(f"EC keys must be P-256 (ES256), not {public_key.curve.name}")
        return "ES256"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ValueError(f"unsupported public key type {type(public_key).__name__}")


def load_public_keys(spec: str) -> list[VerificationKey]:
    """Keys from one ``--jwt-public-key`` value.

    ``spec`` is PEM text (one or more ``PUBLIC KEY`` blocks) or the path of a
    PEM file, optionally prefixed with ``<kid>=`` to name the key. Raises
    ValueError with a message naming the problem.
    """
    kid: str | None = None
    text = spec.strip()
    if "-----BEGIN" not in text.split("=", 1)[0] and re.match(r"^[A-Za-z0-9_.-]+=", text):
        kid, text = text.split("=", 1)
    if "-----BEGIN" not in text:
        path = Path(text)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read public key file {path}: {exc.strerror}") from None
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise ValueError("no PEM block found in the public key")
    if kid is not None and len(blocks) > 1:
        raise ValueError(f"key id {kid!r} names a file with {len(blocks)} keys; use one per id")
    keys = []
    for block in blocks:
        try:
            public_key = load_pem_public_key(block.encode())
        except ValueError as exc:
            raise ValueError(f"not a PEM public key: {exc}") from None
        keys.append(VerificationKey(kid, _algorithm_for(public_key), public_key))
    return keys


def load_private_key(spec: str) -> tuple[Any, str]:
    """A PEM private key (text or file path) and the algorithm it signs with."""
    text = spec if "-----BEGIN" in spec else Path(spec).read_text()
    private_key = load_pem_private_key(text.encode(), password=None)
    return private_key, _algorithm_for(private_key.public_key())


class KeySet:
    """Every key tokens may be signed with."""

    def __init__(self, keys: Iterable[VerificationKey]) -> None:
        self.keys = tuple(keys)
        if not self.keys:
            raise ValueError("a key set needs at least one key")

    @classmethod
    def from_config(
        cls, *, secret: str | None, public_keys: Iterable[str], secret_kid: str | None = None
    ) -> KeySet:
        keys: list[VerificationKey] = []
        if secret:
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
            keys.append(VerificationKey(secret_kid, "HS256", secret.encode()))
        for spec in public_keys:
            keys.extend(load_public_keys(spec))
        return cls(keys)

    def candidates(self, header: dict[str, Any]) -> list[VerificationKey]:
        """Keys that may have signed a token with this header (may be empty)."""
        alg = header.get("alg")
        kid = header.get("kid")
        if kid is not None:
            return [k for k in self.keys if k.kid == kid and k.algorithm == alg]
        return [k for k in self.keys if k.algorithm == alg]


def room_matches(pattern: str, room: str) -> bool:
    """An exact room id, or ``prefix/*`` for every room under ``prefix/``."""
    if pattern.endswith("/*"):
        prefix = pattern[:-1]
        return len(prefix) > 1 and room.startswith(prefix) and len(room) > len(prefix)
    return pattern == room


class TokenAuthenticator:
    """An :class:`collab.auth.Authenticator` for ``auth = {"token": "<JWT>"}``."""

    def __init__(
        self,
        keys: KeySet,
        *,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_s: float = 30.0,
        max_ttl_s: float = 4 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_ttl_s <= 0 or leeway_s < 0:
            raise ValueError("the token lifetime must be positive and the leeway not negative")
        self.keys = keys
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s
        self.max_ttl_s = max_ttl_s
        self.clock = clock

    def authenticate(self, auth: Any, room: RoomId) -> Identity:
        token = auth.get("token") if isinstance(auth, dict) else None
        if token is None or token == "":
            raise MissingToken("a token is required: auth = {token: '<JWT>'}")
        claims = self.verify(token)
        if not room_matches(claims["room"], room):
            raise WrongRoom("the token is not valid for this room")
        return self.identity(claims)

    def identity(self, claims: dict[str, Any]) -> Identity:
        """The identity of verified ``claims``; it expires at ``exp`` plus the leeway."""
        return Identity(
            UserId(claims["sub"]),
            claims["name"],
            Role(claims["role"]),
            float(claims["exp"]) + self.leeway_s,
            claims.get("jti"),
        )

    def verify(self, token: Any) -> dict[str, Any]:
        """The verified claims; raise InvalidToken, ExpiredToken (never other errors).

        The signature, then the claims' types, then the times against
        :attr:`clock` with one leeway (see the module docstring).
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("the token must be a string of at most 8192 characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is not a JWT") from None
        candidates = self.keys.candidates(header)
        if not candidates:
            raise InvalidToken("no configured key for this token's algorithm and key id")
        last_error: Exception | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=[key.algorithm],
                    audience=self.audience,
                    issuer=self.issuer,
                    # Times are checked below, with this authenticator's clock
                    # and leeway; sub and jti with collab's own rules.
                    options={
                        "require": ["exp", "iat", "sub", "room", "role", "name"],
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                        "verify_sub": False,
                        "verify_jti": False,
                    },
                )
            except jwt.InvalidSignatureError as exc:
                last_error = exc
                continue
            except jwt.PyJWTError as exc:
                raise InvalidToken(f"the token is invalid: {_reason(exc)}") from None
            claims = _check_claims(claims)
            self._check_times(claims)
            return claims
        raise InvalidToken("the token's signature does not verify") from last_error

    def _check_times(self, claims: dict[str, Any]) -> None:
        """``iat``, ``nbf``, the lifetime and ``exp`` against the clock, one leeway."""
        now, leeway = self.clock(), self.leeway_s
        iat, exp = float(claims["iat"]), float(claims["exp"])
        if iat > now + leeway:
            raise InvalidToken("the token is invalid: issued in the future (iat)")
        nbf = claims.get("nbf")
        if nbf is not None and float(nbf) > now + leeway:
            raise InvalidToken("the token is invalid: not valid yet (nbf)")
        if exp - iat > self.max_ttl_s:
            raise InvalidToken(
                f"the token is invalid: its lifetime (exp - iat) is over {self.max_ttl_s:g} s"
            )
        if exp > now + self.max_ttl_s + leeway:  # implied by the two above; kept explicit
            raise InvalidToken(f"the token is invalid: exp is over {self.max_ttl_s:g} s away")
        if now >= exp + leeway:
            raise ExpiredToken("the token has expired")


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim {exc.claim!r}"
    return type(exc).__name__


def _check_claims(claims: dict[str, Any]) -> dict[str, Any]:
    sub, name, room, role = claims["sub"], claims["name"], claims["room"], claims["role"]
    if not isinstance(sub, str) or not _SUB.fullmatch(sub):
        raise InvalidToken("claim 'sub' must be 1-128 characters of [A-Za-z0-9_.:@|+-]")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_CHARS:
        raise InvalidToken(f"claim 'name' must be 1-{MAX_NAME_CHARS} characters")
    if bad_name_character(name) is not None:
        raise InvalidToken("claim 'name' holds a control, bidi or invalid character")
    if not isinstance(room, str) or not room:
        raise InvalidToken("claim 'room' must be a room id or a 'prefix/*' pattern")
    if role not in {r.value for r in Role}:
        raise InvalidToken("claim 'role' must be facilitator, participant or observer")
    for time_claim in ("exp", "iat", "nbf"):
        value = claims.get(time_claim)
        if time_claim in claims and (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise InvalidToken(f"claim {time_claim!r} must be a number")
    if "jti" in claims and not valid_token_id(claims["jti"]):
        raise InvalidToken("claim 'jti' must be 1-128 printable ASCII characters, no space")
    return {**claims, "name": name.strip()}


def valid_subject(value: Any) -> bool:
    """Whether ``value`` is a ``sub`` collab accepts (and a revocation may name)."""
    return isinstance(value, str) and _SUB.fullmatch(value) is not None


def valid_token_id(value: Any) -> bool:
    """Whether ``value`` is a ``jti`` collab accepts (and a revocation may name)."""
    return isinstance(value, str) and _JTI.fullmatch(value) is not None


def new_token_id() -> str:
    """A fresh random ``jti`` (128 bits)."""
    return secrets.token_urlsafe(16)


def mint_token(
    key: Any,
    *,
    algorithm: str,
    sub: str,
    name: str,
    room: str,
    role: str,
    ttl_s: float = 3600.0,
    kid: str | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    now: float | None = None,
    token_id: str | None = None,
) -> str:
    """A signed token for local use (``collab token``, ``--dev``, tests):
    ``iat`` now, ``exp`` ``ttl_s`` later, and a ``jti`` (``token_id``, or a
    random one) that a revocation can name."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "name": name,
        "room": room,
        "role": role,
        "iat": issued,
        "exp": issued + int(ttl_s),
        "jti": token_id if token_id is not None else new_token_id(),
    }
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    headers = {"kid": kid} if kid is not None else None
    signing_key = key.encode() if isinstance(key, str) else key
    return jwt.encode(claims, signing_key, algorithm=algorithm, headers=headers)
