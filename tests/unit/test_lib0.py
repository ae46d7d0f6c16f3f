"""crdt.lib0: the lib0 primitives, against the bytes lib0 (JavaScript) writes.

The expected vectors below were produced once with lib0's own encoder
(``lib0/encoding`` ``writeVarUint`` / ``writeVarInt`` / ``writeVarString`` /
``writeAny`` from tests/interop/node_modules) and are embedded as hex, so
these tests never need node.
"""

from __future__ import annotations

import math
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt.errors import CollabError, CrdtCode, MalformedMessage
from crdt.lib0 import MAX_SAFE_INTEGER, Decoder, Encoder

# lib0 writeVarUint
VAR_UINTS = [
    (0, "00"),
    (1, "01"),
    (127, "7f"),
    (128, "8001"),
    (300, "ac02"),
    (16383, "ff7f"),
    (16384, "808001"),
    (2**31, "8080808008"),
    (2**32, "8080808010"),
    (2**53 - 1, "ffffffffffffff0f"),
]

# lib0 writeVarInt (no encoder in crdt.lib0: decode only)
VAR_INTS = [
    (0, "00"),
    (1, "01"),
    (-1, "41"),
    (63, "3f"),
    (-63, "7f"),
    (64, "8001"),
    (-64, "c001"),
    (300, "ac04"),
    (-300, "ec04"),
    (2**31, "8080808010"),
    (-(2**31), "c080808010"),
    (2**53 - 1, "bfffffffffffff1f"),
    (-(2**53 - 1), "ffffffffffffff1f"),
]

# lib0 writeVarString
VAR_STRINGS = [
    ("", "00"),
    ("a", "0161"),
    ("héllo", "0668c3a96c6c6f"),
    ("😀", "04f09f9880"),
    ("x" * 200, "c801" + "78" * 200),
]

# lib0 writeAny
ANYS = [
    (None, "7e"),  # null
    (None, "7f"),  # undefined
    (True, "78"),
    (False, "79"),
    (0, "7d00"),
    (42, "7d2a"),
    (-42, "7d6a"),
    (2147483648.0, "7c4f000000"),  # 2**31 does not fit a varint: float32
    (1.5, "7c3fc00000"),
    (0.1, "7b3fb999999999999a"),
    ("str", "7703737472"),
    ([], "7500"),
    ([1, "a", None], "75037d017701617e"),
    ({}, "7600"),
    ({"a": 1, "b": [True, {"c": "d"}]}, "760201617d01016275027876010163770164"),
    (2**62, "7a4000000000000000"),  # BigInt 2n ** 62n
    (b"\x00\xff", "740200ff"),  # Uint8Array [0, 255]
]


# -- known vectors -------------------------------------------------------------


@pytest.mark.parametrize(("value", "hexed"), VAR_UINTS)
def test_var_uint_matches_lib0(value, hexed):
    enc = Encoder()
    enc.write_var_uint(value)
    assert enc.to_bytes() == bytes.fromhex(hexed)
    dec = Decoder(bytes.fromhex(hexed))
    assert dec.read_var_uint() == value
    assert dec.done()


def test_300_is_ac02():
    enc = Encoder()
    enc.write_var_uint(300)
    assert enc.to_bytes() == b"\xac\x02"


@pytest.mark.parametrize(("value", "hexed"), VAR_INTS)
def test_var_int_matches_lib0(value, hexed):
    dec = Decoder(bytes.fromhex(hexed))
    assert dec.read_var_int() == value
    assert dec.done()


@pytest.mark.parametrize(("value", "hexed"), VAR_STRINGS)
def test_var_string_matches_lib0(value, hexed):
    enc = Encoder()
    enc.write_var_string(value)
    assert enc.to_bytes() == bytes.fromhex(hexed)
    dec = Decoder(bytes.fromhex(hexed))
    assert dec.read_var_string() == value
    assert dec.done()


@pytest.mark.parametrize(("value", "hexed"), ANYS, ids=[h for _, h in ANYS])
def test_any_matches_lib0(value, hexed):
    dec = Decoder(bytes.fromhex(hexed))
    decoded = dec.read_any()
    assert decoded == value
    assert type(decoded) is type(value)
    assert dec.done()


