"""A structural check of Yjs v1 updates, before any engine sees them.

The Rust core behind pycrdt and y-py (yrs) trusts the lengths and clocks in
an update: a 132-byte forged update can make it try to allocate gigabytes
and abort the whole process (found by fuzzing, see tests/unit/test_updates.py).
So every update a client sends is walked here first, in pure Python, against
the Yjs v1 format (yjs ``src/utils/encoding.js``, ``UpdateDecoderV1``):

* every count and length fits in the bytes that remain;
* every content kind and type reference is one Yjs defines;
* every clock range (struct, GC, skip, delete set) stays below
  ``max_clock`` — a bound no honest client reaches, far above a whiteboard's
  lifetime of edits, and small enough that yrs never sizes a buffer by it;
* the update ends exactly where its delete set ends.

What passes is not guaranteed to integrate cleanly (that is the engine's
job, and its errors are caught as well); what fails never reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crdt.errors import MalformedMessage, MalformedUpdate
from crdt.lib0 import Decoder

__all__ = [
    "DEFAULT_MAX_CLOCK",
    "EMPTY_UPDATE",
    "UpdateSummary",
    "check_state_vector",
    "check_update",
    "decode_state_vector",
]

#: The update that changes nothing: no structs, empty delete set.
EMPTY_UPDATE = b"\x00\x00"

#: Highest clock (per Yjs client id) an update may mention. A Yjs client's
#: clock counts the items (characters, array entries, map writes) it ever
#: created; 2**31 leaves room for two billion of them. yrs 0.28 panics
#: halfway through integrating a struct whose clock passes 2**31.
DEFAULT_MAX_CLOCK = 2**31

_GC = 0
_DELETED = 1
_JSON = 2
_BINARY = 3
_STRING = 4
_EMBED = 5
_FORMAT = 6
_TYPE = 7
_ANY = 8
_DOC = 9
_SKIP = 10

_XML_ELEMENT = 3
_XML_HOOK = 5
_MAX_TYPE_REF = 6

_BIT8 = 0x80  # has origin
_BIT7 = 0x40  # has right origin
_BIT6 = 0x20  # has parent sub (map key)
_BITS5 = 0x1F  # content ref


#: A run of one client's structs: (client, first clock, clock after the last).
Block = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class UpdateSummary:
    """What an update carries, read without applying it."""

    struct_count: int
    #: Yjs client ids that created structs in this update.
    clients: frozenset[int]
    delete_ranges: int
    #: Names of the root types this update inserts into directly.
    roots: frozenset[str]
    #: The runs of structs, in order; a skip in a client's structs starts a new run.
    blocks: tuple[Block, ...] = ()
    #: What the update depends on: client id → the clock that client must
    #: have reached (origins, right origins, parents, deleted ranges). The
    #: update's own blocks may provide it.
    needs: dict[int, int] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return self.struct_count == 0 and self.delete_ranges == 0

    @property
    def deletes_only(self) -> bool:
        """True for an update that only deletes (it cannot grow a document)."""
        return self.struct_count == 0

    def missing(self, state: dict[int, int]) -> dict[int, int]:
        """What the update needs that a document at state vector ``state``
        (client id → next clock) lacks, its own blocks counted: empty when
        the engine integrates all of it, otherwise client id → clock."""
        reached: dict[int, int] = {}
        missing: dict[int, int] = {}
        for client, start, end in self.blocks:
            have = reached.get(client, state.get(client, 0))
            if start > have:  # a gap: this run waits for the clocks before it
                missing[client] = max(missing.get(client, 0), start)
            elif end > have:
                reached[client] = end
        for client, clock in self.needs.items():
            if clock > reached.get(client, state.get(client, 0)):
                missing[client] = max(missing.get(client, 0), clock)
        return missing

    def reached(self) -> dict[int, int]:
        """Client id → the clock a document reaches once all of this update is in."""
        ends: dict[int, int] = dict(self.needs)
        for client, _, end in self.blocks:
            if end > ends.get(client, 0):
                ends[client] = end
        return ends


def check_update(update: bytes, *, max_clock: int = DEFAULT_MAX_CLOCK) -> UpdateSummary:
    """Walk a Yjs v1 update; return its summary or raise :class:`MalformedUpdate`.

    The message of the exception names the fault and byte offset, never the
    content.
    """
    dec = Decoder(update)
    roots: set[str] = set()
    blocks: list[Block] = []
    needs: dict[int, int] = {}
    try:
        struct_count, clients = _read_structs(dec, max_clock, roots, blocks, needs)
        delete_ranges = _read_delete_set(dec, max_clock, needs)
    except MalformedMessage as exc:
        raise MalformedUpdate(f"{exc} (at byte {dec.position})") from None
    if not dec.done():
        raise MalformedUpdate(f"{dec.remaining} trailing bytes after the delete set")
    return UpdateSummary(
        struct_count, frozenset(clients), delete_ranges, frozenset(roots), tuple(blocks), needs
    )


def _check_range(clock: int, length: int, max_clock: int) -> None:
    if length == 0 and clock == 0:
        return
    if clock + length > max_clock:
        raise MalformedMessage(f"clock range ends past the limit of {max_clock}")


def _read_structs(
    dec: Decoder, max_clock: int, roots: set[str], blocks: list[Block], needs: dict[int, int]
) -> tuple[int, set[int]]:
    total = 0
    clients: set[int] = set()
    # Each client block is at least 3 bytes: count, client, clock.
    for _ in range(dec.read_count(3)):
        count = dec.read_count(1)
        client = dec.read_var_uint()
        clock = dec.read_var_uint()
        if count:
            clients.add(client)
        start = clock
        for _ in range(count):
            skip, length = _read_struct(dec, roots, needs)
            if length <= 0:
                raise MalformedMessage("struct of zero length")
            _check_range(clock, length, max_clock)
            if skip:  # the clocks it skips are not in this update
                if clock > start:
                    blocks.append((client, start, clock))
                start = clock + length
            clock += length
        if clock > start:
            blocks.append((client, start, clock))
        total += count
    return total, clients


def _need(needs: dict[int, int], client: int, clock: int) -> None:
    if clock > needs.get(client, 0):
        needs[client] = clock


def _read_struct(dec: Decoder, roots: set[str], needs: dict[int, int]) -> tuple[bool, int]:
    """Read one struct; return whether it is a skip, and its length in clock units."""
    info = dec.read_uint8()
    ref = info & _BITS5
    if ref in (_GC, _SKIP):
        return ref == _SKIP, dec.read_var_uint()
    if ref > _DOC:
        raise MalformedMessage(f"unknown content kind {ref}")
    if info & _BIT8:
        client = dec.read_var_uint()  # origin
        _need(needs, client, dec.read_var_uint() + 1)
    if info & _BIT7:
        client = dec.read_var_uint()  # right origin
        _need(needs, client, dec.read_var_uint() + 1)
    if not info & (_BIT8 | _BIT7):
        parent_is_root = dec.read_var_uint()
        if parent_is_root == 1:
            roots.add(dec.read_var_string())  # root type name
        elif parent_is_root == 0:
            client = dec.read_var_uint()  # parent item
            _need(needs, client, dec.read_var_uint() + 1)
        else:
            raise MalformedMessage("bad parent info")
        if info & _BIT6:
            dec.read_var_string()  # map key
    return False, _read_content(dec, ref)


def _read_content(dec: Decoder, ref: int) -> int:
    if ref == _DELETED:
        return dec.read_var_uint()
    if ref == _JSON:
        count = dec.read_count(1)
        for _ in range(count):
            dec.read_var_string()
        return count
    if ref == _BINARY:
        dec.read_var_bytes()
        return 1
    if ref == _STRING:
        text = dec.read_var_string()
        # Yjs counts strings in UTF-16 code units.
        return len(text.encode("utf-16-le")) // 2
    if ref == _EMBED:
        dec.read_var_string()
        return 1
    if ref == _FORMAT:
        dec.read_var_string()
        dec.read_var_string()
        return 1
    if ref == _TYPE:
        type_ref = dec.read_var_uint()
        if type_ref > _MAX_TYPE_REF:
            raise MalformedMessage(f"unknown type reference {type_ref}")
        if type_ref in (_XML_ELEMENT, _XML_HOOK):
            dec.read_var_string()
        return 1
    if ref == _ANY:
        count = dec.read_count(1)
        for _ in range(count):
            dec.read_any()
        return count
    # _DOC
    dec.read_var_string()  # guid
    dec.read_any()  # options
    return 1


def _read_delete_set(dec: Decoder, max_clock: int, needs: dict[int, int]) -> int:
    ranges = 0
    for _ in range(dec.read_count(2)):
        client = dec.read_var_uint()
        count = dec.read_count(2)
        for _ in range(count):
            clock = dec.read_var_uint()
            length = dec.read_var_uint()
            _check_range(clock, length, max_clock)
            _need(needs, client, clock + length)
        ranges += count
    return ranges


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """Client id → next clock, from a state vector an engine encoded."""
    dec = Decoder(state_vector)
    try:
        return {dec.read_var_uint(): dec.read_var_uint() for _ in range(dec.read_count(2))}
    except MalformedMessage as exc:
        raise MalformedUpdate(f"state vector: {exc}") from None


def check_state_vector(state_vector: bytes, *, max_clock: int = DEFAULT_MAX_CLOCK) -> int:
    """Walk a Yjs v1 state vector (count, then client and clock per entry);
    return its entry count or raise :class:`MalformedUpdate`.

    y-py aborts the process on a vector that declares more entries than it
    holds (it sizes a map by the count), so no engine sees one unchecked.
    """
    dec = Decoder(state_vector)
    try:
        count = dec.read_count(2)
        for _ in range(count):
            dec.read_var_uint()  # client
            if dec.read_var_uint() > max_clock:
                raise MalformedMessage(f"clock past the limit of {max_clock}")
    except MalformedMessage as exc:
        raise MalformedUpdate(f"state vector: {exc} (at byte {dec.position})") from None
    if not dec.done():
        raise MalformedUpdate(f"state vector: {dec.remaining} trailing bytes")
    return count
