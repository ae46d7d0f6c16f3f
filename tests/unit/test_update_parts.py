"""crdt.updates.split_update: a large update cut into parts at struct boundaries.

The property that matters: applying the parts in order gives a document
exactly the state the whole update gives it. Hypothesis builds edit
histories of several pycrdt peers (maps, arrays, text with formatting,
types nested in each other, deletions, peers syncing now and then), takes
an update from them (a full state, a diff, or a merge of some of a peer's
updates, which has gaps: skips), cuts it with small bounds and applies it
whole and in parts, to an empty document and to one that holds part of it.

Besides: each part's summary is what check_update says of it, no part is
over its bounds, no part waits for a later one (the parts follow the order
the structs were made in), and a malformed update is refused as
check_update refuses it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Snapshot, Text, merge_updates

from crdt.errors import MalformedUpdate
from crdt.updates import (
    UpdatePart,
    check_update,
    decode_state_vector,
    split_update,
    whole_summary,
)
from tests.unit.test_updates import JS_UPDATE, _map_string, _update

PEERS = 3


# -- edit histories -------------------------------------------------------------

#: One edit: (peer, what, a key or position, a value).
Edit = tuple[int, str, int, Any]

edits = st.lists(
    st.tuples(
        st.sampled_from([0, 0, 1, 2]),  # the first peer's updates are merged below
        st.sampled_from(
            [
                "map_set",
                "map_nest",
                "map_del",
                "nested",
                "array_insert",
                "array_delete",
                "text_insert",
                "text_delete",
                "text_format",
                "sync",
            ]
        ),
        st.integers(0, 7),
        # Text positions count in the engine's units: ASCII keeps them plain.
        st.one_of(st.integers(-5, 5), st.text(alphabet="abcxyz 😀é", max_size=6)),
    ),
    min_size=20,
    max_size=120,
)


class History:
    """Peers editing the same roots (``m``, ``a``, ``t``), each update they
    make recorded per peer."""

    def __init__(self) -> None:
        self.peers = [Doc(client_id=100 + i) for i in range(PEERS)]
        self.updates: list[list[bytes]] = [[] for _ in range(PEERS)]
        for i, doc in enumerate(self.peers):
            doc.observe(lambda event, i=i: self.updates[i].append(bytes(event.update)))

    def run(self, edit: Edit) -> None:
        who, what, where, value = edit
        doc = self.peers[who]
        if what == "sync":
            other = self.peers[(who + 1 + where) % PEERS]
            other.apply_update(doc.get_update(other.get_state()))
            return
        m, a, t = doc.get("m", type=Map), doc.get("a", type=Array), doc.get("t", type=Text)
        key = f"k{where % 4}"
        with doc.transaction():
            if what == "map_set":
                m[key] = value
            elif what == "map_nest":
                kind = where % 3
                if kind == 0:
                    m[key] = Map({"x": value, "y": [1, 2]})
                elif kind == 1:
                    m[key] = Array([value, value])
                else:
                    m[key] = Text(_ascii(value))
            elif what == "map_del":
                if key in m:
                    del m[key]
            elif what == "nested":
                self._nested(m, key, value)
            elif what == "array_insert":
                a.insert(where % (len(a) + 1), value)
            elif what == "array_delete":
                if len(a):
                    start = where % len(a)
                    del a[start : min(len(a), start + 1 + where % 3)]
            elif what == "text_insert":
                t.insert(where % (len(t) + 1), _ascii(value))
            elif what == "text_delete":
                if len(t):
                    start = where % len(t)
                    del t[start : min(len(t), start + 1 + where % 3)]
            elif len(t):  # text_format
                start = where % len(t)
                t.format(start, min(len(t), start + 2), {"bold": where % 2 == 0})

    @staticmethod
    def _nested(m: Map, key: str, value: Any) -> None:
        if key not in m:
            return
        inner = m[key]
        if isinstance(inner, Map):
            inner["x"] = value
        elif isinstance(inner, Array):
            inner.append(value)
        elif isinstance(inner, Text):
            inner.insert(len(inner), _ascii(value))


def _ascii(value: Any) -> str:
    return str(value).encode("ascii", "ignore").decode() or "z"


def contents(doc: Doc) -> dict[str, Any]:
    """What a document shows: its roots, the text's formatting included."""
    return {
        "m": doc.get("m", type=Map).to_py(),
        "a": doc.get("a", type=Array).to_py(),
        "t": doc.get("t", type=Text).diff(),
    }


def applied(*updates: bytes, base: bytes | None = None) -> Doc:
    doc: Doc = Doc(client_id=999)
    if base is not None:
        doc.apply_update(base)
    for update in updates:
        doc.apply_update(update)
    return doc


def holds_all(doc: Doc, reached: dict[int, int]) -> bool:
    """Whether ``doc`` reaches every clock in ``reached`` (nothing waits)."""
    state = decode_state_vector(bytes(doc.get_state()))
    return all(state.get(client, 0) >= clock for client, clock in reached.items())