def test_any_float32_and_float64_are_big_endian():
    assert Decoder(b"\x7c\xc0\x20\x00\x00").read_any() == -2.5
    assert math.isinf(Decoder(b"\x7b\x7f\xf0" + b"\x00" * 6).read_any())
    assert Decoder(b"\x7a\xff\xff\xff\xff\xff\xff\xff\xfe").read_any() == -2


def test_var_bytes_round_trip():
    enc = Encoder()
    enc.write_var_bytes(b"")
    enc.write_var_bytes(b"\x00\x01\xff")
    data = enc.to_bytes()
    assert data == b"\x00\x03\x00\x01\xff"
    dec = Decoder(data)
    assert dec.read_var_bytes() == b""
    assert dec.read_var_bytes() == b"\x00\x01\xff"
    assert dec.done()


def test_mixed_sequence_and_position():
    enc = Encoder()
    enc.write_uint8(7)
    enc.write_var_uint(300)
    enc.write_var_string("hé")
    data = enc.to_bytes()
    dec = Decoder(data)
    assert (dec.position, dec.remaining, dec.done()) == (0, len(data), False)
    assert dec.read_uint8() == 7
    assert dec.read_var_uint() == 300
    assert dec.position == 3
    assert dec.read_var_string() == "hé"
    assert (dec.remaining, dec.done()) == (0, True)
    with pytest.raises(MalformedMessage):
        dec.read_uint8()


# -- hypothesis ------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=MAX_SAFE_INTEGER))
def test_var_uint_round_trip(value):
    enc = Encoder()
    enc.write_var_uint(value)
    data = enc.to_bytes()
    # LEB128: 7 bits per byte, minimal length, last byte without the high bit.
    assert len(data) == max(1, math.ceil(value.bit_length() / 7))
    assert data[-1] < 0x80
    assert all(b >= 0x80 for b in data[:-1])
    dec = Decoder(data + b"\xaa")
    assert dec.read_var_uint() == value
    assert dec.remaining == 1


@given(
    st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=MAX_SAFE_INTEGER),
            st.text(max_size=20),
            st.binary(max_size=20),
        ),
        max_size=20,
    )
)
def test_mixed_values_round_trip(values):
    enc = Encoder()
    for value in values:
        if isinstance(value, int):
            enc.write_var_uint(value)
        elif isinstance(value, str):
            enc.write_var_string(value)
        else:
            enc.write_var_bytes(value)
    dec = Decoder(enc.to_bytes())
    out = []
    for value in values:
        if isinstance(value, int):
            out.append(dec.read_var_uint())
        elif isinstance(value, str):
            out.append(dec.read_var_string())
        else:
            out.append(dec.read_var_bytes())
    assert out == values
    assert dec.done()


@pytest.mark.parametrize("value", [-1, MAX_SAFE_INTEGER + 1, 2**64])
def test_encoder_refuses_out_of_range(value):
    with pytest.raises(ValueError):
        Encoder().write_var_uint(value)


# -- malformed input -------------------------------------------------------------


def test_malformed_message_is_a_collab_error():
    assert issubclass(MalformedMessage, CollabError)
    assert MalformedMessage.code is CrdtCode.INVALID_PAYLOAD


@pytest.mark.parametrize(("value", "hexed"), [v for v in VAR_UINTS if len(v[1]) > 2])
def test_truncated_var_uint(value, hexed):
    data = bytes.fromhex(hexed)
    for cut in range(len(data)):
        dec = Decoder(data[:cut])
        with pytest.raises(MalformedMessage):
            dec.read_var_uint()
        assert dec.position == 0  # a failed read consumes nothing


@pytest.mark.parametrize(("value", "hexed"), [v for v in VAR_INTS if len(v[1]) > 2])
def test_truncated_var_int(value, hexed):
    data = bytes.fromhex(hexed)
    for cut in range(len(data)):
        with pytest.raises(MalformedMessage):
            Decoder(data[:cut]).read_var_int()


