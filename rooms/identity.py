"""Who a connection is, and what its role lets it do (design.md §4).

The role checks here are the one place policy lives; handlers ask, they do
not decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from crdt.errors import PermissionDenied, ReadOnlyDocument
from crdt.schemas import DocKind
from crdt.types import UserId

__all__ = ["Identity", "Role", "can_write", "check_can_chat", "check_can_write"]


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

    def as_json(self) -> dict[str, str]:
        return {"id": self.user_id, "name": self.name, "role": self.role.value}


def check_can_write(identity: Identity, kind: DocKind) -> None:
    """Raise unless ``identity`` may send ``sync-update`` to a document of ``kind``."""
    if kind.server_written:
        raise ReadOnlyDocument(f"the {kind.value} document is written by the server only")
    if identity.role is Role.OBSERVER:
        raise PermissionDenied("observers are read-only")


def can_write(identity: Identity, kind: DocKind) -> bool:
    """Whether ``identity`` may change a document of ``kind`` over sync."""
    return not kind.server_written and identity.role is not Role.OBSERVER


def check_can_chat(identity: Identity) -> None:
    """Raise unless ``identity`` may send chat messages."""
    if identity.role is Role.OBSERVER:
        raise PermissionDenied("observers are read-only")