def assert_same_state(whole: Doc, parts: Doc) -> None:
    """The same structs (state vector), the same of them deleted (a
    snapshot: delete set and state vector, ranges merged), the same content.
    Not the same encoding: the engine keeps structs that came in different
    updates apart where it merges those that came in one."""
    assert parts.get_state() == whole.get_state()
    assert Snapshot.from_doc(parts).encode() == Snapshot.from_doc(whole).encode()
    assert contents(parts) == contents(whole)


def assert_well_cut(update: bytes, parts: list[UpdatePart], max_structs: int, max_bytes: int):
    """Each part is a valid update whose summary is check_update's, within
    its bounds (bytes: one struct may take a part past max_bytes)."""
    for part in parts:
        assert check_update(part.update) == part.summary
        assert part.summary.struct_count <= max_structs
    if len(parts) == 1 and len(update) <= max_bytes:
        assert parts[0].update is update
    whole, joined = check_update(update), whole_summary(parts)
    assert joined.reached() == whole.reached()
    assert joined.roots == whole.roots
    assert joined.delete_ranges == whole.delete_ranges
    assert joined.clients <= whole.clients


# -- the property ---------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=edits,
    which=st.sampled_from(["full", "diff", "merged"]),
    onto=st.sampled_from(["empty", "peer"]),
    max_structs=st.integers(1, 5),
    max_bytes=st.sampled_from([1, 40, 200, 1 << 20]),
    data=st.data(),
)
def test_applying_the_parts_in_order_gives_the_state_of_the_whole(
    history: list[Edit], which: str, onto: str, max_structs: int, max_bytes: int, data: Any
) -> None:
    peers = History()
    for edit in history:
        peers.run(edit)
    first, second = peers.peers[0], peers.peers[1]
    if which == "full":
        update = bytes(first.get_update())
    elif which == "diff":
        update = bytes(first.get_update(second.get_state()))
    else:  # some of the first peer's own updates merged: gaps become skips
        own = peers.updates[0]
        keep = data.draw(st.lists(st.booleans(), min_size=len(own), max_size=len(own)))
        chosen = [u for u, kept in zip(own, keep, strict=True) if kept]
        update = bytes(merge_updates(*chosen)) if chosen else bytes(first.get_update(b"\x00"))
    base = bytes(second.get_update()) if onto == "peer" else None

    parts = split_update(update, max_structs=max_structs, max_bytes=max_bytes)
    summary = check_update(update)
    event("several parts" if len(parts) > 1 else "one part")
    event("skips" if len(summary.blocks) > len(summary.clients) else "no skips")
    event("deletions" if summary.delete_ranges else "no deletions")

    assert_well_cut(update, parts, max_structs, max_bytes)
    whole = applied(update, base=base)
    cut = applied(*(p.update for p in parts), base=base)
    if holds_all(whole, summary.reached()):
        assert_same_state(whole, cut)
    else:
        # The update refers to what the document lacks, so the engine keeps
        # structs back until it comes: from the whole update, every later
        # struct of a client once one of them waits; from the parts, only
        # the parts that wait. Once it comes, they agree.
        event("waits for the rest")
        rest = [bytes(peer.get_update()) for peer in peers.peers]
        assert_same_state(
            applied(*rest, base=whole.get_update()), applied(*rest, base=cut.get_update())
        )


@settings(max_examples=80, deadline=None)
@given(history=edits, max_structs=st.integers(1, 8))
def test_no_part_waits_for_a_later_one(history: list[Edit], max_structs: int) -> None:
    """The parts of a whole document's state, applied to an empty document:
    after each part, the engine holds every struct it was given (its state
    vector reaches what the parts so far reach), so none was left pending,
    to be integrated all at once by a later part."""
    peers = History()
    for edit in history:
        peers.run(edit)
    update = bytes(peers.peers[0].get_update())
    doc: Doc = Doc()
    reached: dict[int, int] = {}
    for part in split_update(update, max_structs=max_structs, max_bytes=1 << 20):
        doc.apply_update(part.update)
        for client, clock in part.summary.reached().items():
            reached[client] = max(reached.get(client, 0), clock)
        state = decode_state_vector(bytes(doc.get_state()))
        assert {c: state.get(c, 0) for c in reached} == reached


# -- cases, one by one ----------------------------------------------------------


def board(shapes: int, *, clients: int = 1) -> bytes:
    """A board of ``shapes`` shapes drawn by ``clients`` peers who move each
    other's shapes (dependencies across clients)."""
    docs = [Doc(client_id=10 + i) for i in range(clients)]
    for i in range(shapes):
        doc = docs[i % clients]
        doc.get("shapes", type=Map)[f"s{i}"] = Map({"type": "pen", "points": Array([[i, i]])})
        after = docs[(i + 1) % clients]
        after.apply_update(doc.get_update(after.get_state()))
        moved = after.get("shapes", type=Map)[f"s{i}"]
        moved["x"] = float(i)
        moved["points"].append([i + 1, i])
        doc.apply_update(after.get_update(doc.get_state()))
    return bytes(docs[0].get_update())


