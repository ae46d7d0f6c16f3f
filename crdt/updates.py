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

:func:`split_update` makes the same check and cuts a large update into
parts of a bounded number of structs, each a valid update of its own, so
that a large one can be applied a part at a time (protocol.md §8.1).
"""

from __future__ import annotations

import heapq
from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from crdt.errors import MalformedMessage, MalformedUpdate
from crdt.lib0 import Decoder, Encoder
from crdt.types import Update
from crdt.update_walk import walk_update

__all__ = [
    "DEFAULT_MAX_CLOCK",
    "EMPTY_UPDATE",
    "UpdatePart",
    "UpdateSummary",
    "check_state_vector",
    "check_update",
    "decode_state_vector",
    "read_content",
    "split_update",
    "whole_summary",
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
    #: The clock units the delete set covers (None: not counted). Each item
    #: it deletes is at least one, so it bounds how many items, map entries
    #: among them, the update deletes.
    deleted: int | None = None

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
    content. (The walk is crdt.update_walk's, in one pass: it runs on every
    update a client sends.)
    """
    if type(update) is not bytes:
        update = bytes(update)
    roots: set[str] = set()
    blocks: list[Block] = []
    needs: dict[int, int] = {}
    struct_count, clients, delete_ranges, deleted = walk_update(
        update, max_clock, roots, blocks, needs
    )
    return UpdateSummary(
        struct_count,
        frozenset(clients),
        delete_ranges,
        frozenset(roots),
        tuple(blocks),
        needs,
        deleted,
    )


@dataclass(frozen=True, slots=True)
class UpdatePart:
    """One part of an update cut by :func:`split_update`: a Yjs v1 update of
    its own, and its summary (what :func:`check_update` says of it)."""

    update: Update
    summary: UpdateSummary


def split_update(
    update: bytes, *, max_structs: int, max_bytes: int, max_clock: int = DEFAULT_MAX_CLOCK
) -> list[UpdatePart]:
    """Check a Yjs v1 update as :func:`check_update` does, and cut it into
    parts of at most ``max_structs`` structs and about ``max_bytes`` bytes (a
    part ends at the first struct that reaches ``max_bytes``; one struct
    larger than that is a part of its own). Applied in order, the parts give
    a document the state the whole update gives it.

    A struct's encoding does not depend on where it stands in its client's
    block, except for its clock, which counts on from the block's first
    clock. So a block may be cut before any struct: a later part carries a
    block of the same client that starts at the clock of the cut. Parts
    follow the order in which the structs were made: a struct goes into a
    part only once the structs of other clients it refers to (its origins
    and parent) are in that part or an earlier one, so no part leaves the
    engine holding structs that wait for a later part, to be integrated all
    at once when it comes. (Where an update refers to structs it does not
    hold in that order, which no Yjs client makes, its structs are taken as
    they come.) The delete set goes with the last part; the others have an
    empty one. Skips at either end of a part's block are left out (they
    only move the clock).

    Returns at least one part: ``update`` itself when it is within both
    bounds. Raises :class:`MalformedUpdate` (the message
    names the fault and byte offset, never the content).
    """
    if max_structs < 1 or max_bytes < 1:
        raise ValueError("a part must have room for a struct")
    if len(update) <= max_bytes:
        summary = check_update(update, max_clock=max_clock)
        if summary.struct_count <= max_structs:
            return [UpdatePart(update, summary)]
    dec = Decoder(update)
    delete_needs: dict[int, int] = {}
    try:
        blocks, root_names = _record_blocks(dec, max_clock)
        delete_set = update[dec.position :]
        delete_ranges, deleted = _read_delete_set(dec, max_clock, delete_needs)
    except MalformedMessage as exc:
        check_update(update, max_clock=max_clock)  # refuses it, in its own words
        raise MalformedUpdate(f"{exc} (at byte {dec.position})") from None
    if not dec.done():
        check_update(update, max_clock=max_clock)
        raise MalformedUpdate(f"{dec.remaining} trailing bytes after the delete set")
    plan = _plan_parts(blocks, max_structs=max_structs, max_bytes=max_bytes)
    parts = [_build_part(update, blocks, root_names, ranges) for ranges in plan[:-1]]
    last = _build_part(
        update, blocks, root_names, plan[-1], delete_set, delete_ranges, delete_needs, deleted
    )
    return [*parts, last]


