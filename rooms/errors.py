"""The errors of rooms/: what a room refuses (its names, policy, state and
limits) and what its store cannot do now.

Their codes are ``RoomCode`` (protocol.md §7). The base of the tree,
``crdt.errors.CollabError``, and the engine's errors are in crdt/errors.py;
the app's (tokens, packets, connections, the admin API) in collab/errors.py.
"""

from __future__ import annotations

from crdt.errors import CollabError, MessageTooLarge, WireCode

__all__ = [
    "BoardLocked",
    "BreakoutClosed",
    "BreakoutState",
    "CheckinClosed",
    "CheckinLimit",
    "CheckinUnknown",
    "DeleteWindowExpired",
    "DocumentTooLarge",
    "InternalError",
    "InvalidAnswer",
    "InvalidName",
    "InvalidReceipt",
    "Muted",
    "NotFound",
    "NotInGroup",
    "PendingLimit",
    "PermissionDenied",
    "PrivateLineForbidden",
    "PrivateThreadLimit",
    "ReadOnlyDocument",
    "Removed",
    "RoomCode",
    "RoomUnavailable",
    "SchemaViolation",
    "SessionEnded",
    "ShapeLocked",
    "StoreUnavailable",
    "TimerStateConflict",
    "TooManyStructs",
]


class RoomCode(WireCode):
    """The codes of rooms/'s errors."""

    INVALID_NAME = "invalid_name"
    READ_ONLY_DOCUMENT = "read_only_document"
    SCHEMA_VIOLATION = "schema_violation"
    PERMISSION_DENIED = "permission_denied"
    ROOM_UNAVAILABLE = "room_unavailable"
    # limits (protocol.md §8)
    DOCUMENT_TOO_LARGE = "document_too_large"
    PENDING_LIMIT = "pending_limit"
    # faults (protocol.md §11)
    STORE_UNAVAILABLE = "store_unavailable"
    # room state (protocol.md §6.3)
    REMOVED = "removed"
    BOARD_LOCKED = "board_locked"
    SHAPE_LOCKED = "shape_locked"
    MUTED = "muted"
    SESSION_ENDED = "session_ended"
    NOT_FOUND = "not_found"
    # session activities (protocol.md §6.6)
    DELETE_WINDOW_EXPIRED = "delete_window_expired"
    TIMER_STATE = "timer_state"
    # breakout groups (protocol.md §6.7)
    BREAKOUT_STATE = "breakout_state"
    BREAKOUT_CLOSED = "breakout_closed"
    NOT_IN_GROUP = "not_in_group"
    PRIVATE_LINE_FORBIDDEN = "private_line_forbidden"
    PRIVATE_THREAD_LIMIT = "private_thread_limit"
    # check-ins (protocol.md §6.9)
    CHECKIN_UNKNOWN = "checkin_unknown"
    CHECKIN_CLOSED = "checkin_closed"
    CHECKIN_LIMIT = "checkin_limit"
    INVALID_ANSWER = "invalid_answer"
    INVALID_RECEIPT = "invalid_receipt"


class InvalidName(CollabError):
    """A room or document name outside the charset or length limit."""

    code = RoomCode.INVALID_NAME


class ReadOnlyDocument(CollabError):
    """A client wrote to a document only the server writes (chat, meta)."""

    code = RoomCode.READ_ONLY_DOCUMENT


class SchemaViolation(CollabError):
    """Board content outside the board schema, with strict validation on."""

    code = RoomCode.SCHEMA_VIOLATION


class PermissionDenied(CollabError):
    """The connection's role does not allow this action."""

    code = RoomCode.PERMISSION_DENIED


class RoomUnavailable(CollabError):
    """The room could not be loaded (store failure) or is shutting down."""

    code = RoomCode.ROOM_UNAVAILABLE


class Removed(CollabError):
    """The user was removed from the room by a facilitator."""

    code = RoomCode.REMOVED