def test_an_update_within_both_bounds_is_its_own_part():
    update = board(5)
    (part,) = split_update(update, max_structs=10_000, max_bytes=len(update))
    assert part.update is update and part.summary == check_update(update)


def test_parts_stay_within_the_struct_bound_and_about_the_byte_bound():
    update = board(60, clients=3)
    total = check_update(update).struct_count
    parts = split_update(update, max_structs=25, max_bytes=1 << 20)
    assert len(parts) == -(-total // 25)
    assert [p.summary.struct_count for p in parts[:-1]] == [25] * (len(parts) - 1)
    by_bytes = split_update(update, max_structs=10_000, max_bytes=500)
    assert len(by_bytes) > 1
    assert all(len(p.update) < 500 + 200 for p in by_bytes)  # one struct past it, at most
    for cut in (parts, by_bytes):
        assert_same_state(applied(update), applied(*(p.update for p in cut)))


def test_the_delete_set_goes_with_the_last_part():
    doc: Doc = Doc(client_id=5)
    arr = doc.get("a", type=Array)
    arr.extend(list(range(10)))
    for i in range(10):
        arr.append(i)  # ten structs
    del arr[0:5]
    del arr[8:12]
    update = bytes(doc.get_update())
    parts = split_update(update, max_structs=3, max_bytes=1 << 20)
    assert [p.summary.delete_ranges for p in parts[:-1]] == [0] * (len(parts) - 1)
    assert parts[-1].summary.delete_ranges == check_update(update).delete_ranges > 0
    assert all(p.update.endswith(b"\x00") for p in parts[:-1])
    assert_same_state(applied(update), applied(*(p.update for p in parts)))


def test_skips_at_the_ends_of_a_part_are_left_out():
    # Client 5: an item at 0, a skip of 3 clocks, items at 4 and 5, a skip, an item at 7.
    item = _map_string("m", "k", "v")
    skip = b"\x0a\x03"
    update = _update([(5, 0, [item, skip, item, item, b"\x0a\x01", item])])
    parts = split_update(update, max_structs=2, max_bytes=1 << 20)
    # [item, skip] → the skip is left out; [item, item]; [skip, item] → the item alone.
    assert [p.summary.blocks for p in parts] == [((5, 0, 1),), ((5, 4, 6),), ((5, 7, 8),)]
    assert [p.summary.struct_count for p in parts] == [1, 2, 1]
    for part in parts:
        assert check_update(part.update) == part.summary
    assert_same_state(applied(update), applied(*(p.update for p in parts)))


def test_a_javascript_update_cut_into_single_structs():
    parts = split_update(JS_UPDATE, max_structs=1, max_bytes=1 << 20)
    assert len(parts) == check_update(JS_UPDATE).struct_count > 10
    assert_same_state(applied(JS_UPDATE), applied(*(p.update for p in parts)))


def test_a_large_board_of_many_clients_applies_in_parts():
    update = board(400, clients=5)
    parts = split_update(update, max_structs=100, max_bytes=1 << 20)
    assert len(parts) > 10
    assert_well_cut(update, parts, 100, 1 << 20)
    assert_same_state(applied(update), applied(*(p.update for p in parts)))


def test_a_chain_through_many_clients_applies_part_by_part_without_waiting():
    """200 clients, each moving the shape the one before it drew (client ids
    descending with the chain, so each block refers to a block written
    after it): parts of 7 structs follow the chain, and none waits."""
    docs = [Doc(client_id=5000 - i) for i in range(200)]
    for i, doc in enumerate(docs):
        if i:
            doc.apply_update(docs[i - 1].get_update(doc.get_state()))
            doc.get("shapes", type=Map)[f"s{i - 1}"]["x"] = float(i)
        doc.get("shapes", type=Map)[f"s{i}"] = Map({"type": "rect", "x": 0.0})
    update = bytes(docs[-1].get_update())
    parts = split_update(update, max_structs=7, max_bytes=1 << 20)
    doc: Doc = Doc()
    reached: dict[int, int] = {}
    for part in parts:
        doc.apply_update(part.update)
        reached.update(part.summary.reached())
        state = decode_state_vector(bytes(doc.get_state()))
        assert all(state.get(c, 0) >= clock for c, clock in reached.items())
    assert_same_state(applied(update), doc)


def test_a_malformed_update_is_refused_as_check_update_refuses_it():
    update = board(30, clients=2)
    for cut in range(1, len(update), max(1, len(update) // 40)):
        with pytest.raises(MalformedUpdate) as refused:
            check_update(update[:cut])
        with pytest.raises(MalformedUpdate) as split_refused:
            split_update(update[:cut], max_structs=3, max_bytes=64)
        assert str(split_refused.value) == str(refused.value)
    with pytest.raises(MalformedUpdate):
        split_update(update + b"\x00", max_structs=3, max_bytes=64)


def test_bounds_must_leave_room_for_a_struct():
    with pytest.raises(ValueError):
        split_update(board(1), max_structs=0, max_bytes=100)
