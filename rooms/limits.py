"""What one client can make a room hold or do, checked before anything is
applied (protocol.md §8 lists every limit with its default and setting)."""

from __future__ import annotations

from dataclasses import dataclass, field

from crdt.schemas import DocKind
from crdt.updates import DEFAULT_MAX_CLOCK
from rooms.ratelimit import Rate

__all__ = ["DEFAULT_AWARENESS_FIELDS", "Limits", "Rates"]

#: Top-level awareness fields kept by default (``--awareness-fields``): who
#: (stamped by the server), where, and what tool; the view a facilitator
#: leads with and a laser pointer (checked: crdt.awareness_fields). The web
#: app uses no others.
DEFAULT_AWARENESS_FIELDS = frozenset(
    ("user", "cursor", "selection", "tool", "color", "name", "status", "view", "pointer")
)


@dataclass(frozen=True, slots=True)
class Rates:
    """How fast one connection (chat: one user in a room) may send."""

    updates: Rate = Rate(200.0, 400)
    update_bytes: Rate = Rate(float(1 << 20), float(8 << 20))
    awareness: Rate = Rate(60.0, 120)
    awareness_bytes: Rate = Rate(float(64 << 10), float(512 << 10))
    chat: Rate = Rate(1.0, 20)
    #: Moderation events, unknown events, acks.
    events: Rate = Rate(10.0, 20)
    #: Refused events; when these run out the connection is closed.
    refusals: Rate = Rate(1.0, 60)
    #: ``reaction:send`` (session activities, protocol.md §6.6).
    reactions: Rate = Rate(2.0, 10)


@dataclass(frozen=True, slots=True)
class Limits:
    #: Largest binary payload of any event (an update, state vector or
    #: awareness), but the answer to the server's sync-step-1, which may be as
    #: large as its document (see max_document_bytes).
    max_message_bytes: int = 1 << 20
    #: Structs (items) in one update a client sends; a larger answer to the
    #: server's sync-step-1 is applied in parts of at most this many.
    max_update_structs: int = 5_000
    #: Entries in one awareness update from a client.
    max_awareness_entries: int = 16
    #: Bytes of one client's awareness state (its JSON).
    max_awareness_state_bytes: int = 16 << 10
    #: Yjs client ids one connection may speak for in awareness.
    max_awareness_clients_per_connection: int = 8
    #: Characters of one chat message.
    max_chat_chars: int = 4000
    #: Seconds after sending in which an author may delete their own chat
    #: message (``chat:delete``, protocol.md §6.6); 0: never.
    chat_delete_window_s: float = 300.0
    #: Highest Yjs clock an update may mention (see crdt.updates).
    max_clock: int = DEFAULT_MAX_CLOCK
    #: Refuse board updates that write outside the board schema's roots.
    strict_board: bool = False
    #: Largest encoded size of a document, by kind (boards, chat, meta).
    max_board_bytes: int = 16 << 20
    max_chat_bytes: int = 8 << 20
    max_meta_bytes: int = 1 << 20
    #: Updates of one document waiting for dependencies that have not arrived.
    max_pending_updates: int = 256
    max_pending_bytes: int = 2 << 20
    #: Connections to one room (all documents), and of one user to one room.
    max_room_connections: int = 1000
    max_connections_per_user: int = 24
    #: Top-level awareness fields a client's state may keep; the rest are
    #: dropped before it is stored or relayed (protocol.md §3.1). None: any.
    awareness_fields: frozenset[str] | None = DEFAULT_AWARENESS_FIELDS
    rates: Rates = field(default_factory=Rates)

    def max_document_bytes(self, kind: DocKind) -> int:
        if kind is DocKind.CHAT or kind is DocKind.PRIVATE:
            return self.max_chat_bytes
        if kind is DocKind.META:
            return self.max_meta_bytes
        return self.max_board_bytes
