"""The one error tree of collab: every protocol fault is a class with a code.

Codes are the wire vocabulary (protocol.md §7 lists them; a test keeps the
two in step). Lower layers raise these; ``collab.wire.error_payload`` is the
single place an exception becomes a wire error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

__all__ = [
    "AwarenessClientNotOwned",
    "BoardLocked",
    "CollabError",
    "Conflict",
    "DocumentTooLarge",
    "EnginePanic",
    "ErrorCode",
    "ExpiredToken",
    "InternalError",
    "InvalidChatMessage",
    "InvalidName",
    "InvalidPacket",
    "InvalidPayload",
    "InvalidToken",
    "MalformedAwareness",
    "MalformedMessage",
    "MalformedUpdate",
    "MessageTooLarge",
    "MissingToken",
    "Muted",
    "NotFound",
    "PendingLimit",
    "PermissionDenied",
    "RateLimited",
    "ReadOnlyDocument",
    "Removed",
    "Revoked",
    "RoomDeleted",
    "RoomUnavailable",
    "SchemaViolation",
    "SessionEnded",
    "StoreUnavailable",
    "TooManyConnections",
    "TooManyStructs",
    "Unauthorized",
    "UnknownEvent",
    "WrongRoom",
]


class ErrorCode(StrEnum):
    """Every error code collab sends. protocol.md §7 documents each one."""

    INVALID_PAYLOAD = "invalid_payload"
    MALFORMED_UPDATE = "malformed_update"
    MALFORMED_AWARENESS = "malformed_awareness"
    MESSAGE_TOO_LARGE = "message_too_large"
    AWARENESS_CLIENT_NOT_OWNED = "awareness_client_not_owned"
    INVALID_NAME = "invalid_name"
    READ_ONLY_DOCUMENT = "read_only_document"
    INVALID_CHAT_MESSAGE = "invalid_chat_message"
    SCHEMA_VIOLATION = "schema_violation"
    PERMISSION_DENIED = "permission_denied"
    UNKNOWN_EVENT = "unknown_event"
    ROOM_UNAVAILABLE = "room_unavailable"
    INTERNAL_ERROR = "internal_error"
    # limits (protocol.md §8)
    INVALID_PACKET = "invalid_packet"
    RATE_LIMITED = "rate_limited"
    DOCUMENT_TOO_LARGE = "document_too_large"
    PENDING_LIMIT = "pending_limit"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    # faults (protocol.md §11)
    STORE_UNAVAILABLE = "store_unavailable"
    # identity (protocol.md §9)
    MISSING_TOKEN = "missing_token"
    INVALID_TOKEN = "invalid_token"
    EXPIRED_TOKEN = "expired_token"
    WRONG_ROOM = "wrong_room"
    REMOVED = "removed"
    REVOKED = "revoked"
    # room state (protocol.md §6.3)
    BOARD_LOCKED = "board_locked"
    MUTED = "muted"
    SESSION_ENDED = "session_ended"
    ROOM_DELETED = "room_deleted"
    NOT_FOUND = "not_found"
    # admin API (protocol.md §10)
    UNAUTHORIZED = "unauthorized"
    CONFLICT = "conflict"


class CollabError(Exception):
    """Base of every error collab reports to a client.

    ``str(exc)`` is the human-readable message sent with the code; it must
    never contain board or chat content (only ids, sizes and field names).
    """

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR


class InvalidPayload(CollabError):
    """The payload has the wrong type or shape (e.g. text on a binary event)."""

    code = ErrorCode.INVALID_PAYLOAD


class MalformedMessage(CollabError):
    """Bytes that do not decode (a lib0 fault, before knowing what they were)."""

    code = ErrorCode.INVALID_PAYLOAD


class MalformedUpdate(CollabError):
    """A Yjs update that does not decode, or is outside collab's limits."""

    code = ErrorCode.MALFORMED_UPDATE


class EnginePanic(MalformedUpdate):
    """The Rust core panicked while applying an update. The replica may hold
    part of that update afterwards: the caller must restore it."""


class MalformedAwareness(CollabError):
    """An awareness update that does not decode or is outside the limits."""

    code = ErrorCode.MALFORMED_AWARENESS


class MessageTooLarge(CollabError):
    """A payload larger than ``max_message_bytes`` (or a per-field limit)."""

    code = ErrorCode.MESSAGE_TOO_LARGE


