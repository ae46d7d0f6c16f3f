"""What a node asks the Redis append script to do, and what it answers
(rooms.redis_scripts ``APPEND``; rooms.store_redis runs it).

An :class:`AppendItem` is one document's batch: its updates, the chat
message keys some of them claim (protocol.md §6.1: a ``clientMessageId`` is
checked and set in the same script as the append, so two nodes cannot both
store it), the keys a re-seed records, and the Redis epoch the batch is
written in. An :class:`AppendResult` says what became of it. Sans-I/O: the
script's arguments are built and its replies read here; the store sends them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from crdt.types import DocName, RoomId, Update
from rooms.redis_keys import text
from rooms.store import LogPosition

__all__ = ["AppendItem", "AppendResult", "AppendStatus", "Claim", "Pending", "Reply", "parse_reply"]

#: A chat message's key in the ids hash and its value (``"<id>|<ts>"``).
Claim = tuple[str, str]


class AppendStatus(Enum):
    #: Appended (and published); or nothing was left to append (duplicates).
    APPENDED = "appended"
    #: The room was deleted since this node loaded it: the updates are dropped.
    DELETED = "deleted"
    #: Redis holds another epoch than the document was reconciled in (or
    #: none): it restarted empty or was replaced. Nothing was written; the
    #: document must be re-seeded before anything else is appended.
    NEW_EPOCH = "new_epoch"


@dataclass(frozen=True, slots=True)
class AppendItem:
    """One document's updates, appended in order by one script call."""

    room: RoomId
    doc: DocName
    updates: Sequence[Update]
    #: Update index → the chat message key it claims. An update whose key the
    #: ids hash already holds (with another value) is not appended.
    claims: Mapping[int, Claim] = field(default_factory=dict)
    #: Keys set where absent, never checked (a re-seed's every message).
    records: Mapping[str, str] = field(default_factory=dict)
    #: The Redis epoch to write in: None for the one the document was last
    #: reconciled in; a re-seed names the epoch it reconciled with.
    epoch: str | None = None


@dataclass(slots=True)
class AppendResult:
    status: AppendStatus
    #: The stream id of the last entry appended ("0-0" if none).
    position: LogPosition = "0-0"
    #: NEW_EPOCH: the epoch Redis holds ("" for none).
    epoch: str = ""
    #: Update index → the value stored for the key it claimed: those updates
    #: were not appended (another node stored that message first).
    duplicates: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class Pending:
    """An item still to be appended: its updates not yet refused as duplicates."""

    index: int
    item: AppendItem
    #: (index in ``item.updates``, update) still to append.
    updates: list[tuple[int, Update]]
    result: AppendResult = field(default_factory=lambda: AppendResult(AppendStatus.APPENDED))

    def claims(self) -> list[tuple[int, str, str]]:
        """(position among the remaining updates, from 1; key; value)."""
        return [
            (n + 1, *self.item.claims[i])
            for n, (i, _) in enumerate(self.updates)
            if i in self.item.claims
        ]

    def drop(self, positions: Mapping[int, str]) -> None:
        """Drop the updates at ``positions`` (from 1; claims taken), noting the value stored."""
        for position, stored in positions.items():
            i = self.updates[position - 1][0]
            self.result.duplicates[i] = stored
        self.updates = [u for n, u in enumerate(self.updates) if n + 1 not in positions]


@dataclass(frozen=True, slots=True)
class Reply:
    """The append script's answer, read."""

    #: 1 appended, 0 sequence taken, -1 deleted, -2 another epoch, -3 claims taken.
    code: int
    seq: int = 0
    position: str = ""
    epoch: str = ""
    taken: dict[int, str] = field(default_factory=dict)


def parse_reply(raw: Any) -> Reply:
    code = int(raw[0])
    if code == 1:
        return Reply(code, seq=int(raw[1]), position=text(raw[2]), epoch=text(raw[3]))
    if code == 0:
        return Reply(code, seq=int(raw[1]))
    if code == -2:
        return Reply(code, epoch=text(raw[1]))
    if code == -3:
        flat = list(raw[1])
        return Reply(code, taken={int(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)})
    return Reply(code)
