"""crdt.updates.check_update: the pure-Python walk of Yjs v1 updates.

Real updates come from pycrdt (built here) and from JavaScript Yjs (one
update produced once with yjs 13.6 from tests/interop/node_modules and
embedded as hex). Forged updates are written byte by byte with the lib0
encoder, following yjs ``UpdateDecoderV1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.errors import CollabError, CrdtCode, MalformedUpdate
from crdt.lib0 import Encoder
from crdt.updates import DEFAULT_MAX_CLOCK, EMPTY_UPDATE, UpdateSummary, check_update

ROOT = Path(__file__).resolve().parents[2]

# Y.encodeStateAsUpdate of a JS Yjs doc (clientID 123456789): root map
# "shapes" with a nested Y.Map (a sticky with emoji text and points), root
# array "list" with an item deleted, root text "t" with formatting and a
# deletion through an emoji. Made by yjs 13.6.33 under node.
JS_UPDATE = bytes.fromhex(
    "0110959aef3a00270106736861706573027331012800959aef3a000474797065017706737469636b79"
    "2800959aef3a000178017d0a2800959aef3a000179017cc02000002800959aef3a000474657874017707"
    "686920f09f98802800959aef3a0006706f696e747301750275027d017d0275027d037d040801046c6973"
    "74017d0181959aef3a060188959aef3a0703787e7601016b75017c3fc0000083959aef3a0a0301020304"
    "0101740668c3a96c6c6f84959aef3a10012081959aef3a110284959aef3a13072077c3b6726c6446959a"
    "ef3a0c04626f6c640474727565c6959aef3a10959aef3a1104626f6c64046e756c6c01959aef3a020701"
    "1202"
)
JS_CLIENT = 123456789
JS_STATE_VECTOR = bytes.fromhex("01959aef3a1c")  # clock 28 for client 123456789
JS_SHAPES = {
    "s1": {"type": "sticky", "x": 10, "y": -2.5, "text": "hi 😀", "points": [[1, 2], [3, 4]]}
}


# -- real updates ----------------------------------------------------------------


def map_update() -> bytes:
    doc = Doc(client_id=7)
    root = doc.get("m", type=Map)
    with doc.transaction():
        root["a"] = 1
        root["b"] = "x"
    return bytes(doc.get_update())


def array_with_deletions() -> bytes:
    doc = Doc(client_id=7)
    arr = doc.get("a", type=Array)
    arr.extend([1, 2, 3, 4, 5])
    del arr[1]  # 2
    del arr[2]  # 4
    assert arr.to_py() == [1, 3, 5]
    return bytes(doc.get_update())


def formatted_text() -> bytes:
    doc = Doc(client_id=7)
    text = doc.get("t", type=Text)
    text += "hello world"
    text.format(0, 5, {"bold": True})
    return bytes(doc.get_update())


def emoji_text() -> bytes:
    doc = Doc(client_id=7)
    text = doc.get("t", type=Text)
    text += "😀😀"  # 2 code points, 4 UTF-16 units, 8 UTF-8 bytes
    return bytes(doc.get_update())


def nested_maps() -> bytes:
    doc = Doc(client_id=7)
    shapes = doc.get("shapes", type=Map)
    shapes["a"] = Map({"type": "rect", "inner": Map({"k": "v"})})
    return bytes(doc.get_update())


def rich_document() -> bytes:
    """Two clients, every content kind pycrdt writes, deletions everywhere."""
    doc = Doc(client_id=11)
    shapes = doc.get("shapes", type=Map)
    shapes["a"] = Map(
        {"type": "pen", "points": [[1, 2], [3.5, -4]], "ok": True, "none": None, "n": 2**40}
    )
    arr = doc.get("arr", type=Array)
    arr.extend([1, "two", 3.5, b"\x00\x01", [1, 2], {"k": "v"}])
    del arr[1]
    text = doc.get("txt", type=Text)
    text += "hello 😀 world"
    text.format(0, 5, {"bold": True})
    text.insert(6, "🎉", {"italic": True})
    del text[0:2]
    other = Doc(client_id=99)
    other.apply_update(doc.get_update())
    other.get("shapes", type=Map)["b"] = "c"
    del other.get("shapes", type=Map)["a"]
    return bytes(other.get_update())


REAL = {
    "map": map_update,
    "array_with_deletions": array_with_deletions,
    "formatted_text": formatted_text,
    "emoji_text": emoji_text,
    "nested_maps": nested_maps,
    "rich_document": rich_document,
}


@pytest.fixture(scope="module")
def real_updates() -> dict[str, bytes]:
    return {name: make() for name, make in REAL.items()}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("map", UpdateSummary(2, frozenset({7}), 0, frozenset({"m"}))),
        # [1][2 deleted][3][4 deleted][5]: five structs, two delete ranges,
        # only the first names its root (the others have origins).
        ("array_with_deletions", UpdateSummary(5, frozenset({7}), 2, frozenset({"a"}))),
        # "hello", " world", format start, format end
        ("formatted_text", UpdateSummary(4, frozenset({7}), 0, frozenset({"t"}))),
        ("emoji_text", UpdateSummary(1, frozenset({7}), 0, frozenset({"t"}))),
        # the shape map, its "type", the inner map, its "k": one root
        ("nested_maps", UpdateSummary(4, frozenset({7}), 0, frozenset({"shapes"}))),
    ],
)
def test_real_update_summary(real_updates, name, expected):
    summary = check_update(real_updates[name])
    assert head(summary) == head(expected)
    assert not summary.is_empty
    # One doc made each from scratch: one run of its client from clock 0,
    # and everything it depends on is in it.
    assert summary.blocks[0][:2] == (7, 0)
    assert summary.missing({}) == {}


def test_rich_document_summary(real_updates):
    summary = check_update(real_updates["rich_document"])
    assert summary.clients == {11, 99}
    assert summary.roots == {"shapes", "arr", "txt"}
    assert summary.delete_ranges >= 3  # shape "a", arr[1], text[0:2] (and overwrites)
    assert summary.struct_count > 10


def test_emoji_counts_utf16_units():
    """A string's clock length is its UTF-16 length (Yjs), not bytes or code points."""
    update = emoji_text()
    assert check_update(update, max_clock=4).struct_count == 1
    with pytest.raises(MalformedUpdate):
        check_update(update, max_clock=3)


