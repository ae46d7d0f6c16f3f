"""Who a connection is (docs/architecture.md §8); what it may do is rooms.policy's job."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from crdt.types import UserId

__all__ = ["Identity", "Role"]


class Role(StrEnum):
    FACILITATOR = "facilitator"
    PARTICIPANT = "participant"
    OBSERVER = "observer"


@dataclass(frozen=True, slots=True)
class Identity:
    """A connection's identity: from the token, or assigned in open mode."""

    user_id: UserId
    name: str
    role: Role
    #: When the identity stops being valid (the token's ``exp`` plus the clock
    #: leeway: the last moment the token is accepted), Unix seconds.
    expires_at: float | None = None
    #: The token's ``jti`` (what a revocation by token id names), if it has one.
    token_id: str | None = None

    def as_json(self) -> dict[str, str]:
        return {"id": self.user_id, "name": self.name, "role": self.role.value}
