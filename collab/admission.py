"""Who may connect, and how fast each connection may send (protocol.md §8).

:class:`Admission` holds the caps a connect is checked against before its
document is loaded: documents per Engine.IO session, connections per user
in a room, connections per room, and the failed connects of an address
(via :class:`collab.sessions.SessionGuard`). A connect reserves its place
before the (awaited) load, so concurrent connects cannot overshoot a cap.

:class:`Quota` is one connection's allowance: token buckets for document
updates (count and bytes), awareness (count and bytes) and other events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from collab.errors import TooManyConnections
from collab.metrics import Metrics
from collab.sessions import Session, SessionGuard
from crdt.types import RoomId, UserId
from rooms.limits import Limits, Rates
from rooms.ratelimit import TokenBucket

__all__ = ["Admission", "Quota"]


@dataclass(slots=True)
class Quota:
    """How much more one connection may send now."""

    updates: TokenBucket
    update_bytes: TokenBucket
    awareness: TokenBucket
    awareness_bytes: TokenBucket
    events: TokenBucket
    #: ``reaction:send`` (protocol.md §6.6).
    reactions: TokenBucket
    #: Inside a run of rate-limited events: the client was told once.
    limited: bool = False

    @classmethod
    def fresh(cls, rates: Rates, now: float) -> Quota:
        return cls(
            rates.updates.bucket(now),
            rates.update_bytes.bucket(now),
            rates.awareness.bucket(now),
            rates.awareness_bytes.bucket(now),
            rates.events.bucket(now),
            rates.reactions.bucket(now),
        )

    def allow_update(self, now: float, size: int) -> bool:
        """Whether a document update of ``size`` bytes may go in now (a run
        of refusals ends when one does)."""
        return self._ended(self.updates.take(now) and self.update_bytes.take(now, size))

    def allow_awareness(self, now: float, size: int) -> bool:
        return self._ended(self.awareness.take(now) and self.awareness_bytes.take(now, size))

    def _ended(self, allowed: bool) -> bool:
        if allowed and self.limited:
            self.limited = False
        return allowed


class Admission:
    """The connection caps of one server."""

    def __init__(self, limits: Limits, sessions: SessionGuard, metrics: Metrics) -> None:
        self.limits = limits
        self.sessions = sessions
        self.metrics = metrics
        #: Connections (and connects in progress) per room, and per user in a room.
        self.per_room: dict[RoomId, int] = {}
        self.per_user: dict[tuple[RoomId, UserId], int] = {}

    def reserve(self, session: Session | None, room: RoomId, user: UserId) -> None:
        """Take a place for a connect of ``user`` to ``room``, or raise
        TooManyConnections. Give it back with :meth:`release`."""
        if session is not None:
            self.sessions.admit_document(session)
        if self.per_room.get(room, 0) >= self.limits.max_room_connections:
            self.metrics.refused("room_connections")
            raise TooManyConnections(f"the room has {self.limits.max_room_connections} connections")
        key = (room, user)
        if self.per_user.get(key, 0) >= self.limits.max_connections_per_user:
            self.metrics.refused("connections_per_user")
            raise TooManyConnections(
                f"this user has {self.limits.max_connections_per_user} connections to the room"
            )
        self.per_room[room] = self.per_room.get(room, 0) + 1
        self.per_user[key] = self.per_user.get(key, 0) + 1

    def release(self, room: RoomId, user: UserId) -> None:
        _decrement(self.per_room, room)
        _decrement(self.per_user, (room, user))


_K = TypeVar("_K")


def _decrement(counts: dict[_K, int], key: _K) -> None:
    left = counts.get(key, 1) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