def test_real_updates_apply_to_pycrdt(real_updates):
    for update in real_updates.values():
        Doc().apply_update(update)


def test_js_update_passes():
    summary = check_update(JS_UPDATE)
    assert summary.clients == {JS_CLIENT}
    assert summary.roots == {"shapes", "list", "t"}
    assert summary.struct_count == 16
    assert summary.delete_ranges == 2
    doc = Doc()
    doc.apply_update(JS_UPDATE)
    assert bytes(doc.get_state()) == JS_STATE_VECTOR
    assert doc.get("shapes", type=Map).to_py() == JS_SHAPES
    assert str(doc.get("t", type=Text)) == "héllo  wörld"


def test_empty_update():
    assert EMPTY_UPDATE == b"\x00\x00"
    summary = check_update(EMPTY_UPDATE)
    assert summary.is_empty
    assert summary == UpdateSummary(0, frozenset(), 0, frozenset(), deleted=0)
    # what pycrdt sends when there is nothing to send
    doc = Doc()
    doc.get("m", type=Map)["k"] = "v"
    assert check_update(bytes(doc.get_update(doc.get_state()))).is_empty


def test_delete_only_update_is_not_empty():
    doc = Doc(client_id=7)
    root = doc.get("m", type=Map)
    root["k"] = "v"
    state = doc.get_state()
    del root["k"]
    summary = check_update(bytes(doc.get_update(state)))
    assert (summary.struct_count, summary.delete_ranges, summary.is_empty) == (0, 1, False)


# -- malformed updates ---------------------------------------------------------------


def test_malformed_update_is_a_collab_error():
    assert issubclass(MalformedUpdate, CollabError)
    assert MalformedUpdate.code is CrdtCode.MALFORMED_UPDATE


@pytest.mark.parametrize("name", [*REAL, "js"])
def test_every_truncation_is_rejected(real_updates, name):
    update = JS_UPDATE if name == "js" else real_updates[name]
    for cut in range(len(update)):
        with pytest.raises(MalformedUpdate):
            check_update(update[:cut])


def test_error_messages_carry_no_content():
    doc = Doc(client_id=7)
    doc.get("m", type=Map)["k"] = "top-secret-words"
    update = bytes(doc.get_update())
    for cut in range(len(update)):
        with pytest.raises(MalformedUpdate) as info:
            check_update(update[:cut])
        assert "secret" not in str(info.value)


@pytest.mark.parametrize("extra", [b"\x00", b"\x00\x00", b"\xff", b"garbage"])
def test_trailing_bytes_are_rejected(real_updates, extra):
    for update in [*real_updates.values(), JS_UPDATE, EMPTY_UPDATE]:
        with pytest.raises(MalformedUpdate, match="trailing"):
            check_update(update + extra)


