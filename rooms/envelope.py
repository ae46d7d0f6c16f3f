"""Envelopes: what nodes say to each other on a document's Redis channel
(docs/architecture.md §6). Parsed and serialized here and nowhere else; never pickle.

Wire form: a msgpack array, version first::

    [2, kind, origin, room, doc, seq, stream_id, payload, mac]

``kind``: 1 update (``payload`` is a Yjs update, ``seq`` the document's
sequence number and ``stream_id`` its entry in the document's stream), 2
awareness (a y-protocols awareness update; ``seq`` 0, no stream id), 3
control (``payload`` is a msgpack map, e.g. ``{"action": "delete"}``).
``mac`` is the HMAC-SHA256 of the rest under the cluster key
(rooms.integrity; empty without a key, in ``--dev``).

Update envelopes are built by the append script inside Redis (Lua's
``cmsgpack``), which writes every string as msgpack ``str``; Python writes
payloads as ``bin``. The parser reads both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack

from crdt.errors import CollabError, CrdtCode

__all__ = ["VERSION", "ControlAction", "Envelope", "EnvelopeKind", "MalformedEnvelope"]

VERSION = 2
MAX_ENVELOPE_BYTES = 64 << 20


class MalformedEnvelope(CollabError):
    """Bytes on a channel that are not an envelope this node understands."""

    code = CrdtCode.INVALID_PAYLOAD


class EnvelopeKind(IntEnum):
    UPDATE = 1
    AWARENESS = 2
    CONTROL = 3


class ControlAction:
    #: The room was deleted: a receiving node checks the room's tombstone
    #: (it is the proof), then closes its connections and drops it.
    DELETE = "delete"
    #: An event for the room's connections (``{"action", "event", "data"}``:
    #: a session activity's, such as a reaction, protocol.md §6.6): each node
    #: sends it to its own connections of the room. Nothing is stored.
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: EnvelopeKind
    origin: str
    room: str
    doc: str
    seq: int
    stream_id: str | None
    payload: bytes
    #: HMAC-SHA256 under the cluster key (rooms.integrity); empty without one.
    mac: bytes = b""

    def serialize(self) -> bytes:
        data: bytes = msgpack.packb(
            [
                VERSION,
                int(self.kind),
                self.origin,
                self.room,
                self.doc,
                self.seq,
                self.stream_id,
                self.payload,
                self.mac,
            ],
            use_bin_type=True,
        )
        return data

    @classmethod
    def parse(cls, data: bytes) -> Envelope:
        """The envelope in ``data``; MalformedEnvelope for anything else."""
        if not isinstance(data, bytes | bytearray) or len(data) > MAX_ENVELOPE_BYTES:
            raise MalformedEnvelope("not an envelope")
        try:
            items = msgpack.unpackb(data, raw=True, strict_map_key=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            raise MalformedEnvelope("not msgpack") from None
        if not isinstance(items, list) or not items:
            raise MalformedEnvelope("not an envelope")
        if items[0] != VERSION:
            raise MalformedEnvelope(f"unsupported envelope version {items[0]!r}")
        if len(items) != 9:
            raise MalformedEnvelope("not a 9-item envelope")
        _, kind, origin, room, doc, seq, stream_id, payload, mac = items
        try:
            kind = EnvelopeKind(kind)
        except ValueError:
            raise MalformedEnvelope(f"unknown envelope kind {kind!r}") from None
        if not isinstance(seq, int) or seq < 0 or not isinstance(payload, bytes):
            raise MalformedEnvelope("bad sequence or payload")
        if not isinstance(mac, bytes):
            raise MalformedEnvelope("bad MAC")
        try:
            return cls(
                kind,
                _text(origin),
                _text(room),
                _text(doc),
                seq,
                None if stream_id is None else _text(stream_id),
                payload,
                mac,
            )
        except UnicodeDecodeError:
            raise MalformedEnvelope("text fields must be UTF-8") from None

    def control(self) -> dict[str, Any]:
        """The payload of a control envelope as a map."""
        try:
            value = msgpack.unpackb(self.payload, raw=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            raise MalformedEnvelope("control payload is not msgpack") from None
        if not isinstance(value, dict):
            raise MalformedEnvelope("control payload must be a map")
        return value

    @staticmethod
    def control_payload(action: str, **fields: Any) -> bytes:
        data: bytes = msgpack.packb({"action": action, **fields}, use_bin_type=True)
        return data


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise MalformedEnvelope("expected a string field")
