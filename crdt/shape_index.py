"""Which board shapes a Yjs update touches, read without applying it
(protocol.md §5.1, "Locked shapes").

A board is the root map ``shapes``: shape id → the shape's ``Y.Map``, whose
fields may hold nested types (the ``Y.Text`` of a note). Every Yjs item has
an id (client, clock), and an update places each new item by reference:

* an item written straight into a root type names the root and, in a map,
  its key: an item in ``shapes`` under key ``k`` *is* shape ``k`` (its
  creation, or its replacement);
* an item inside a nested type names the item that holds the type (its
  parent), and one with a left or right neighbour names that neighbour
  (its origin) instead: either way it lies in the same shape as the item
  it names.

So following those references from any item ends at a root entry, and the
key there is the item's shape. :class:`ShapeIndex` keeps, for every item of
a document, the reference its struct was written with (one entry per struct:
a run of a client's clocks), resolves it on demand (memoized), and keeps the
document's delete set. :meth:`ShapeIndex.touched` then answers for an
update: the shapes of the items it adds (those the document does not have
yet), and the shapes of the items its delete set removes (those not already
deleted: a sync answer carries the whole delete set of the sender). An item
it cannot place (it refers to an item the document lacks: such an update
would wait in the engine, and a pending deletion would strike whatever
arrives later) makes the answer None: "cannot tell", which a lock check
refuses.

The update must have passed :func:`crdt.updates.check_update`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from crdt.lib0 import Decoder
from crdt.updates import _BIT6, _BIT7, _BIT8, _BITS5, _GC, _SKIP, read_content

__all__ = ["ShapeIndex", "read_structure"]


@dataclass(frozen=True, slots=True)
class RootRef:
    """A struct written straight into root type ``name`` (under ``key`` in a map)."""

    name: str
    key: str | None


@dataclass(frozen=True, slots=True)
class ItemRef:
    """A struct placed by another item: its parent, or its origin."""

    client: int
    clock: int


#: A struct's reference; None for collected content (a GC struct).
Link = RootRef | ItemRef | None


@dataclass(frozen=True, slots=True)
class Structure:
    """An update's structs (client, first clock, length, reference; skips
    left out) and its delete set (client, first clock, length)."""

    structs: tuple[tuple[int, int, int, Link], ...]
    deletes: tuple[tuple[int, int, int], ...]


def read_structure(update: bytes) -> Structure:
    """The structs and deletions of a checked Yjs v1 update."""
    dec = Decoder(update)
    structs: list[tuple[int, int, int, Link]] = []
    for _ in range(dec.read_count(3)):
        count = dec.read_count(1)
        client = dec.read_var_uint()
        clock = dec.read_var_uint()
        for _ in range(count):
            info = dec.read_uint8()
            ref = info & _BITS5
            if ref in (_GC, _SKIP):
                length = dec.read_var_uint()
                if ref == _GC:
                    structs.append((client, clock, length, None))
                clock += length
                continue
            link = _read_link(dec, info)
            length = read_content(dec, ref)
            structs.append((client, clock, length, link))
            clock += length
    deletes: list[tuple[int, int, int]] = []
    for _ in range(dec.read_count(2)):
        client = dec.read_var_uint()
        for _ in range(dec.read_count(2)):
            clock = dec.read_var_uint()
            deletes.append((client, clock, dec.read_var_uint()))
    return Structure(tuple(structs), tuple(deletes))


def _read_link(dec: Decoder, info: int) -> Link:
    """Yjs ``readItem``'s references: origin, right origin, and only when
    neither is there the parent (a root name, or an item) and its key."""
    origin = ItemRef(dec.read_var_uint(), dec.read_var_uint()) if info & _BIT8 else None
    right = ItemRef(dec.read_var_uint(), dec.read_var_uint()) if info & _BIT7 else None
    if origin is not None or right is not None:
        return origin or right
    if dec.read_var_uint() == 1:
        root = dec.read_var_string()
        return RootRef(root, dec.read_var_string() if info & _BIT6 else None)
    parent = ItemRef(dec.read_var_uint(), dec.read_var_uint())
    if info & _BIT6:
        dec.read_var_string()  # its key in the parent: the same shape either way
    return parent


class _Unknown:
    """The shape of an item that refers to one the document lacks."""


_UNKNOWN = _Unknown()
_UNRESOLVED = object()


class _Run:
    """A struct: clocks [start, end) of one client, written with ``link``."""

    __slots__ = ("end", "link", "shape", "start")

    def __init__(self, start: int, end: int, link: Link) -> None:
        self.start = start
        self.end = end
        self.link = link
        #: The resolved shape id (None: not in a shape), once known.
        self.shape: object = _UNRESOLVED


class _Runs:
    """Disjoint runs per client, sorted by start."""

    __slots__ = ("_runs", "_starts")

    def __init__(self) -> None:
        self._starts: dict[int, list[int]] = {}
        self._runs: dict[int, list[_Run]] = {}

    def __len__(self) -> int:
        return sum(len(runs) for runs in self._runs.values())

    def find(self, client: int, clock: int) -> _Run | None:
        starts = self._starts.get(client)
        if not starts:
            return None
        i = bisect_right(starts, clock) - 1
        if i < 0:
            return None
        run = self._runs[client][i]
        return run if clock < run.end else None

    def covering(self, client: int, start: int, end: int) -> Iterator[_Run]:
        """The runs overlapping [start, end), in order."""
        starts = self._starts.get(client)
        if not starts:
            return
        runs = self._runs[client]
        i = max(bisect_right(starts, start) - 1, 0)
        while i < len(runs) and runs[i].start < end:
            if runs[i].end > start:
                yield runs[i]
            i += 1

    def gaps(self, client: int, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) no run covers."""
        found = []
        at = start
        for run in self.covering(client, start, end):
            if run.start > at:
                found.append((at, run.start))
            at = max(at, run.end)
        if at < end:
            found.append((at, end))
        return found

    def add(self, client: int, start: int, end: int, link: Link) -> list[_Run]:
        """Record the uncovered parts of [start, end); return the new runs."""
        added = []
        for gap_start, gap_end in self.gaps(client, start, end):
            run = _Run(gap_start, gap_end, link)
            starts = self._starts.setdefault(client, [])
            i = bisect_right(starts, gap_start)
            starts.insert(i, gap_start)
            self._runs.setdefault(client, []).insert(i, run)
            added.append(run)
        return added


