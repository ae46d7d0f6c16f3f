"""When collab's Python client connects again, and how long it waits first
(collab.client; sans-I/O).

* :class:`Backoff`: full-jitter exponential waits between connect attempts;
* :class:`ClientState` and :data:`TRANSITIONS`: where a client's connection
  is, and where it may go from there;
* :data:`FINAL_CONNECT_CODES`: refused connects not worth trying again;
* :data:`RESYNC_CODES`: refused updates the next handshake delivers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import Enum

from collab.errors import AppCode
from crdt.errors import CrdtCode
from rooms.errors import RoomCode

__all__ = ["FINAL_CONNECT_CODES", "RESYNC_CODES", "TRANSITIONS", "Backoff", "ClientState"]

#: Refused connects after which reconnecting is pointless: the server refuses
#: this token, user or room every time (protocol.md §7, §9).
FINAL_CONNECT_CODES = frozenset(
    {
        AppCode.MISSING_TOKEN,
        AppCode.INVALID_TOKEN,
        AppCode.EXPIRED_TOKEN,
        AppCode.WRONG_ROOM,
        RoomCode.REMOVED,
        AppCode.REVOKED,
        RoomCode.INVALID_NAME,
        CrdtCode.INVALID_PAYLOAD,
        AppCode.ROOM_DELETED,
        RoomCode.BREAKOUT_CLOSED,
        RoomCode.NOT_IN_GROUP,
    }
)

#: Refused updates that the next handshake delivers (protocol.md §8): the
#: answer to the server's ``sync-step-1`` is not held to the per-update limits
#: or to this connection's rate, and the server keeps what waits for it. Other
#: refusals (a full board, a locked one, an outage) stay in ``refusals``; the
#: update stays in ``doc`` and goes out with a later handshake if the server
#: takes it then.
RESYNC_CODES = frozenset({CrdtCode.MESSAGE_TOO_LARGE, AppCode.RATE_LIMITED, RoomCode.PENDING_LIMIT})


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential backoff between connect attempts.

    The ``n``-th wait in a row (from 0) is a random time between 0 and
    ``min(max_s, base_s * 2**n)``: clients that lost the same node spread
    out over the others instead of arriving at once.
    """

    base_s: float = 0.5
    max_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.max_s:
            raise ValueError("Backoff needs 0 < base_s <= max_s")

    def bound(self, n: int) -> float:
        """The longest the ``n``-th wait may be."""
        return min(self.max_s, math.ldexp(self.base_s, min(n, 1000)))

    def delay(self, n: int, rng: random.Random | None = None) -> float:
        """A random wait for the ``n``-th retry in a row."""
        return (rng or _RNG).uniform(0.0, self.bound(n))


_RNG = random.Random()


class ClientState(Enum):
    """Where a client's connection is (``CollabClient.state``)."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    #: Waiting (backoff) before the next connect attempt.
    WAITING = "waiting"
    #: Closed, refused for good, or told to go: it will not connect again.
    STOPPED = "stopped"


TRANSITIONS: dict[ClientState, frozenset[ClientState]] = {
    ClientState.NEW: frozenset({ClientState.CONNECTING, ClientState.STOPPED}),
    ClientState.CONNECTING: frozenset(
        {ClientState.CONNECTED, ClientState.WAITING, ClientState.STOPPED}
    ),
    # CONNECTED → CONNECTING is a resync: at once, to the same URL.
    ClientState.CONNECTED: frozenset(
        {ClientState.CONNECTING, ClientState.WAITING, ClientState.STOPPED}
    ),
    ClientState.WAITING: frozenset({ClientState.CONNECTING, ClientState.STOPPED}),
    ClientState.STOPPED: frozenset(),
}