def whole_summary(parts: Sequence[UpdatePart]) -> UpdateSummary:
    """The summary of the update ``parts`` were cut from: what it carries,
    depends on and reaches (skips left out at the cuts are not counted)."""
    summaries = [part.summary for part in parts]
    needs: dict[int, int] = {}
    for summary in summaries:
        for client, clock in summary.needs.items():
            _need(needs, client, clock)
    counted = [s.deleted for s in summaries if s.deleted is not None]
    return UpdateSummary(
        sum(s.struct_count for s in summaries),
        frozenset().union(*(s.clients for s in summaries)),
        sum(s.delete_ranges for s in summaries),
        frozenset().union(*(s.roots for s in summaries)),
        tuple(block for s in summaries for block in s.blocks),
        needs,
        sum(counted) if len(counted) == len(summaries) else None,
    )


#: The delete set of every part but the last: no clients.
_EMPTY_DELETE_SET = b"\x00"

#: A part's share of one client block: (block index, first struct, struct after the last).
_Range = tuple[int, int, int]


class _Block:
    """One client's block of structs, recorded for :func:`split_update`:
    struct ``i`` spans clocks ``clocks[i]`` to ``clocks[i + 1]`` and bytes
    ``offsets[i]`` to ``offsets[i + 1]`` of the update."""

    __slots__ = ("client", "clocks", "deps", "offsets", "own_needs", "roots", "skips")

    def __init__(self, client: int, clock: int, offset: int) -> None:
        self.client = client
        self.clocks = array("Q", [clock])
        self.offsets = array("Q", [offset])
        self.skips = bytearray()
        #: Per struct, the clock it needs of its own client (0: none).
        self.own_needs = array("Q")
        #: Per struct, the index of the root type it inserts into (-1: none).
        self.roots = array("i")
        #: Struct index → what it needs of other clients ((client, clock), ...).
        self.deps: dict[int, tuple[tuple[int, int], ...]] = {}

    def __len__(self) -> int:
        return len(self.skips)


def _record_blocks(dec: Decoder, max_clock: int) -> tuple[list[_Block], list[str]]:
    """Walk the update's structs as :func:`check_update` does, recording
    each one's place, clocks and dependencies; return the blocks and the
    root names their structs' root indexes refer to."""
    blocks: list[_Block] = []
    root_names: dict[str, int] = {}
    roots: set[str] = set()
    needs: dict[int, int] = {}
    for _ in range(dec.read_count(3)):
        count = dec.read_count(1)
        client = dec.read_var_uint()
        clock = dec.read_var_uint()
        block = _Block(client, clock, dec.position)
        for index in range(count):
            skip, length = _read_struct(dec, roots, needs)
            if length <= 0:
                raise MalformedMessage("struct of zero length")
            _check_range(clock, length, max_clock)
            clock += length
            block.clocks.append(clock)
            block.offsets.append(dec.position)
            block.skips.append(skip)
            block.own_needs.append(needs.pop(client, 0))
            if needs:
                block.deps[index] = tuple(needs.items())
                needs.clear()
            block.roots.append(root_names.setdefault(roots.pop(), len(root_names)) if roots else -1)
        blocks.append(block)
    return blocks, list(root_names)


def _plan_parts(blocks: list[_Block], *, max_structs: int, max_bytes: int) -> list[list[_Range]]:
    """Which structs go into which part (see :func:`split_update`).

    Each block is taken struct by struct, in order, until a struct refers
    to a struct of another client that the update holds but no part has
    taken yet; the block then waits until that client's block gets there.
    Parts are filled in that order, so the work is linear in the structs
    (and their dependencies), whatever the number of clients.
    """
    # What the update holds of each client: a dependency inside it waits.
    spans: dict[int, tuple[int, int]] = {}
    for block in blocks:
        first, end = block.clocks[0], block.clocks[-1]
        low, high = spans.get(block.client, (first, end))
        spans[block.client] = (min(low, first), max(high, end))
    reached = {client: low for client, (low, _) in spans.items()}
    taken = [0] * len(blocks)
    left = sum(len(block) for block in blocks)
    ready = deque(range(len(blocks)))
    queued = [True] * len(blocks)
    #: Client → (the clock it must reach, a block waiting for it), a heap.
    waiting: dict[int, list[tuple[int, int]]] = {}
    plan: list[list[_Range]] = []
    ranges: dict[int, list[int]] = {}
    structs = size = 0

    def blocker(block: _Block, index: int) -> tuple[int, int] | None:
        for client, clock in block.deps.get(index, ()):
            span = spans.get(client)
            if span is not None and span[0] < clock <= span[1] and reached[client] < clock:
                return client, clock
        return None

    def enqueue(b: int, *, first: bool = False) -> None:
        if queued[b]:
            return
        queued[b] = True
        if first:
            ready.appendleft(b)
        else:
            ready.append(b)

    def take(b: int) -> None:
        nonlocal structs, size, left
        block, index = blocks[b], taken[b]
        taken[b] = index + 1
        ranges.setdefault(b, [index, index])[1] = index + 1
        structs += 1
        size += block.offsets[index + 1] - block.offsets[index]
        left -= 1
        client, clock = block.client, block.clocks[index + 1]
        if clock > reached[client]:
            reached[client] = clock
            heap = waiting.get(client)
            while heap and heap[0][0] <= clock:
                enqueue(heapq.heappop(heap)[1])

    while left:
        if structs >= max_structs or size >= max_bytes:
            plan.append([(b, first, end) for b, (first, end) in sorted(ranges.items())])
            ranges, structs, size = {}, 0, 0
        if not ready:
            # Nothing left is ready: the update refers to structs it holds
            # only later (no Yjs client makes one). Take the next as it comes.
            b = next(b for b, block in enumerate(blocks) if taken[b] < len(block))
            take(b)
            enqueue(b)
            continue
        b = ready.popleft()
        queued[b] = False
        block = blocks[b]
        while taken[b] < len(block):
            if structs >= max_structs or size >= max_bytes:
                enqueue(b, first=True)  # it goes on in the next part
                break
            dep = blocker(block, taken[b])
            if dep is not None:
                client, clock = dep
                heapq.heappush(waiting.setdefault(client, []), (clock, b))
                break
            take(b)
    if ranges or not plan:
        plan.append([(b, first, end) for b, (first, end) in sorted(ranges.items())])
    return plan


