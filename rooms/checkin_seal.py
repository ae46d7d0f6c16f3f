"""The check-ins' sealing key (protocol.md §6.9): what keeps a check-in's
results from the members who read meta, and a participant's receipt.

Results a facilitator has not shown to the group are stored in meta
(rooms.checkins), which every member of the room syncs; so they are stored
*sealed*: AES-256-GCM under a key only the servers hold, bound (as
associated data) to the room, the check-in and what the value is. A
receipt, given to a participant who answered an anonymous check-in, is
sealed the same way; the server keeps nothing that links it to them.

The key comes from the cluster key when there is one (every node of a
Redis deployment has it, so any node opens what another sealed), else from
a key file in the data directory (``checkins.key``, made 0600 on first
use, so a restart opens what was sealed before), else (no directory) a key
of the process's own.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["CheckinVault", "SealBroken"]

_DOMAIN = b"collab checkin seal v1"
_KEY_FILE = "checkins.key"
_NONCE = 12
#: Sealed values are padded to a multiple of this (JSON allows the trailing
#: spaces): every check-in value fits one block, so all seal to one length
#: and a sealed value's size says nothing of what it holds (a 10 on the
#: scale, how many options were ticked, a count reaching 10).
_BLOCK = 128


class SealBroken(ValueError):
    """A sealed value that does not open under this key and context."""


class CheckinVault:
    """Seals and opens check-in values under one key. ``writer`` names this
    process among the nodes writing a room's meta (its node id): an
    anonymous check-in's counts are kept per writer (rooms.checkins)."""

    __slots__ = ("_aead", "writer")

    def __init__(self, key: bytes, *, writer: str = "n") -> None:
        if len(key) != 32:
            raise ValueError("a check-in key is 32 bytes")
        self._aead = AESGCM(key)
        self.writer = writer

    @classmethod
    def from_secret(cls, secret: str | bytes, *, writer: str = "n") -> CheckinVault:
        """A vault whose key is derived from ``secret`` (the cluster key)."""
        raw = secret.encode() if isinstance(secret, str) else secret
        return cls(hmac.digest(raw, _DOMAIN, "sha256"), writer=writer)

    @classmethod
    def from_key_file(cls, directory: Path, *, writer: str = "n") -> CheckinVault:
        """A vault whose key is kept in ``directory``/checkins.key (made, 0600,
        if it is not there). OSError if the directory cannot hold it."""
        path = directory / _KEY_FILE
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            directory.mkdir(parents=True, exist_ok=True)
            text = secrets.token_hex(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(text + "\n")
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise OSError(f"{path} does not hold a check-in key") from None
        return cls(key, writer=writer)

    @classmethod
    def ephemeral(cls, *, writer: str = "n") -> CheckinVault:
        """A vault with a key of its own (nothing sealed outlives the process)."""
        return cls(secrets.token_bytes(32), writer=writer)

    def seal(self, context: str, value: Any) -> str:
        """``value`` (JSON) sealed for ``context``: base64url text."""
        nonce = secrets.token_bytes(_NONCE)
        plain = json.dumps(value, separators=(",", ":")).encode()
        plain = plain.ljust(-(-max(len(plain), 1) // _BLOCK) * _BLOCK, b" ")
        sealed = self._aead.encrypt(nonce, plain, _DOMAIN + b"|" + context.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, context: str, text: Any) -> Any:
        """The value :meth:`seal` sealed for ``context``; SealBroken if
        ``text`` is not one (another key, another context, altered)."""
        if not isinstance(text, str) or len(text) > 8192:
            raise SealBroken("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            raise SealBroken("not a sealed value") from None
        if len(raw) < _NONCE + 16:
            raise SealBroken("not a sealed value")
        try:
            plain = self._aead.decrypt(
                raw[:_NONCE], raw[_NONCE:], _DOMAIN + b"|" + context.encode()
            )
        except InvalidTag:
            raise SealBroken("the sealed value does not open here") from None
        return json.loads(plain)