def _update(blocks: list[tuple[int, int, list[bytes]]], deletes=()) -> bytes:
    """An update from raw struct bytes: [(client, clock, [struct, ...])]."""
    enc = Encoder()
    enc.write_var_uint(len(blocks))
    for client, clock, structs in blocks:
        enc.write_var_uint(len(structs))
        enc.write_var_uint(client)
        enc.write_var_uint(clock)
        for struct in structs:
            for byte in struct:
                enc.write_uint8(byte)
    enc.write_var_uint(len(deletes))
    for client, ranges in deletes:
        enc.write_var_uint(client)
        enc.write_var_uint(len(ranges))
        for clock, length in ranges:
            enc.write_var_uint(clock)
            enc.write_var_uint(length)
    return enc.to_bytes()


def _map_string(root: str, key: str, value: str, info: int = 0x24) -> bytes:
    """An item in root map ``root`` at ``key``: info = parent sub + ContentString."""
    enc = Encoder()
    enc.write_uint8(info)
    enc.write_var_uint(1)
    enc.write_var_string(root)
    enc.write_var_string(key)
    enc.write_var_string(value)
    return enc.to_bytes()


def head(summary: UpdateSummary) -> tuple[object, ...]:
    """The counts of a summary (not its blocks and dependencies)."""
    return (summary.struct_count, summary.clients, summary.delete_ranges, summary.roots)


def _var(value: int) -> bytes:
    enc = Encoder()
    enc.write_var_uint(value)
    return enc.to_bytes()


def test_forged_helpers_make_valid_updates():
    update = _update([(5, 0, [_map_string("m", "k", "v")])])
    assert head(check_update(update)) == (1, frozenset({5}), 0, frozenset({"m"}))
    doc = Doc()
    doc.apply_update(update)
    assert doc.get("m", type=Map).to_py() == {"k": "v"}


def test_summary_counts_blocks_and_ranges():
    update = _update(
        [(5, 0, [_map_string("m", "k", "v")]), (6, 3, []), (7, 2, [b"\x00\x02", b"\x0a\x01"])],
        [(5, [(0, 1)]), (8, [(1, 2), (5, 1)])],
    )
    summary = check_update(update)
    # a block without structs names no client; GC and Skip count as structs
    assert head(summary) == (3, frozenset({5, 7}), 3, frozenset({"m"}))
    # Client 7's GC at 2, then a skip of one clock: a run 2..4, nothing after.
    assert summary.blocks == ((5, 0, 1), (7, 2, 4))
    # The deleted ranges are dependencies: client 8 up to clock 6.
    assert summary.needs == {5: 1, 8: 6}
    assert summary.missing({7: 2, 8: 6}) == {}
    assert summary.missing({8: 6}) == {7: 2}, "client 7's run starts past clock 0"
    assert summary.missing({7: 2}) == {8: 6}


@pytest.mark.parametrize("ref", [11, 12, 20, 31])
def test_unknown_content_ref_is_rejected(ref):
    with pytest.raises(MalformedUpdate, match="unknown content kind"):
        check_update(_update([(5, 0, [_map_string("m", "k", "v", info=0x20 | ref)])]))


def test_every_known_content_ref_is_accepted():
    # ContentDeleted(3), JSON ["1"], Binary, String, Embed, Format, Type(YMap),
    # Any [1], Doc(guid, {}) — each in root map "m" under its own key.
    def item(ref: int, key: str, content: bytes) -> bytes:
        enc = Encoder()
        enc.write_uint8(0x20 | ref)
        enc.write_var_uint(1)
        enc.write_var_string("m")
        enc.write_var_string(key)
        return enc.to_bytes() + content

    structs = [
        item(1, "deleted", _var(3)),
        item(2, "json", b"\x01\x011"),
        item(3, "binary", b"\x02\x00\xff"),
        item(4, "string", b"\x02ab"),
        item(5, "embed", b"\x02{}"),
        item(6, "format", b"\x04bold\x04true"),
        item(7, "type", b"\x01"),
        item(7, "xml", b"\x03\x01p"),  # YXmlElement carries its node name
        item(7, "hook", b"\x05\x04hook"),  # so does YXmlHook
        item(8, "any", b"\x01\x7d\x01"),
        item(9, "doc", b"\x04guid\x76\x00"),
    ]
    summary = check_update(_update([(5, 0, structs)]))
    assert summary.struct_count == len(structs)
    assert summary.roots == {"m"}


@pytest.mark.parametrize("type_ref", [7, 8, 100])
def test_unknown_type_ref_is_rejected(type_ref):
    item = _map_string("m", "k", "v", info=0x27)
    # replace the ContentString payload with a ContentType of type_ref
    structs = [item[: -len(b"\x01v")] + _var(type_ref)]
    with pytest.raises(MalformedUpdate, match="unknown type reference"):
        check_update(_update([(5, 0, structs)]))


