"""lib0 binary encoding, the primitive layer of Yjs wire formats (sans-I/O).

Only the subset Yjs v1 updates and y-protocols awareness messages use:
variable-length unsigned/signed integers, length-prefixed byte strings and
UTF-8 strings, and lib0's ``writeAny`` values.

The decoder never allocates more than the input it holds: every declared
length or count is checked against the bytes that remain before anything is
read, so a hostile 10-byte message cannot ask for a gigabyte.
"""

from __future__ import annotations

import struct
from typing import Any

from crdt.errors import MalformedMessage

__all__ = ["MAX_SAFE_INTEGER", "Decoder", "Encoder", "var_uint_at"]

#: JavaScript's Number.MAX_SAFE_INTEGER: the largest value lib0 can carry.
MAX_SAFE_INTEGER = 2**53 - 1


def var_uint_at(buf: bytes, pos: int) -> tuple[int, int]:
    """The unsigned LEB128 integer at ``pos`` of ``buf``, at most 2**53 - 1
    (lib0's limit), and the offset after it; MalformedMessage if it is cut
    short or too large."""
    end = len(buf)
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise MalformedMessage("unexpected end of data in integer")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 56:
            raise MalformedMessage("integer too large")
    if value > MAX_SAFE_INTEGER:
        raise MalformedMessage("integer too large")
    return value, pos


class Decoder:
    """Reads lib0 values from a bytes buffer, front to back.

    Every method raises :class:`MalformedMessage` instead of returning a
    partial value when the buffer is too short or a value is out of range.
    """

    __slots__ = ("_buf", "_pos")

    def __init__(self, buf: bytes) -> None:
        self._buf = buf
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._buf) - self._pos

    @property
    def position(self) -> int:
        return self._pos

    def done(self) -> bool:
        return self._pos >= len(self._buf)

    def read_uint8(self) -> int:
        if self._pos >= len(self._buf):
            raise MalformedMessage("unexpected end of data")
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def read_var_uint(self) -> int:
        """An unsigned LEB128 integer, at most 2**53 - 1 (lib0's limit)."""
        buf, pos = self._buf, self._pos
        if pos < len(buf):
            byte = buf[pos]
            if byte < 0x80:  # one byte: most lengths, counts and clocks
                self._pos = pos + 1
                return byte
        return self._read_long_var_uint()

    def _read_long_var_uint(self) -> int:
        value, self._pos = var_uint_at(self._buf, self._pos)
        return value

    def read_var_int(self) -> int:
        """lib0's signed integer: sign in bit 6 of the first byte."""
        byte = self.read_uint8()
        value = byte & 0x3F
        negative = bool(byte & 0x40)
        shift = 6
        while byte & 0x80:
            byte = self.read_uint8()
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > 60:
                raise MalformedMessage("integer too large")
        return -value if negative else value

    def read_bytes(self, length: int) -> bytes:
        start = self._pos
        end = start + length
        if end > len(self._buf):
            raise MalformedMessage(
                f"declared length {length} exceeds the {self.remaining} bytes left"
            )
        self._pos = end
        return self._buf[start:end]

    def read_var_bytes(self) -> bytes:
        return self.read_bytes(self.read_var_uint())

    def read_var_string(self) -> str:
        raw = self.read_var_bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage("string is not valid UTF-8") from exc

    def read_count(self, min_item_bytes: int = 1) -> int:
        """A count of following entries, each at least ``min_item_bytes`` long.

        Rejecting counts the remaining input cannot possibly hold keeps a
        parser from looping (or allocating) on a forged count.
        """
        count = self.read_var_uint()
        if count * min_item_bytes > len(self._buf) - self._pos:
            raise MalformedMessage(f"declared count {count} exceeds the data")
        return count

    def read_any(self, depth: int = 0) -> Any:
        """A lib0 ``writeAny`` value (the content of Yjs ContentAny)."""
        if depth > 64:
            raise MalformedMessage("value nested too deeply")
        tag = self.read_uint8()
        if tag == 127:  # undefined
            return None
        if tag == 126:  # null
            return None
        if tag == 125:
            return self.read_var_int()
        if tag == 124:
            return struct.unpack(">f", self.read_bytes(4))[0]
        if tag == 123:
            return struct.unpack(">d", self.read_bytes(8))[0]
        if tag == 122:
            return struct.unpack(">q", self.read_bytes(8))[0]
        if tag == 121:
            return False
        if tag == 120:
            return True
        if tag == 119:
            return self.read_var_string()
        if tag == 118:
            size = self.read_count(2)
            obj: dict[str, Any] = {}
            for _ in range(size):
                key = self.read_var_string()
                obj[key] = self.read_any(depth + 1)
            return obj
        if tag == 117:
            size = self.read_count(1)
            return [self.read_any(depth + 1) for _ in range(size)]
        if tag == 116:
            return self.read_var_bytes()
        raise MalformedMessage(f"unknown value tag {tag}")


class Encoder:
    """Appends lib0 values to a growing buffer; :meth:`to_bytes` ends it."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts = bytearray()

    def write_uint8(self, value: int) -> None:
        self._parts.append(value & 0xFF)

    def write_var_uint(self, value: int) -> None:
        if value < 0 or value > MAX_SAFE_INTEGER:
            raise ValueError(f"var uint out of range: {value}")
        parts = self._parts
        while value > 0x7F:
            parts.append(0x80 | (value & 0x7F))
            value >>= 7
        parts.append(value)

    def write_var_bytes(self, data: bytes) -> None:
        self.write_var_uint(len(data))
        self._parts += data

    def write_var_string(self, text: str) -> None:
        self.write_var_bytes(text.encode("utf-8"))

    def to_bytes(self) -> bytes:
        return bytes(self._parts)