class TooManyStructs(MessageTooLarge):
    """An update of more structs than ``max_update_structs``: the work of one
    update holds the event loop, for every room (protocol.md §8.1)."""


class AwarenessClientNotOwned(CollabError):
    """An awareness entry for a Yjs client id the connection does not own."""

    code = ErrorCode.AWARENESS_CLIENT_NOT_OWNED


class InvalidName(CollabError):
    """A room or document name outside the charset or length limit."""

    code = ErrorCode.INVALID_NAME


class ReadOnlyDocument(CollabError):
    """A client wrote to a document only the server writes (chat, meta)."""

    code = ErrorCode.READ_ONLY_DOCUMENT


class InvalidChatMessage(CollabError):
    """A chat message with a wrong type, empty or over-long text, or bad id."""

    code = ErrorCode.INVALID_CHAT_MESSAGE


class SchemaViolation(CollabError):
    """Board content outside the board schema, with strict validation on."""

    code = ErrorCode.SCHEMA_VIOLATION


class PermissionDenied(CollabError):
    """The connection's role does not allow this action."""

    code = ErrorCode.PERMISSION_DENIED


class UnknownEvent(CollabError):
    """An event name the server does not handle on this namespace."""

    code = ErrorCode.UNKNOWN_EVENT


class RoomUnavailable(CollabError):
    """The room could not be loaded (store failure) or is shutting down."""

    code = ErrorCode.ROOM_UNAVAILABLE


class MissingToken(CollabError):
    """A connect without a token where one is required."""

    code = ErrorCode.MISSING_TOKEN


class InvalidToken(CollabError):
    """A token that does not verify: malformed, wrong signature or algorithm,
    unknown key id, not yet valid, wrong audience or issuer, bad claims."""

    code = ErrorCode.INVALID_TOKEN


class ExpiredToken(CollabError):
    """A token past its ``exp`` (at connect, or later during the session)."""

    code = ErrorCode.EXPIRED_TOKEN


class WrongRoom(CollabError):
    """A valid token for another room."""

    code = ErrorCode.WRONG_ROOM


class Removed(CollabError):
    """The user was removed from the room by a facilitator."""

    code = ErrorCode.REMOVED


class Revoked(CollabError):
    """An admin revoked the token (by ``jti``) or the user (by ``sub``):
    live connections close with it, connects and exports are refused."""

    code = ErrorCode.REVOKED


class BoardLocked(CollabError):
    """A participant wrote to a board a facilitator locked."""

    code = ErrorCode.BOARD_LOCKED


class Muted(CollabError):
    """A muted user tried to chat."""

    code = ErrorCode.MUTED


class SessionEnded(CollabError):
    """The session ended: the room is read-only for everyone."""

    code = ErrorCode.SESSION_ENDED


class RoomDeleted(CollabError):
    """The room was deleted (its connections are closed with this code)."""

    code = ErrorCode.ROOM_DELETED


class NotFound(CollabError):
    """No such room, message or user."""

    code = ErrorCode.NOT_FOUND


class Unauthorized(CollabError):
    """An admin API call without the right admin key."""

    code = ErrorCode.UNAUTHORIZED


class Conflict(CollabError):
    """The resource already exists (creating a room twice)."""

    code = ErrorCode.CONFLICT


class InvalidPacket(CollabError):
    """A Socket.IO packet outside what collab's events use: more binary
    attachments than one, a placeholder that names none of them, or an
    attachment no packet announced."""

    code = ErrorCode.INVALID_PACKET


class RateLimited(CollabError):
    """A client sent faster than a rate limit allows (protocol.md §8)."""

    code = ErrorCode.RATE_LIMITED


class DocumentTooLarge(CollabError):
    """The document is at its size limit: nothing that adds to it is accepted."""

    code = ErrorCode.DOCUMENT_TOO_LARGE


class PendingLimit(CollabError):
    """Too many updates of a document wait for updates they depend on that
    never arrived; an update that would add to them is refused."""

    code = ErrorCode.PENDING_LIMIT


class TooManyConnections(CollabError):
    """A connection cap: per address, per user in a room, per room, or
    documents per Engine.IO session."""

    code = ErrorCode.TOO_MANY_CONNECTIONS


class StoreUnavailable(CollabError):
    """The store cannot take writes now: nothing was stored; retry later."""

    code = ErrorCode.STORE_UNAVAILABLE


class InternalError(CollabError):
    """An unexpected fault; the message never carries internals."""

    code = ErrorCode.INTERNAL_ERROR
