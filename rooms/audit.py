"""The audit log: append-only records of who did what, when, with what outcome.

Records name ids, roles, actions and outcome codes, never content (no chat
text, no board data, no token). The store keeps them after a room is purged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = ["AuditAction", "AuditRecord"]


class AuditAction(StrEnum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    REFUSED = "refused"  # an event refused for the connection's role or the room's state
    LOCK = "lock"
    MUTE = "mute"
    REMOVE = "remove"
    REDACT = "redact"
    END = "end"
    CREATE = "create"
    EXPORT = "export"
    DELETE = "delete"
    PURGE = "purge"
    ADMIN_AUTH = "admin_auth"
    ROLE = "role"  # a role override set or cleared (mod:role, or the admin API)
    REVOKE = "revoke"  # a revocation added (admin API)
    UNREVOKE = "unrevoke"  # a revocation lifted early (admin API)
    ADMIN_READ = "admin_read"  # an admin read rooms, a room's info, audit or revocations
    TEMPLATE = "template"  # a template placed on a board (mod:template)
    RESTORE = "restore"  # a restore point taken, or a board or shape restored from one
    UPLOAD = "upload"  # an image uploaded to the room (its digest and size)
    HAND = "hand"  # a facilitator lowered raised hands (mod:lower-hands)
    NOTICE = "notice"  # the session notice set or cleared (mod:notice, or the admin API)
    DELETE_MESSAGE = "delete_message"  # an author deleted their own chat message (chat:delete)
    TIMER = "timer"  # the shared timer started, paused, resumed, extended or stopped
    FOLLOW = "follow"  # follow me turned on or off, or everyone brought to a view
    BREAKOUT = "breakout"  # breakout groups opened, closed, broadcast to or shown (mod:breakout)
    PRIVATE_READ = "private_read"  # a private thread joined (read): the thread and its participant
    CHECKIN = "checkin"  # a check-in opened, closed, shown, hidden or deleted (mod:checkin)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry. ``outcome`` is ``ok`` or an error code."""

    ts: float  # milliseconds since the Unix epoch
    room: str | None
    user_id: str | None
    role: str | None
    action: AuditAction
    outcome: str
    #: A short machine-readable qualifier: a target user id, a message id,
    #: a document name, an export format. Never content.
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action.value
        return data
