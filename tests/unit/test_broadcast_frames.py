"""The fast path's frames are exactly what python-socketio and aiohttp send."""

from __future__ import annotations

import struct

import pytest
from socketio import packet

from collab.broadcast import _Attachment, binary_event_frames, binary_event_header_packet


def read_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Parse unmasked server→client WebSocket frames (RFC 6455 §5.2)."""
    frames = []
    pos = 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        assert second & 0x80 == 0, "server frames are not masked"
        length = second & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        frames.append((first, data[pos : pos + length]))
        pos += length
    return frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_frames_match_python_socketio(size):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    namespace = "/yjs|clinic-7/group-a"
    frames = read_frames(binary_event_frames(namespace, "sync-update", payload))
    assert [f[0] for f in frames] == [0x81, 0x82], "FIN + text, then FIN + binary"
    # python-socketio's own encoding of the same event (Engine.IO adds "4").
    expected = packet.Packet(packet.EVENT, namespace=namespace, data=["sync-update", payload])
    header, attachment = expected.encode()
    assert frames[0][1].decode() == "4" + header
    assert frames[1][1] == attachment == payload


def test_default_namespace():
    frames = read_frames(binary_event_frames("/", "awareness-update", b"\x01"))
    expected = packet.Packet(packet.EVENT, namespace="/", data=["awareness-update", b"\x01"])
    assert frames[0][1].decode() == "4" + expected.encode()[0]


def test_queued_packets_encode_like_python_socketio():
    """A recipient behind engine.io's queue gets the same two messages, and
    the attachment says when engine.io's writer takes it."""
    payload = b"\x00\x01update"
    namespace = "/yjs|r"
    written = []
    header = binary_event_header_packet(namespace, "sync-update")
    attachment = _Attachment(payload, lambda: written.append(True))
    expected = packet.Packet(packet.EVENT, namespace=namespace, data=["sync-update", payload])
    text, binary = expected.encode()
    assert header.encode() == "4" + text  # engine.io's MESSAGE packet, as written
    assert attachment.encode() == binary == payload
    assert attachment.binary and not header.binary
    assert written == [True]