class _ClockSet:
    """Merged [start, end) ranges per client: a document's delete set."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}

    def add(self, client: int, start: int, end: int) -> None:
        starts = self._starts.setdefault(client, [])
        ends = self._ends.setdefault(client, [])
        first = bisect_left(ends, start)  # the first range reaching ``start``
        last = bisect_right(starts, end)  # past the last range starting by ``end``
        if first < last:
            start = min(start, starts[first])
            end = max(end, ends[last - 1])
        starts[first:last] = [start]
        ends[first:last] = [end]

    def missing(self, client: int, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) not in the set."""
        starts = self._starts.get(client, [])
        ends = self._ends.get(client, [])
        found = []
        at = start
        i = bisect_right(ends, start)  # the first range ending after ``start``
        while i < len(starts) and starts[i] < end:
            if starts[i] > at:
                found.append((at, starts[i]))
            at = max(at, ends[i])
            i += 1
        if at < end:
            found.append((at, end))
        return found


class ShapeIndex:
    """Item ids → shapes of one board document (see the module docstring).

    Built from the document's full state (:meth:`from_updates`), then fed
    every update the document takes (:meth:`add`)."""

    __slots__ = ("_deleted", "_runs", "added", "root")

    def __init__(self, root: str) -> None:
        self.root = root
        self._runs = _Runs()
        self._deleted = _ClockSet()
        #: Structs recorded since built (a caller rebuilds a grown index).
        self.added = 0

    @classmethod
    def from_updates(cls, root: str, updates: Iterable[bytes]) -> ShapeIndex:
        index = cls(root)
        for update in updates:
            index.add(update)
        index.added = 0
        return index

    def __len__(self) -> int:
        return len(self._runs)

    def add(self, update: bytes) -> None:
        """Record an update the document took."""
        structure = read_structure(update)
        for client, clock, length, link in structure.structs:
            self._runs.add(client, clock, clock + length, link)
        for client, clock, length in structure.deletes:
            self._deleted.add(client, clock, clock + length)
        self.added += len(structure.structs)

    def touched(self, updates: Sequence[bytes]) -> set[str] | None:
        """The shapes ``updates`` (applied in order) would add to, change or
        delete from; None if an item cannot be placed."""
        overlay = _Runs()
        structures = [read_structure(update) for update in updates]
        new: list[_Run] = []
        for structure in structures:
            for client, clock, length, link in structure.structs:
                for start, end in list(self._runs.gaps(client, clock, clock + length)):
                    new.extend(overlay.add(client, start, end, link))
        shapes: set[str] = set()
        for run in new:
            if not self._collect(run, overlay, shapes):
                return None
        for structure in structures:
            for client, clock, length in structure.deletes:
                for start, end in self._deleted.missing(client, clock, clock + length):
                    if not self._collect_range(client, start, end, overlay, shapes):
                        return None
        return shapes

    def _collect_range(
        self, client: int, start: int, end: int, overlay: _Runs, shapes: set[str]
    ) -> bool:
        """Add the shapes of the items in [start, end); False if any is
        unknown (a deletion of an item neither the document nor the update has)."""
        runs = list(self._runs.covering(client, start, end))
        for gap_start, gap_end in self._runs.gaps(client, start, end):
            if overlay.gaps(client, gap_start, gap_end):
                return False
            runs.extend(overlay.covering(client, gap_start, gap_end))
        return all(self._collect(run, overlay, shapes) for run in runs)

    def _collect(self, run: _Run, overlay: _Runs, shapes: set[str]) -> bool:
        shape = self._resolve(run, overlay)
        if shape is _UNKNOWN:
            return False
        if isinstance(shape, str):
            shapes.add(shape)
        return True

    def _resolve(self, run: _Run, overlay: _Runs) -> object:
        """The shape id of ``run`` (None: not in a shape), or _UNKNOWN.
        Follows references iteratively (a note's text is a long chain of
        origins), memoizing the result on every run of the path that lies
        in the document (not on the update being checked)."""
        path: list[_Run] = []
        seen: set[int] = set()
        current = run
        in_base = True
        shape: object
        while True:
            if current.shape is not _UNRESOLVED:
                shape = current.shape
                break
            path.append(current)
            link = current.link
            if isinstance(link, RootRef):
                shape = link.key if link.name == self.root else None
                break
            if link is None:  # collected content
                shape = None
                break
            seen.add(id(current))
            found = self._runs.find(link.client, link.clock)
            if found is None:
                found = overlay.find(link.client, link.clock)
                in_base = False
            if found is None or id(found) in seen:
                return _UNKNOWN  # refers to an item the document lacks, or a loop
            current = found
        if in_base:
            for step in path:
                step.shape = shape
        return shape
