"""WebSocket framing (RFC 6455) for collab's own WebSocket server (collab.front).

Server→client frames are unmasked and built here; client→server frames are
parsed by :class:`FrameReader`, which holds at most one frame (and one
fragmented message) within its limit, and says what is wrong with a frame
it refuses as a close code.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable

_mask_in_place: Callable[[bytes, bytearray], None] | None
try:  # aiohttp's own client-frame unmasking, in C (Cython), when it is built
    from aiohttp._websocket.helpers import websocket_mask as _mask_in_place
except ImportError:  # pragma: no cover - aiohttp moved it: the XOR below
    _mask_in_place = None

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_INVALID_DATA",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_NORMAL",
    "CLOSE_PROTOCOL_ERROR",
    "FIN_BINARY",
    "FIN_TEXT",
    "FrameError",
    "FrameReader",
    "accept_key",
    "close_frame",
    "frame",
    "unmask",
]

FIN_TEXT = 0x81
FIN_BINARY = 0x82
_FIN_CLOSE = 0x88
_FIN_PONG = 0x8A

_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
#: The first byte of a whole (unfragmented) data message.
_WHOLE_DATA = (FIN_BINARY, FIN_TEXT)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_MESSAGE_TOO_BIG = 1009

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def frame(first_byte: int, payload: bytes) -> bytes:
    """One unmasked frame: ``first_byte`` (FIN and opcode), then ``payload``."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", first_byte, n) + payload
    if n < 65536:
        return struct.pack("!BBH", first_byte, 126, n) + payload
    return struct.pack("!BBQ", first_byte, 127, n) + payload


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return frame(_FIN_CLOSE, struct.pack("!H", code) + reason[:123])


def unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """``data`` XOR the 4-byte ``mask`` repeated: aiohttp's unmasking (a
    fifth of the time of a client's usual frame), else one big-integer XOR,
    which runs in C at any length."""
    if not data:
        return b""
    return bytes(_unmask_into(bytearray(data), bytes(mask)))


def _unmask_into(message: bytearray, mask: bytes) -> bytearray:
    """``message`` unmasked: in place with aiohttp's unmasking, else a new one."""
    if _mask_in_place is not None:
        _mask_in_place(mask, message)
        return message
    return bytearray(_xor(message, mask))


def _xor(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    n = len(data)
    key = (bytes(mask) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class FrameError(Exception):
    """A frame the connection cannot go on after: ``code`` is the close code."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class FrameReader:
    """Client frames to messages: ``on_message(str | bytes)`` for each data
    message, in order; control frames are answered with ``write``
    (PING → PONG) or reported (``on_close(code)``).

    A text message is at most ``text_bytes`` long, a binary one at most
    ``binary_bytes`` (checked from each frame's header, before its payload
    is buffered: close code 1009); an unmasked frame, a reserved bit or
    opcode, or a bad fragment is 1002; text that is not UTF-8 is 1007.
    """

    __slots__ = (
        "_buffer",
        "_fragments",
        "_fragments_opcode",
        "_fragments_size",
        "binary_bytes",
        "on_close",
        "on_message",
        "text_bytes",
        "write",
    )

    def __init__(
        self,
        *,
        text_bytes: int,
        binary_bytes: int,
        on_message: Callable[[str | bytes], None],
        on_close: Callable[[int], None],
        write: Callable[[bytes], None],
    ) -> None:
        self.text_bytes = text_bytes
        self.binary_bytes = binary_bytes
        self.on_message = on_message
        self.on_close = on_close
        self.write = write
        self._buffer = bytearray()
        self._fragments: list[bytes] | None = None
        self._fragments_opcode = 0
        self._fragments_size = 0

    def feed(self, data: bytes) -> None:
        """Parse what arrived; raises FrameError for a frame it refuses."""
        buffer = self._buffer
        buffer += data  # amortised: a large frame arrives in many reads
        size = len(buffer)
        at = 0
        while size - at >= 2:
            first, second = buffer[at], buffer[at + 1]
            opcode = first & 0x0F
            length = second & 0x7F
            header = 2
            if length == 126:
                if size - at < 4:
                    break
                length = int.from_bytes(buffer[at + 2 : at + 4], "big")
                header = 4
            elif length == 127:
                if size - at < 10:
                    break
                length = int.from_bytes(buffer[at + 2 : at + 10], "big")
                header = 10
            if (
                first in _WHOLE_DATA
                and second & 0x80
                and self._fragments is None
                and length <= (self.binary_bytes if first == FIN_BINARY else self.text_bytes)
            ):
                # A whole masked data message within its limit (nearly every
                # frame): what _check and _frame do for it, here.
                end = at + header + 4 + length
                if size < end:
                    break
                start = at + header + 4
                message = buffer[start:end]
                if length:
                    message = _unmask_into(message, bytes(buffer[start - 4 : start]))
                at = end
                if first == FIN_BINARY:
                    self.on_message(bytes(message))
                    continue
                try:
                    text = message.decode("utf-8")
                except UnicodeDecodeError:
                    raise FrameError(CLOSE_INVALID_DATA, "text that is not UTF-8") from None
                self.on_message(text)
                continue
            self._check(first, second, opcode, length)
            end = at + header + 4 + length
            if size < end:
                break
            mask = buffer[at + header : at + header + 4]
            payload = unmask(buffer[at + header + 4 : end], mask)
            at = end
            self._frame(first & 0x80, opcode, payload)
        if at:
            del buffer[:at]

    def _check(self, first: int, second: int, opcode: int, length: int) -> None:
        if first & 0x70:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
        if not second & 0x80:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "an unmasked client frame")
        if opcode >= _CLOSE:
            if opcode > _PONG:
                raise FrameError(CLOSE_PROTOCOL_ERROR, f"opcode={opcode}")
            if not first & 0x80 or length > 125:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a fragmented or long control frame")
            return
        if opcode == _CONTINUATION:
            if self._fragments is None:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a continuation of nothing")
            kind, so_far = self._fragments_opcode, self._fragments_size
        elif opcode in (_TEXT, _BINARY):
            if self._fragments is not None:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a new message inside a fragmented one")
            kind, so_far = opcode, 0
        else:
            raise FrameError(CLOSE_PROTOCOL_ERROR, f"opcode={opcode}")
        limit = self.text_bytes if kind == _TEXT else self.binary_bytes
        if so_far + length > limit:
            name = "text" if kind == _TEXT else "binary"
            raise FrameError(
                CLOSE_MESSAGE_TOO_BIG, f"type={name} bytes={so_far + length} limit={limit}"
            )

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode >= _CLOSE:
            if opcode == _PING:
                self.write(frame(_FIN_PONG, payload))
            elif opcode == _CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else CLOSE_NORMAL
                self.on_close(code)
            return
        if opcode == _CONTINUATION:
            assert self._fragments is not None
            self._fragments.append(payload)
            self._fragments_size += len(payload)
            if not fin:
                return
            opcode = self._fragments_opcode
            payload = b"".join(self._fragments)
            self._fragments = None
            self._fragments_size = 0
        elif not fin:
            self._fragments = [payload]
            self._fragments_opcode = opcode
            self._fragments_size = len(payload)
            return
        if opcode == _TEXT:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise FrameError(CLOSE_INVALID_DATA, "text that is not UTF-8") from None
            self.on_message(text)
        else:
            self.on_message(payload)
