"""crdt.update_walk, the one-pass walk behind check_update, against the
Decoder-based walk it replaced (kept here as the reference): on real
updates and on thousands of mutated ones, both accept the same updates
with the same summary and refuse the same ones."""

from __future__ import annotations

import random

import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from bench.workload import board_with_shapes, stroke_updates
from crdt.errors import MalformedMessage, MalformedUpdate
from crdt.lib0 import Decoder, Encoder
from crdt.updates import (
    DEFAULT_MAX_CLOCK,
    Block,
    UpdateSummary,
    _check_range,
    _read_delete_set,
    _read_struct,
    check_update,
)
from tests.unit.test_updates import JS_UPDATE, REAL


def reference_check(update: bytes, max_clock: int = DEFAULT_MAX_CLOCK) -> UpdateSummary:
    """check_update as it was before crdt.update_walk: one Decoder call per value."""
    dec = Decoder(update)
    roots: set[str] = set()
    blocks: list[Block] = []
    needs: dict[int, int] = {}
    total = 0
    clients: set[int] = set()
    try:
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
                if skip:
                    if clock > start:
                        blocks.append((client, start, clock))
                    start = clock + length
                clock += length
            if clock > start:
                blocks.append((client, start, clock))
            total += count
        delete_ranges, deleted = _read_delete_set(dec, max_clock, needs)
    except MalformedMessage as exc:
        raise MalformedUpdate(f"{exc} (at byte {dec.position})") from None
    if not dec.done():
        raise MalformedUpdate(f"{dec.remaining} trailing bytes after the delete set")
    return UpdateSummary(
        total, frozenset(clients), delete_ranges, frozenset(roots), tuple(blocks), needs, deleted
    )


def outcome(check, update: bytes, max_clock: int = DEFAULT_MAX_CLOCK) -> UpdateSummary | None:
    try:
        return check(update, max_clock=max_clock)
    except MalformedUpdate:
        return None


def xml_and_binary() -> bytes:
    doc = Doc(client_id=2**40 + 5)  # a client id of six bytes
    frag = doc.get("x", type=XmlFragment)
    frag.children.append(XmlElement("p", {"class": "é"}, [XmlText("héllo 🎉")]))
    doc.get("bin", type=Array).append(b"\x00\xffbytes")
    doc.get("any", type=Map)["v"] = {
        "n": None,
        "t": True,
        "f": False,
        "i": -(2**40),
        "small": -3,
        "x": 1.5,
        "big": 2**60,
        "s": "ü",
        "list": [1, [2, [3, {"deep": "é"}]]],
    }
    return bytes(doc.get_update())


def deletions() -> bytes:
    doc = Doc(client_id=300)
    text = doc.get("t", type=Text)
    text += "abcdefghij" * 20
    for i in range(0, 150, 7):
        del text[i : i + 2]
    shapes = doc.get("shapes", type=Map)
    for i in range(30):
        shapes[f"s{i}"] = Map({"x": i})
    for i in range(0, 30, 2):
        del shapes[f"s{i}"]
    return bytes(doc.get_update())


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    updates = [make() for make in REAL.values()]
    updates += [JS_UPDATE, xml_and_binary(), deletions()]
    updates += stroke_updates(40)[:25]
    updates += board_with_shapes(30, per_update=10)
    return updates


def test_real_updates_walk_to_the_same_summary(seeds):
    for update in seeds:
        expected = reference_check(update)
        assert check_update(update) == expected
        assert check_update(bytearray(update)) == expected
        # And with a max_clock that some of them pass.
        assert outcome(check_update, update, 40) == outcome(reference_check, update, 40)


def test_every_cut_and_every_extra_byte_is_refused_by_both(seeds):
    for update in seeds[:12]:
        for cut in range(len(update)):
            assert outcome(check_update, update[:cut]) is None
            assert outcome(reference_check, update[:cut]) is None
        for extra in (b"\x00", b"\x80", b"\xff\xff"):
            assert outcome(check_update, update + extra) is None


def test_mutated_updates_are_accepted_and_refused_alike(seeds):
    """Byte flips, insertions, deletions and splices of real updates: the
    same verdict and, when accepted, the same summary."""
    rng = random.Random(1811)
    accepted = refused = 0
    for _ in range(20000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            at = rng.randrange(len(data) + 1)
            if kind < 0.5 and data:
                data[min(at, len(data) - 1)] = rng.choice(
                    (0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256))
                )
            elif kind < 0.7:
                data[at:at] = bytes([rng.randrange(256)])
            elif kind < 0.85 and data:
                del data[min(at, len(data) - 1)]
            else:
                other = rng.choice(seeds)
                start = rng.randrange(len(other))
                data[at:at] = other[start : start + rng.randint(1, 8)]
        update = bytes(data)
        max_clock = rng.choice((DEFAULT_MAX_CLOCK, 64))
        got = outcome(check_update, update, max_clock)
        assert got == outcome(reference_check, update, max_clock), update.hex()
        if got is None:
            refused += 1
        else:
            accepted += 1
    assert accepted > 1000 and refused > 1000, (accepted, refused)


def forged_any(value: bytes) -> bytes:
    """One ContentAny struct holding the raw lib0 value ``value``."""
    enc = Encoder()
    for v in (1, 1, 5, 0):  # one client block: one struct, client 5, clock 0
        enc.write_var_uint(v)
    enc.write_uint8(8)  # ContentAny, no origins: parent info follows
    enc.write_var_uint(1)
    enc.write_var_string("a")
    enc.write_var_uint(1)  # one value
    return enc.to_bytes() + value + b"\x00"


@pytest.mark.parametrize(
    "value",
    [
        b"\x7d" + b"\xff" * 8 + b"\x01",  # a signed integer of 62 bits and more
        b"\x7d\x80",  # a signed integer cut short
        b"\x7c\x00\x00",  # a float32 cut short
        b"\x7b" + b"\x00" * 7,  # a float64 cut short
        b"\x76\x05",  # an object of more keys than bytes
        b"\x75\x7f",  # an array of more values than bytes
        b"\x77\x02\xc3\x28",  # a string that is not UTF-8
        b"\x74\x09ab",  # bytes longer than what is left
        b"\x73",  # an unknown tag
        b"\x75\x01" * 70 + b"\x7e",  # nested past 64
    ],
)
def test_forged_any_values_are_refused_alike(value):
    update = forged_any(value)
    assert outcome(check_update, update) is None
    assert outcome(reference_check, update) is None


def test_a_deep_but_allowed_any_value_passes_alike():
    update = forged_any(b"\x75\x01" * 63 + b"\x7e")
    assert outcome(check_update, update) == outcome(reference_check, update) is not None
