"""Reactions (protocol.md §6.6): short-lived signs from a small fixed set,
shown on the sender's avatar and counted for the facilitator, never stored.

A client asks with ``reaction:send {"kind"}``; the server checks the kind
and the sender's role, stamps the sender and its own clock, and sends
``reaction {"userId", "kind", "ts"}`` to every connection of the room, on
every node. This module is sans-I/O: the message, its checks and its wire
forms; collab.activities sends it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crdt.errors import InvalidPayload
from crdt.types import UserId
from rooms.identity import Identity
from rooms.moderation import payload_fields
from rooms.policy import RoomPolicy

__all__ = [
    "REACTION",
    "REACTION_SEND",
    "Reaction",
    "ReactionKind",
    "make_reaction",
]

#: What a client sends, and what every connection of the room receives.
REACTION_SEND = "reaction:send"
REACTION = "reaction"

# A token's ``sub`` (protocol.md §9): what a user id may be.
_USER_ID = re.compile(r"[A-Za-z0-9_.:@|+-]{1,128}")


class ReactionKind(StrEnum):
    """The reactions there are (the web app words and draws each)."""

    THUMBS_UP = "thumbs-up"
    HEART = "heart"
    CLAP = "clap"
    RELATE = "relate"  # "I relate"
    SLOW_DOWN = "slow-down"


_KINDS = ", ".join(k.value for k in ReactionKind)


@dataclass(frozen=True, slots=True)
class Reaction:
    """One reaction as the room receives it."""

    user_id: UserId
    kind: ReactionKind
    #: Server time, milliseconds since the Unix epoch.
    ts: float

    def serialize(self) -> dict[str, Any]:
        """The ``reaction`` event's payload (and what a node tells the others)."""
        return {"userId": self.user_id, "kind": self.kind.value, "ts": self.ts}

    @classmethod
    def parse(cls, value: Any) -> Reaction:
        """A reaction from its serialized form (another node's); InvalidPayload
        for anything else."""
        if not isinstance(value, dict) or set(value) != {"userId", "kind", "ts"}:
            raise InvalidPayload("a reaction is {userId, kind, ts}")
        user, kind, ts = value["userId"], value["kind"], value["ts"]
        if not isinstance(user, str) or not _USER_ID.fullmatch(user):
            raise InvalidPayload("userId must be a user id")
        if (
            not isinstance(ts, int | float)
            or isinstance(ts, bool)
            or not math.isfinite(ts)
            or ts < 0
        ):
            raise InvalidPayload("ts must be a time")
        return cls(UserId(user), _kind(kind), float(ts))


def _kind(value: Any) -> ReactionKind:
    try:
        return ReactionKind(value)
    except ValueError:
        raise InvalidPayload(f"kind must be one of {_KINDS}") from None


def make_reaction(policy: RoomPolicy, actor: Identity, payload: Any, *, now_ms: float) -> Reaction:
    """``reaction:send {kind}`` from ``actor``: the reaction to send.
    PermissionDenied for observers, SessionEnded after the end,
    InvalidPayload for an unknown kind or any other field."""
    policy.check_take_part(actor)
    fields = payload_fields(payload, {"kind": str})
    if "kind" not in fields:
        raise InvalidPayload(f"field 'kind' is required: one of {_KINDS}")
    return Reaction(actor.user_id, _kind(fields["kind"]), float(int(now_ms)))