def test_bad_parent_info_is_rejected():
    enc = Encoder()
    enc.write_uint8(0x04)  # no origins, no parent sub, ContentString
    enc.write_var_uint(2)  # parent info: only 0 (an id) or 1 (a root name)
    enc.write_var_string("t")
    enc.write_var_string("x")
    with pytest.raises(MalformedUpdate):
        check_update(_update([(5, 0, [enc.to_bytes()])]))


@pytest.mark.parametrize("struct", [b"\x00\x00", b"\x0a\x00", b"\x21\x01\x01m\x01k\x00"])
def test_zero_length_struct_is_rejected(struct):
    """GC, Skip and ContentDeleted of length 0 cover no clock."""
    with pytest.raises(MalformedUpdate, match="zero length"):
        check_update(_update([(5, 0, [struct])]))


def test_clock_limit_on_structs():
    ok = _update([(5, DEFAULT_MAX_CLOCK - 1, [_map_string("m", "k", "v")])])
    assert check_update(ok).struct_count == 1  # ends exactly at the limit
    past = _update([(5, DEFAULT_MAX_CLOCK, [_map_string("m", "k", "v")])])
    with pytest.raises(MalformedUpdate, match="limit"):
        check_update(past)
    # a struct's length counts: 2 UTF-16 units starting one below the limit
    with pytest.raises(MalformedUpdate, match="limit"):
        check_update(_update([(5, DEFAULT_MAX_CLOCK - 1, [_map_string("m", "k", "vw")])]))
    # later structs of a block start where the previous ended
    many = [_map_string("m", f"k{i}", "v") for i in range(3)]
    assert check_update(_update([(5, 7, many)]), max_clock=10).struct_count == 3
    with pytest.raises(MalformedUpdate):
        check_update(_update([(5, 8, many)]), max_clock=10)


@pytest.mark.parametrize("kind", [0x00, 0x0A])
def test_clock_limit_on_gc_and_skip(kind):
    assert check_update(_update([(5, 0, [bytes([kind]) + _var(100)])]), max_clock=100)
    for length in (101, 2**32 + 1, 2**53 - 1):
        with pytest.raises(MalformedUpdate):
            check_update(_update([(5, 0, [bytes([kind]) + _var(length)])]), max_clock=100)


def test_clock_limit_on_delete_set():
    assert check_update(_update([], [(5, [(0, 10), (20, 80)])]), max_clock=100).delete_ranges == 2
    for clock, length in [(0, 101), (100, 1), (99, 2), (2**53 - 1, 1), (0, 2**53 - 1)]:
        with pytest.raises(MalformedUpdate, match="limit"):
            check_update(_update([], [(5, [(clock, length)])]), max_clock=100)


def test_default_max_clock_rejects_gigantic_ranges():
    for update in [
        _update([], [(5, [(0, 2**40)])]),
        _update([(5, 0, [b"\x00" + _var(2**40)])]),
        _update([(5, 2**40, [_map_string("m", "k", "v")])]),
    ]:
        with pytest.raises(MalformedUpdate):
            check_update(update)


@pytest.mark.parametrize(
    "update",
    [
        b"",
        b"\x00",  # no delete set
        b"\xff\xff\xff\xff\x0f\x00",  # 2**32 - 1 client blocks in 1 byte
        b"\x01\xff\xff\xff\xff\x0f\x05\x00",  # 2**32 - 1 structs
        b"\x00\xff\xff\xff\xff\x0f",  # 2**32 - 1 delete-set clients
        b"\x00\x01\x05\xff\xff\xff\xff\x0f",  # 2**32 - 1 ranges
        b"\x01\x01\x05\x00\x28\x01\x01m\x01k\xff\xff\xff\xff\x0f\x00",  # ContentAny count
        b"\x01\x01\x05\x00\x24\x01\x01m\x01k\xff\xff\xff\xff\x0f\x00",  # string length
    ],
)
def test_forged_counts_are_rejected(update):
    with pytest.raises(MalformedUpdate):
        check_update(update)


