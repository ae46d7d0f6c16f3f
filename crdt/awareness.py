"""The y-protocols awareness update codec and a per-document presence table.

Wire format (``y-protocols/awareness.js`` ``encodeAwarenessUpdate``)::

    varUint count
    count × ( varUint clientID, varUint clock, varString JSON(state) )

A state of ``null`` means the client left. The table applies entries with
the y-protocols rule (a higher clock wins; an equal clock may only remove)
and remembers which connection owns each Yjs client id, so a connection
can only speak for its own ids and is removed in one update when it leaves.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import orjson

from crdt.awareness_fields import check_fields
from crdt.errors import (
    AwarenessClientNotOwned,
    MalformedAwareness,
    MalformedMessage,
    MessageTooLarge,
)
from crdt.lib0 import Decoder, Encoder

__all__ = [
    "AwarenessEntry",
    "AwarenessTable",
    "decode_awareness",
    "encode_awareness",
    "stamp_user",
]

_NULL = "null"


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's presence: ``state`` is its JSON text, ``None`` when it left."""

    client_id: int
    clock: int
    state: str | None

    def state_value(self) -> Any:
        return None if self.state is None else orjson.loads(self.state)


def decode_awareness(
    data: bytes, *, max_entries: int, max_state_bytes: int
) -> tuple[AwarenessEntry, ...]:
    """Parse an awareness update; raise MalformedAwareness or MessageTooLarge.

    Each state must be a JSON object or ``null`` (what y-protocols sends).
    """
    dec = Decoder(data)
    try:
        count = dec.read_count(3)
        if count > max_entries:
            raise MessageTooLarge(f"awareness update has {count} entries, limit {max_entries}")
        entries = []
        for _ in range(count):
            client_id = dec.read_var_uint()
            clock = dec.read_var_uint()
            raw = dec.read_var_bytes()
            if len(raw) > max_state_bytes:
                raise MessageTooLarge(
                    f"awareness state of {len(raw)} bytes, limit {max_state_bytes}"
                )
            entries.append(AwarenessEntry(client_id, clock, _parse_state(raw)))
    except MalformedMessage as exc:
        raise MalformedAwareness(str(exc)) from None
    if not dec.done():
        raise MalformedAwareness(f"{dec.remaining} trailing bytes")
    return tuple(entries)


def _parse_state(raw: bytes) -> str | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedAwareness("awareness state is not JSON") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedAwareness("awareness state must be a JSON object or null")
    return raw.decode("utf-8")


def encode_awareness(entries: Iterable[AwarenessEntry]) -> bytes:
    """Encode entries as one awareness update."""
    items = list(entries)
    enc = Encoder()
    enc.write_var_uint(len(items))
    for entry in items:
        enc.write_var_uint(entry.client_id)
        enc.write_var_uint(entry.clock)
        enc.write_var_string(_NULL if entry.state is None else entry.state)
    return enc.to_bytes()


def stamp_user(
    entries: Iterable[AwarenessEntry],
    user: dict[str, Any],
    *,
    allowed_fields: AbstractSet[str] | None = None,
) -> tuple[AwarenessEntry, ...]:
    """The entries with each state's ``user`` field replaced by ``user``
    (the server's word on who this is; clients cannot speak for others).

    With ``allowed_fields``, a state's other top-level fields not in it are
    dropped, not refused (protocol.md §3.1): a client cannot make the server
    keep and relay what the platform did not allow. ``user`` is always the
    stamp, listed or not; ``None`` keeps every field. The fields whose
    content the server checks (``view``, ``pointer``: crdt.awareness_fields)
    are dropped when they do not fit, whatever the list. Removals (``None``
    states) pass through.
    """
    stamped = []
    for entry in entries:
        if entry.state is None:
            stamped.append(entry)
            continue
        state = orjson.loads(entry.state)
        if allowed_fields is not None:
            state = {k: v for k, v in state.items() if k in allowed_fields}
        state = check_fields(state, role=user.get("role"))
        state["user"] = user
        stamped.append(AwarenessEntry(entry.client_id, entry.clock, orjson.dumps(state).decode()))
    return tuple(stamped)


@dataclass(slots=True)
class _Slot:
    clock: int
    state: str | None
    owner: Hashable
    principal: Hashable
    #: Relayed from another node (owned by that node, not a local connection).
    remote: bool = False
    #: When a remote slot last changed (the caller's clock), for the sweep.
    updated: float = 0.0


def _stamped_user(state: str | None, default: Hashable) -> Hashable:
    """The user id a node stamped into a state (:func:`stamp_user`), else ``default``."""
    if state is None:
        return default
    try:
        user = orjson.loads(state).get("user")
    except (orjson.JSONDecodeError, AttributeError):
        return default
    user_id = user.get("id") if isinstance(user, dict) else None
    return user_id if isinstance(user_id, str) else default


def _supersedes(entry: AwarenessEntry, slot: _Slot | None) -> bool:
    """y-protocols' rule: a higher clock wins; an equal clock may only remove."""
    current = 0 if slot is None else slot.clock
    return current < entry.clock or (
        slot is not None
        and current == entry.clock
        and entry.state is None
        and slot.state is not None
    )