class BoardLocked(CollabError):
    """A participant wrote to a board a facilitator locked."""

    code = RoomCode.BOARD_LOCKED


class ShapeLocked(CollabError):
    """A participant's board update changes or deletes a shape a facilitator
    locked, or cannot be placed while the board has locked shapes."""

    code = RoomCode.SHAPE_LOCKED


class Muted(CollabError):
    """A muted user tried to chat."""

    code = RoomCode.MUTED


class SessionEnded(CollabError):
    """The session ended: the room is read-only for everyone."""

    code = RoomCode.SESSION_ENDED


class NotFound(CollabError):
    """No such room, message or user."""

    code = RoomCode.NOT_FOUND


class DeleteWindowExpired(CollabError):
    """A ``chat:delete`` of one's own message after the window for it
    (``--chat-delete-window-s``) closed, or on a server where it is 0."""

    code = RoomCode.DELETE_WINDOW_EXPIRED


class TimerStateConflict(CollabError):
    """A ``mod:timer`` action the shared timer's state does not allow (pause
    a timer that is not running, resume one that is not paused, extend one
    that is stopped)."""

    code = RoomCode.TIMER_STATE


class BreakoutState(CollabError):
    """A ``mod:breakout`` action the breakouts' state does not allow: open
    while a set is open; broadcast or show while none is, or show one that
    is open."""

    code = RoomCode.BREAKOUT_STATE


class BreakoutClosed(CollabError):
    """A join to a breakout room while its main room has no open groups, and
    the reason a breakout room's connections close when the groups close."""

    code = RoomCode.BREAKOUT_CLOSED


class NotInGroup(CollabError):
    """A join to a breakout group that is not the user's (or does not exist)."""

    code = RoomCode.NOT_IN_GROUP


class PrivateLineForbidden(CollabError):
    """A private thread (``private:<key>``) joined or written by someone it
    is not for: only its participant and the room's facilitators."""

    code = RoomCode.PRIVATE_LINE_FORBIDDEN


class PrivateThreadLimit(CollabError):
    """A message that would start one more private thread in a room that
    holds as many as it may (``rooms.private_line.MAX_PRIVATE_THREADS``)."""

    code = RoomCode.PRIVATE_THREAD_LIMIT


class DocumentTooLarge(CollabError):
    """The document is at its size limit: nothing that adds to it is accepted."""

    code = RoomCode.DOCUMENT_TOO_LARGE


class PendingLimit(CollabError):
    """Too many updates of a document wait for updates they depend on that
    never arrived; an update that would add to them is refused."""

    code = RoomCode.PENDING_LIMIT


class TooManyStructs(MessageTooLarge):
    """An update of more structs than ``max_update_structs``: the work of one
    update holds the event loop, for every room (protocol.md §8.1). Its code
    is ``message_too_large``, its base's."""


class CheckinUnknown(CollabError):
    """No check-in of that id in the room (never opened, or deleted)."""

    code = RoomCode.CHECKIN_UNKNOWN


class CheckinClosed(CollabError):
    """An answer to a check-in that is closed, or closing a closed one."""

    code = RoomCode.CHECKIN_CLOSED


class CheckinLimit(CollabError):
    """Opening a check-in while one is open, or past the kept check-ins."""

    code = RoomCode.CHECKIN_LIMIT


class InvalidAnswer(CollabError):
    """An answer that is not one the check-in's kind and options allow."""

    code = RoomCode.INVALID_ANSWER


class InvalidReceipt(CollabError):
    """Changing an anonymous answer without the receipt of the last one."""

    code = RoomCode.INVALID_RECEIPT


class StoreUnavailable(CollabError):
    """The store cannot take writes now: nothing was stored; retry later."""

    code = RoomCode.STORE_UNAVAILABLE


class InternalError(CollabError):
    """An unexpected fault; the message never carries internals. Its code is
    ``internal_error``, the base's (``crdt.errors.CrdtCode``)."""