@pytest.mark.parametrize(("value", "hexed"), [v for v in ANYS if len(v[1]) > 2])
def test_truncated_any(value, hexed):
    data = bytes.fromhex(hexed)
    for cut in range(len(data)):
        with pytest.raises(MalformedMessage):
            Decoder(data[:cut]).read_any()


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("80808080808080" + "10"),  # 2**53: one past MAX_SAFE_INTEGER
        bytes.fromhex("ffffffffffffff7f"),  # 2**56 - 1
        b"\xff" * 9 + b"\x01",  # 64 bits and more
        b"\x80" * 20 + b"\x00",  # an endless run of continuation bytes (zero value)
        b"\xff" * 100,
    ],
)
def test_over_long_var_uint(data):
    with pytest.raises(MalformedMessage):
        Decoder(data).read_var_uint()


@pytest.mark.parametrize("data", [b"\x80" * 9 + b"\x00", b"\xff" * 30])
def test_over_long_var_int(data):
    with pytest.raises(MalformedMessage):
        Decoder(data).read_var_int()


def test_largest_safe_integer_is_accepted():
    assert Decoder(bytes.fromhex("ffffffffffffff0f")).read_var_uint() == MAX_SAFE_INTEGER


HUGE = bytes.fromhex("ffffffffffffff0f")  # varuint 2**53 - 1


@pytest.mark.parametrize(
    ("data", "read"),
    [
        (HUGE + b"abc", Decoder.read_var_bytes),
        (HUGE + b"abc", Decoder.read_var_string),
        (b"\x05abcd", Decoder.read_var_string),  # one byte short
        (HUGE + b"abc", Decoder.read_count),
        (b"\x04abc", Decoder.read_count),
        (b"\x74" + HUGE, Decoder.read_any),  # Uint8Array of 2**53 - 1 bytes
        (b"\x77" + HUGE, Decoder.read_any),  # string
        (b"\x75" + HUGE + b"\x7e\x7e", Decoder.read_any),  # array
        (b"\x76" + HUGE + b"\x00\x7e", Decoder.read_any),  # object
        (b"\x76\x02\x00\x7e", Decoder.read_any),  # object of 2 entries, 1 present
        (b"\x75\x03\x7e\x7e", Decoder.read_any),  # array of 3, 2 present
    ],
)
def test_declared_sizes_beyond_the_input(data, read):
    tracemalloc.start()
    try:
        with pytest.raises(MalformedMessage):
            read(Decoder(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"decoder allocated {peak} bytes for a {len(data)}-byte input"


def test_read_count_uses_minimum_item_size():
    assert Decoder(b"\x02abcd").read_count(2) == 2
    with pytest.raises(MalformedMessage):
        Decoder(b"\x03abcd").read_count(2)
    with pytest.raises(MalformedMessage):
        Decoder(b"\x02abc").read_count(2)


def test_read_bytes_exact_length():
    dec = Decoder(b"abc")
    with pytest.raises(MalformedMessage):
        dec.read_bytes(4)
    assert dec.position == 0
    assert dec.read_bytes(3) == b"abc"


@pytest.mark.parametrize("raw", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"a\x80b"])
def test_invalid_utf8(raw):
    with pytest.raises(MalformedMessage):
        Decoder(bytes([len(raw)]) + raw).read_var_string()
    with pytest.raises(MalformedMessage):
        Decoder(b"\x77" + bytes([len(raw)]) + raw).read_any()


@pytest.mark.parametrize("tag", [0, 1, 115, 128, 255])
def test_unknown_any_tag(tag):
    with pytest.raises(MalformedMessage):
        Decoder(bytes([tag])).read_any()


def test_any_nesting_limit():
    shallow = b"\x75\x01" * 60 + b"\x7e"
    value = Decoder(shallow).read_any()
    depth = 0
    while isinstance(value, list):
        value = value[0]
        depth += 1
    assert depth == 60
    with pytest.raises(MalformedMessage):
        Decoder(b"\x75\x01" * 1000 + b"\x7e").read_any()
    with pytest.raises(MalformedMessage):
        Decoder(b"\x76\x01\x00" * 1000 + b"\x7e").read_any()
