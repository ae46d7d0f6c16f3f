"""The base of collab's error tree, and the engine's errors.

Every protocol fault is a class with a code; codes are the wire vocabulary
(protocol.md §7 lists them; a test keeps the two in step). An error and its
code live in the lowest package that raises it or catches it by class, so
imports keep pointing down: this module holds the base, ``CollabError``, and
the errors crdt/ raises (codes ``CrdtCode``); rooms/errors.py and
collab/errors.py hold the rest (``RoomCode``, ``AppCode``;
``collab.errors.ALL_CODES`` lists every code). ``collab.wire.error_payload``
is the single place an exception becomes a wire error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

__all__ = [
    "AwarenessClientNotOwned",
    "CollabError",
    "CrdtCode",
    "EnginePanic",
    "InvalidChatMessage",
    "InvalidPayload",
    "MalformedAwareness",
    "MalformedMessage",
    "MalformedUpdate",
    "MessageTooLarge",
    "WireCode",
]


class WireCode(StrEnum):
    """The base of the code enums: ``CrdtCode`` here, ``rooms.errors.RoomCode``
    and ``collab.errors.AppCode``. A member is its wire value (it compares and
    hashes as that string); no value is in two of the enums (a test checks it)."""


class CrdtCode(WireCode):
    """The codes of crdt/'s errors, and ``internal_error`` (the base's)."""

    INVALID_PAYLOAD = "invalid_payload"
    MALFORMED_UPDATE = "malformed_update"
    MALFORMED_AWARENESS = "malformed_awareness"
    MESSAGE_TOO_LARGE = "message_too_large"
    AWARENESS_CLIENT_NOT_OWNED = "awareness_client_not_owned"
    INVALID_CHAT_MESSAGE = "invalid_chat_message"
    INTERNAL_ERROR = "internal_error"


class CollabError(Exception):
    """Base of every error collab reports to a client.

    ``str(exc)`` is the human-readable message sent with the code; it must
    never contain board or chat content (only ids, sizes and field names).
    """

    code: ClassVar[WireCode] = CrdtCode.INTERNAL_ERROR


class InvalidPayload(CollabError):
    """The payload has the wrong type or shape (e.g. text on a binary event)."""

    code = CrdtCode.INVALID_PAYLOAD


class MalformedMessage(CollabError):
    """Bytes that do not decode (a lib0 fault, before knowing what they were)."""

    code = CrdtCode.INVALID_PAYLOAD


class MalformedUpdate(CollabError):
    """A Yjs update that does not decode, or is outside collab's limits."""

    code = CrdtCode.MALFORMED_UPDATE


class EnginePanic(MalformedUpdate):
    """The Rust core panicked while applying an update. The replica may hold
    part of that update afterwards: the caller must restore it."""


class MalformedAwareness(CollabError):
    """An awareness update that does not decode or is outside the limits."""

    code = CrdtCode.MALFORMED_AWARENESS


class MessageTooLarge(CollabError):
    """A payload larger than ``max_message_bytes`` (or a per-field limit)."""

    code = CrdtCode.MESSAGE_TOO_LARGE


class AwarenessClientNotOwned(CollabError):
    """An awareness entry for a Yjs client id the connection does not own."""

    code = CrdtCode.AWARENESS_CLIENT_NOT_OWNED


class InvalidChatMessage(CollabError):
    """A chat message with a wrong type, empty or over-long text, or bad id."""

    code = CrdtCode.INVALID_CHAT_MESSAGE