def test_rejects_what_the_raw_engine_mishandles():
    """A clock past 2**32 (yrs keeps u32 clocks) makes pycrdt panic.

    The forged update: a Y.Map at ``shapes.a`` from client 11 starting at
    clock 2**32 + 2**31 + 1, then an entry whose parent is the item 11:0.
    ``check_update`` refuses it; pycrdt alone raises pyo3's PanicException,
    a BaseException that ``except Exception`` would not catch.
    """
    forged = bytes.fromhex("01020b818080801827010673686170657301610128000b00016b0177017600")
    with pytest.raises(MalformedUpdate, match="limit"):
        check_update(forged)
    with pytest.raises(BaseException) as info:  # the point is its type
        Doc(client_id=5).apply_update(forged)
    assert not isinstance(info.value, Exception)
    assert "Panic" in type(info.value).__name__


RAW_YPY_SCRIPT = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import y_py
try:
    y_py.apply_update(y_py.YDoc(), bytes.fromhex(sys.argv[1]))
except BaseException as exc:
    print(type(exc).__name__)
"""


def test_rejects_what_aborts_the_raw_ypy_engine():
    """Five bytes declaring 2**32 - 1 client blocks: raw y-py sizes a buffer by
    the count and aborts the process ("memory allocation of ... failed")."""
    pytest.importorskip("y_py")
    forged = b"\xff\xff\xff\xff\x0f"
    with pytest.raises(MalformedUpdate):
        check_update(forged)
    proc = subprocess.run(
        [sys.executable, "-c", RAW_YPY_SCRIPT, forged.hex()],
        capture_output=True,
        text=True,
        env=dict(os.environ, RUST_BACKTRACE="0"),
        timeout=60,
    )
    assert proc.returncode != 0, "raw y-py survived: the demonstration no longer holds"
    assert "memory allocation" in proc.stderr


# -- fuzzing, in a subprocess ---------------------------------------------------------

FUZZ_SCRIPT = r"""
import json, random, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from pycrdt import Doc
from crdt.errors import MalformedUpdate
from crdt.updates import check_update

seeds = [bytes.fromhex(h) for h in json.loads(sys.stdin.read())]
rng = random.Random(20240601)

def mutate(data):
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        i = rng.randrange(len(buf) + 1)
        if op < 0.5 and i < len(buf):
            buf[i] = rng.choice(
                [rng.randrange(256), 0xFF, 0x7F, 0x80, 0, 1, buf[i] ^ (1 << rng.randrange(8))]
            )
        elif op < 0.75:
            fill = rng.choice([0xFF, 0x80, rng.randrange(256)])
            buf[i:i] = bytes([fill]) * rng.randint(1, 5)
        elif i < len(buf):
            del buf[i : i + rng.randint(1, 3)]
    return bytes(buf)

stats = {"cases": 0, "rejected": 0, "applied": 0, "engine_errors": 0, "panics": 0}
for _ in range(int(sys.argv[1])):
    update = mutate(rng.choice(seeds))
    stats["cases"] += 1
    try:
        check_update(update)
    except MalformedUpdate:
        stats["rejected"] += 1
        continue
    try:
        Doc().apply_update(update)
    except Exception:
        stats["engine_errors"] += 1
    except BaseException:  # pyo3 PanicException: caught by the engines too
        stats["panics"] += 1
    else:
        stats["applied"] += 1
print(json.dumps(stats))
"""


def test_fuzz_checked_updates_never_crash_the_engine(real_updates):
    """Mutated updates that pass check_update never abort the process.

    Runs in a child process with a 3 GiB address-space limit: yrs aborts
    (instead of raising) when an allocation fails, so a forged length that
    slipped through would kill the child, not pytest, and fail this test.
    """
    seeds = [u.hex() for u in [*real_updates.values(), JS_UPDATE]]
    env = dict(os.environ, PYTHONPATH=str(ROOT), RUST_BACKTRACE="0")
    proc = subprocess.run(
        [sys.executable, "-c", FUZZ_SCRIPT, "5000"],
        input=json.dumps(seeds),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, f"fuzz child died ({proc.returncode}): {proc.stderr[-2000:]}"
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["cases"] == 5000
    assert stats["applied"] > 0, stats
    assert stats["rejected"] > 0, stats


def test_the_summary_counts_what_the_delete_set_covers():
    """A board's bulk-delete watch (rooms.document) counts shapes only when
    an update deletes enough items to remove that many."""
    doc = Doc(client_id=7)
    board = doc.get("shapes", type=Map)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    with doc.transaction():
        for i in range(6):
            board[f"s{i}"] = Map({"type": "rect", "x": 0.0})
    board["s0"]["x"] = 1.0  # a move: the old value deleted
    with doc.transaction():
        for i in range(1, 6):
            del board[f"s{i}"]  # five shapes, each with its two entries
    creation, move, removal = (check_update(u) for u in updates)
    assert creation.deleted == 0
    assert move.deleted == 1
    assert removal.deleted is not None and removal.deleted >= 5
