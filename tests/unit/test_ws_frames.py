"""collab.ws_frames: RFC 6455 framing for collab's own WebSocket server."""

from __future__ import annotations

import os
import struct

import pytest

from collab import ws_frames
from collab.ws_frames import FrameError, FrameReader, accept_key, frame, unmask
from tests.wsframes import client_frame


class _Sink:
    def __init__(self, *, text_bytes: int = 1 << 20, binary_bytes: int = 1 << 20) -> None:
        self.messages: list[str | bytes] = []
        self.closes: list[int] = []
        self.written: list[bytes] = []
        self.reader = FrameReader(
            text_bytes=text_bytes,
            binary_bytes=binary_bytes,
            on_message=self.messages.append,
            on_close=self.closes.append,
            write=self.written.append,
        )


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 1000, 65535, 65536, 70001])
def test_unmask_is_the_xor_with_the_repeated_mask(size):
    data, mask = os.urandom(size), os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert unmask(data, mask) == expected
    assert unmask(bytearray(data), bytearray(mask)) == expected
    assert ws_frames._xor(data, mask) == expected  # without aiohttp's


def test_unmask_uses_aiohttp_s_unmasking():
    assert ws_frames._mask_in_place is not None


@pytest.mark.parametrize(("size", "header"), [(125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_a_frame_s_length_takes_the_shortest_form(size, header):
    built = frame(0x82, b"x" * size)
    assert len(built) == header + size
    assert built[0] == 0x82


def test_the_accept_key_is_rfc_6455_s_example():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_messages_come_out_whole_however_the_bytes_are_split():
    stream = (
        client_frame(0x1, "4hello ✓".encode())
        + client_frame(0x2, os.urandom(300))
        + client_frame(0x1, b"42[", fin=False)
        + client_frame(0x9, b"p")
        + client_frame(0x0, b'"x"]')
        + client_frame(0x2, os.urandom(70000))
    )
    whole = _Sink()
    whole.reader.feed(stream)
    assert len(whole.messages) == 4
    for step in (1, 7, 1000):
        split = _Sink()
        for at in range(0, len(stream), step):
            split.reader.feed(stream[at : at + step])
        assert split.messages == whole.messages
        assert split.written == whole.written == [frame(0x8A, b"p")]
    assert whole.messages[0] == "4hello ✓"
    assert whole.messages[2] == '42["x"]'


@pytest.mark.parametrize("aiohttp_s", [True, False], ids=["aiohttp-unmask", "xor"])
def test_each_message_comes_out_as_it_was_sent(aiohttp_s, monkeypatch):
    if not aiohttp_s:
        monkeypatch.setattr(ws_frames, "_mask_in_place", None)
    binary, big = os.urandom(300), os.urandom(70000)
    stream = (
        client_frame(0x1, "4hello ✓".encode())
        + client_frame(0x2, binary)
        + client_frame(0x2, b"")
        + client_frame(0x1, b"42[", fin=False)
        + client_frame(0x0, b'"x"]')
        + client_frame(0x2, big)
    )
    sink = _Sink()
    sink.reader.feed(stream)
    assert sink.messages == ["4hello ✓", binary, b"", '42["x"]', big]
    assert all(type(m) in (str, bytes) for m in sink.messages)


def test_a_close_frame_reports_its_code():
    sink = _Sink()
    sink.reader.feed(client_frame(0x8, struct.pack("!H", 1001) + b"bye"))
    sink.reader.feed(client_frame(0x8, b""))
    assert sink.closes == [1001, 1000]


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_a_message_past_its_limit_is_refused_from_the_header_of_the_frame_that_passes_it(kind):
    opcode = 0x1 if kind == "text" else 0x2
    sink = _Sink(text_bytes=100, binary_bytes=200)
    limit = 100 if kind == "text" else 200
    sink.reader.feed(client_frame(opcode, b"4" * (limit // 2), fin=False))
    header_only = client_frame(0x0, b"4" * (limit // 2 + 1))[:8]  # never the payload
    with pytest.raises(FrameError) as refused:
        sink.reader.feed(header_only)
    assert refused.value.code == 1009
    assert sink.messages == []