def _build_part(
    update: bytes,
    blocks: list[_Block],
    root_names: list[str],
    ranges: list[_Range],
    delete_set: bytes = _EMPTY_DELETE_SET,
    delete_ranges: int = 0,
    delete_needs: dict[int, int] | None = None,
    deleted: int = 0,
) -> UpdatePart:
    """Encode one part: a block per range (skips at its ends left out),
    then ``delete_set``; and its summary, as check_update would make it."""
    segments = bytearray()
    written = 0
    struct_count = 0
    clients: set[int] = set()
    roots: set[str] = set()
    runs: list[Block] = []
    needs = dict(delete_needs or {})
    for b, first, end in ranges:
        block = blocks[b]
        skips = block.skips
        while first < end and skips[first]:
            first += 1
        while end > first and skips[end - 1]:
            end -= 1
        if first == end:
            continue
        client, clocks = block.client, block.clocks
        segments += _var_uint(end - first) + _var_uint(client) + _var_uint(clocks[first])
        segments += update[block.offsets[first] : block.offsets[end]]
        written += 1
        struct_count += end - first
        clients.add(client)
        run = first
        for index in range(first, end):
            if skips[index]:
                if index > run:
                    runs.append((client, clocks[run], clocks[index]))
                run = index + 1
            for dep_client, clock in block.deps.get(index, ()):
                _need(needs, dep_client, clock)
        runs.append((client, clocks[run], clocks[end]))
        own = max(block.own_needs[first:end])
        if own:
            _need(needs, client, own)
        roots.update(root_names[i] for i in set(block.roots[first:end]) if i >= 0)
    encoded = _var_uint(written) + bytes(segments) + delete_set
    summary = UpdateSummary(
        struct_count,
        frozenset(clients),
        delete_ranges,
        frozenset(roots),
        tuple(runs),
        needs,
        deleted,
    )
    return UpdatePart(encoded, summary)


def _var_uint(value: int) -> bytes:
    enc = Encoder()
    enc.write_var_uint(value)
    return enc.to_bytes()


def _check_range(clock: int, length: int, max_clock: int) -> None:
    if length == 0 and clock == 0:
        return
    if clock + length > max_clock:
        raise MalformedMessage(f"clock range ends past the limit of {max_clock}")


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
    return False, read_content(dec, ref)


def read_content(dec: Decoder, ref: int) -> int:
    """Read an item's content of kind ``ref``; return its length in clock
    units (crdt.shape_index reads structs with it too)."""
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


def _read_delete_set(dec: Decoder, max_clock: int, needs: dict[int, int]) -> tuple[int, int]:
    """The delete set's range count and the clock units its ranges cover."""
    ranges = 0
    covered = 0
    for _ in range(dec.read_count(2)):
        client = dec.read_var_uint()
        count = dec.read_count(2)
        for _ in range(count):
            clock = dec.read_var_uint()
            length = dec.read_var_uint()
            _check_range(clock, length, max_clock)
            _need(needs, client, clock + length)
            covered += length
        ranges += count
    return ranges, covered


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
