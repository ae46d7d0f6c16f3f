"""Per-message limits, checked before anything is applied (protocol.md §8)."""

from __future__ import annotations

from dataclasses import dataclass

from crdt.updates import DEFAULT_MAX_CLOCK

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    #: Largest binary payload of any event (an update, state vector or awareness).
    max_message_bytes: int = 1 << 20
    #: Entries in one awareness update from a client.
    max_awareness_entries: int = 16
    #: Bytes of one client's awareness state (its JSON).
    max_awareness_state_bytes: int = 16 << 10
    #: Yjs client ids one connection may speak for in awareness.
    max_awareness_clients_per_connection: int = 8
    #: Characters of one chat message.
    max_chat_chars: int = 4000
    #: Highest Yjs clock an update may mention (see crdt.updates).
    max_clock: int = DEFAULT_MAX_CLOCK
    #: Refuse board updates that write outside the board schema's roots.
    strict_board: bool = False
