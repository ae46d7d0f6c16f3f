"""The errors of the app: tokens, Socket.IO packets and events, connection
caps and rates, and the admin API. Their codes are ``AppCode``.

The base of the tree and the engine's errors are in crdt/errors.py, the
rooms' in rooms/errors.py. ``ALL_CODES`` is every code of the three, the
vocabulary protocol.md §7 documents (a test keeps the two in step).
"""

from __future__ import annotations

from crdt.errors import CollabError, CrdtCode, WireCode
from rooms.errors import RoomCode

__all__ = [
    "ALL_CODES",
    "AppCode",
    "Conflict",
    "ExpiredToken",
    "ImageQuotaExceeded",
    "ImageTooLarge",
    "ImagesUnavailable",
    "InvalidPacket",
    "InvalidToken",
    "MissingToken",
    "RateLimited",
    "RestoreUnavailable",
    "Revoked",
    "RoomDeleted",
    "TemplatesUnavailable",
    "TooManyConnections",
    "Unauthorized",
    "UnknownEvent",
    "UnsupportedImage",
    "WrongRoom",
]


class AppCode(WireCode):
    """The codes of collab/'s errors."""

    UNKNOWN_EVENT = "unknown_event"
    # limits (protocol.md §8)
    INVALID_PACKET = "invalid_packet"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    # identity (protocol.md §9)
    MISSING_TOKEN = "missing_token"
    INVALID_TOKEN = "invalid_token"
    EXPIRED_TOKEN = "expired_token"
    WRONG_ROOM = "wrong_room"
    REVOKED = "revoked"
    # room state (protocol.md §6.3)
    ROOM_DELETED = "room_deleted"
    # admin API (protocol.md §10)
    UNAUTHORIZED = "unauthorized"
    CONFLICT = "conflict"
    # images (protocol.md §10.6)
    UNSUPPORTED_IMAGE = "unsupported_image"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_QUOTA_EXCEEDED = "image_quota_exceeded"
    IMAGES_UNAVAILABLE = "images_unavailable"
    RESTORE_UNAVAILABLE = "restore_unavailable"
    TEMPLATES_UNAVAILABLE = "templates_unavailable"


#: Every error code collab sends, lowest layer first (protocol.md §7).
ALL_CODES: tuple[WireCode, ...] = (*CrdtCode, *RoomCode, *AppCode)


class UnknownEvent(CollabError):
    """An event name the server does not handle on this namespace."""

    code = AppCode.UNKNOWN_EVENT


class MissingToken(CollabError):
    """A connect without a token where one is required."""

    code = AppCode.MISSING_TOKEN


class InvalidToken(CollabError):
    """A token that does not verify: malformed, wrong signature or algorithm,
    unknown key id, not yet valid, wrong audience or issuer, bad claims."""

    code = AppCode.INVALID_TOKEN


class ExpiredToken(CollabError):
    """A token past its ``exp`` (at connect, or later during the session)."""

    code = AppCode.EXPIRED_TOKEN


class WrongRoom(CollabError):
    """A valid token for another room."""

    code = AppCode.WRONG_ROOM


class Revoked(CollabError):
    """An admin revoked the token (by ``jti``) or the user (by ``sub``):
    live connections close with it, connects and exports are refused."""

    code = AppCode.REVOKED


class RoomDeleted(CollabError):
    """The room was deleted (its connections are closed with this code)."""

    code = AppCode.ROOM_DELETED


class Unauthorized(CollabError):
    """An admin API call without the right admin key."""

    code = AppCode.UNAUTHORIZED


class Conflict(CollabError):
    """The resource already exists (creating a room twice)."""

    code = AppCode.CONFLICT


class InvalidPacket(CollabError):
    """A Socket.IO packet outside what collab's events use: more binary
    attachments than one, a placeholder that names none of them, or an
    attachment no packet announced."""

    code = AppCode.INVALID_PACKET


class RateLimited(CollabError):
    """A client sent faster than a rate limit allows (protocol.md §8)."""

    code = AppCode.RATE_LIMITED


class TooManyConnections(CollabError):
    """A connection cap: per address, per user in a room, per room, or
    documents per Engine.IO session."""

    code = AppCode.TOO_MANY_CONNECTIONS


class UnsupportedImage(CollabError):
    """An upload that is not a PNG, JPEG or WebP image that decodes in full
    (another format, damaged, truncated, animated)."""

    code = AppCode.UNSUPPORTED_IMAGE


class ImageTooLarge(CollabError):
    """An upload past the image byte or pixel limit (protocol.md §8.5)."""

    code = AppCode.IMAGE_TOO_LARGE


class ImageQuotaExceeded(CollabError):
    """An upload that would take the room's images past their total bytes."""

    code = AppCode.IMAGE_QUOTA_EXCEEDED


class ImagesUnavailable(CollabError):
    """The server's store keeps no images (a store without rooms.store.BlobStore)."""

    code = AppCode.IMAGES_UNAVAILABLE


class RestoreUnavailable(CollabError):
    """The server's store keeps no restore points (a store without rooms.store.BlobStore)."""

    code = AppCode.RESTORE_UNAVAILABLE


class TemplatesUnavailable(CollabError):
    """The server's store keeps no platform templates (a store without
    rooms.store.BlobStore): only the shipped ones."""

    code = AppCode.TEMPLATES_UNAVAILABLE
