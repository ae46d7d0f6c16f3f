"""Lean framing for the load generator: Engine.IO v4 / Socket.IO v5 over a
WebSocket, and the y-websocket (y-protocols) messages of the Node peer.

Only what the harness needs, written for speed: a receiver recognizes a
binary event by its header frame and takes the next binary frame as its
attachment, without decoding JSON on the hot path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SocketIOFrames",
    "binary_event_frames",
    "connect_frame",
    "event_frame",
    "parse_text_frame",
    "yws_decode",
    "yws_sync_step_1",
    "yws_sync_step_2",
    "yws_update",
]

# Engine.IO packet types (text frames start with the digit).
EIO_OPEN, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE = "0", "1", "2", "3", "4"
# Socket.IO packet types (the digit after Engine.IO's "4").
SIO_CONNECT, SIO_DISCONNECT, SIO_EVENT, SIO_ACK, SIO_CONNECT_ERROR = "0", "1", "2", "3", "4"
SIO_BINARY_EVENT, SIO_BINARY_ACK = "5", "6"


def connect_frame(namespace: str, auth: dict[str, Any] | None = None) -> str:
    return f"40{namespace}," + json.dumps(auth or {}, separators=(",", ":"))


def binary_event_frames(
    namespace: str, event: str, payload: bytes, ack_id: int | None = None
) -> tuple[str, bytes]:
    """The two frames of a Socket.IO event with one binary argument."""
    ack = "" if ack_id is None else str(ack_id)
    header = json.dumps([event, {"_placeholder": True, "num": 0}], separators=(",", ":"))
    return f"451-{namespace},{ack}{header}", payload


def event_frame(namespace: str, event: str, data: Any, ack_id: int | None = None) -> str:
    ack = "" if ack_id is None else str(ack_id)
    return f"42{namespace},{ack}" + json.dumps([event, data], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class SocketIOFrames:
    """A parsed Socket.IO packet carried in an Engine.IO message frame."""

    kind: str  # one of the SIO_* digits
    namespace: str
    ack_id: int | None
    data: Any  # the decoded JSON array/object, or None
    attachments: int  # binary frames that follow


def parse_text_frame(text: str) -> SocketIOFrames | None:
    """A Socket.IO packet from an Engine.IO message frame (``4...``); None for
    other Engine.IO packets (open, ping, ...)."""
    if not text or text[0] != EIO_MESSAGE or len(text) < 2:
        return None
    kind = text[1]
    rest = text[2:]
    attachments = 0
    if kind in (SIO_BINARY_EVENT, SIO_BINARY_ACK):
        count, _, rest = rest.partition("-")
        attachments = int(count)
    namespace = "/"
    if rest.startswith("/"):
        namespace, _, rest = rest.partition(",")
    digits = 0
    while digits < len(rest) and rest[digits].isdigit():
        digits += 1
    ack_id = int(rest[:digits]) if digits else None
    body = rest[digits:]
    data = json.loads(body) if body else None
    return SocketIOFrames(kind, namespace, ack_id, data, attachments)


# -- y-websocket (the Node peer) -------------------------------------------------

_MESSAGE_SYNC = 0
_SYNC_STEP_1 = 0
_SYNC_STEP_2 = 1
_SYNC_UPDATE = 2


def _var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def yws_update(update: bytes) -> bytes:
    """A y-websocket sync message carrying one Yjs update."""
    return bytes([_MESSAGE_SYNC, _SYNC_UPDATE]) + _var_uint(len(update)) + update


def yws_sync_step_1(state_vector: bytes) -> bytes:
    """A y-websocket sync step 1 (what the provider sends once connected)."""
    return bytes([_MESSAGE_SYNC, _SYNC_STEP_1]) + _var_uint(len(state_vector)) + state_vector


def yws_sync_step_2(update: bytes) -> bytes:
    """A y-websocket sync step 2 (the answer to the server's step 1)."""
    return bytes([_MESSAGE_SYNC, _SYNC_STEP_2]) + _var_uint(len(update)) + update


def yws_decode(message: bytes) -> tuple[int, int, bytes] | None:
    """(message type, sync type, payload) of a y-websocket message, or None."""
    if len(message) < 2:
        return None
    kind, sync = message[0], message[1]
    value = shift = 0
    pos = 2
    while pos < len(message):
        byte = message[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return kind, sync, message[pos : pos + value]
        shift += 7
    return None