class AwarenessTable:
    """Presence of one document: Yjs client id → (clock, state, owner).

    ``owner`` is the connection that speaks for a client id; ``principal``
    is who that connection is (a user id). A client id belongs to the first
    connection that announces it; another connection of the same principal
    may take it over (a reconnect before the old connection timed out), any
    other connection is refused with :class:`AwarenessClientNotOwned`.
    """

    __slots__ = ("_gone", "_slots", "max_clients_per_owner")

    #: How many departed client ids the table remembers (oldest forgotten first).
    GONE_MEMORY = 4096

    def __init__(self, *, max_clients_per_owner: int = 8) -> None:
        self._slots: dict[int, _Slot] = {}
        #: Client id → (clock of its last state, principal), for clients whose
        #: owner left: another user's late echo of that state must not claim
        #: them (the same user's reconnect may, at the same clock).
        self._gone: dict[int, tuple[int, Hashable]] = {}
        self.max_clients_per_owner = max_clients_per_owner

    def _is_stale_echo(self, entry: AwarenessEntry, principal: Hashable) -> bool:
        """Another user's entry for a departed client, not newer than its last state."""
        gone = self._gone.get(entry.client_id)
        return (
            gone is not None
            and entry.clock <= gone[0]
            and principal != gone[1]
            and entry.client_id not in self._slots
        )

    def _forget(self, client_id: int, slot: _Slot) -> None:
        del self._slots[client_id]
        self._gone[client_id] = (slot.clock, slot.principal)
        if len(self._gone) > self.GONE_MEMORY:
            del self._gone[next(iter(self._gone))]

    def __len__(self) -> int:
        return sum(1 for slot in self._slots.values() if slot.state is not None)

    def apply(
        self, entries: Iterable[AwarenessEntry], *, owner: Hashable, principal: Hashable
    ) -> list[AwarenessEntry]:
        """Apply a connection's entries; return those that changed something.

        Checks ownership of every entry before changing anything, so a
        refused update leaves the table as it was.

        The y-socket.io provider sends back every awareness change it applies,
        including other clients' states the server relayed to it, and on a
        disconnect it removes the others locally and sends those removals
        when it reconnects. Such echoes are ignored, not refused: a removal
        (``null``) of a client id the connection does not own, and a state
        for a client id another user's connection owns that is not newer
        than the known one. A newer state for such an id is refused.
        """
        batch = []
        owned = {cid for cid, slot in self._slots.items() if slot.owner == owner}
        for entry in entries:
            slot = self._slots.get(entry.client_id)
            # Another user's client (here or on another node); the same user's
            # connection may take it over (a reconnect, or a move between nodes).
            foreign = slot is not None and slot.owner != owner and slot.principal != principal
            if entry.state is None and entry.client_id not in owned:
                continue  # an echo of a removal: a removal never claims an id
            if self._is_stale_echo(entry, principal):
                continue  # an echo, arriving late, of a client that has left
            if foreign:
                if not _supersedes(entry, slot):
                    continue  # an echo of a state the server relayed
                raise AwarenessClientNotOwned(
                    f"client id {entry.client_id} belongs to another connection"
                )
            batch.append(entry)
            owned.add(entry.client_id)
        if len(owned) > self.max_clients_per_owner:
            raise AwarenessClientNotOwned(
                f"a connection may speak for at most {self.max_clients_per_owner} client ids"
            )
        changed = []
        for entry in batch:
            slot = self._slots.get(entry.client_id)
            if _supersedes(entry, slot):
                self._slots[entry.client_id] = _Slot(entry.clock, entry.state, owner, principal)
                self._gone.pop(entry.client_id, None)
                changed.append(entry)
            elif slot is not None and slot.owner != owner:
                # A takeover with a stale clock by the same user (a reconnect, or a
                # client that moved here from another node).
                slot.owner, slot.principal, slot.remote = owner, principal, False
        return changed

    def apply_remote(
        self, entries: Iterable[AwarenessEntry], *, node: Hashable, now: float
    ) -> list[AwarenessEntry]:
        """Apply entries another node relayed (already checked there): the
        clock rule only; a client id a local connection owns stays local."""
        changed = []
        for entry in entries:
            slot = self._slots.get(entry.client_id)
            if _supersedes(entry, slot):
                self._gone.pop(entry.client_id, None)
                if slot is not None and not slot.remote:
                    slot.clock, slot.state = entry.clock, entry.state
                else:
                    # The user the other node stamped is who may take it over here.
                    known = slot.principal if slot is not None else node
                    self._slots[entry.client_id] = _Slot(
                        entry.clock,
                        entry.state,
                        node,
                        _stamped_user(entry.state, known),
                        remote=True,
                        updated=now,
                    )
                changed.append(entry)
        return changed

    def sweep_remote(self, *, older_than: float) -> list[AwarenessEntry]:
        """Remove remote clients not renewed since ``older_than`` (their node
        died, or its removal was lost); return the removal entries."""
        removed = []
        for client_id, slot in list(self._slots.items()):
            if slot.remote and slot.updated < older_than:
                self._forget(client_id, slot)
                if slot.state is not None:
                    removed.append(AwarenessEntry(client_id, slot.clock + 1, None))
        return removed

    def remove_owner(self, owner: Hashable) -> list[AwarenessEntry]:
        """Forget every client id of ``owner``; return the removal entries to relay."""
        removed = []
        for client_id, slot in list(self._slots.items()):
            if slot.owner != owner:
                continue
            self._forget(client_id, slot)
            if slot.state is not None:
                removed.append(AwarenessEntry(client_id, slot.clock + 1, None))
        return removed

    def snapshot(self) -> list[AwarenessEntry]:
        """Every present client (the full awareness state sent on connect)."""
        return [
            AwarenessEntry(cid, slot.clock, slot.state)
            for cid, slot in self._slots.items()
            if slot.state is not None
        ]

    def owners(self) -> set[Hashable]:
        return {slot.owner for slot in self._slots.values()}
