"""Authenticating what nodes write to Redis (protocol.md §10.3).

Everything a node writes for the others (an envelope on a channel, a log
entry in a stream, a snapshot, a tombstone) carries an HMAC-SHA256 under a
key derived from ``--cluster-key``. The MAC covers the exact payload bytes
and a context that names what the bytes are and where they belong::

    msgpack([domain, kind, origin, room, doc, seq, position, len(payload)]) || payload

``kind`` is ``update`` (a log entry and the envelope announcing it carry the
same MAC), ``awareness``, ``control``, ``snapshot`` or ``tombstone``; so
bytes cannot be replayed as another kind, into another room or document,
at another sequence number, or under another node's name. ``position`` is
a snapshot's stream id (what it covers) or a tombstone's epoch. What the MAC
does not cover, and why, is in protocol.md §10.3 (stream ids of log
entries: Redis assigns them).

Sans-I/O: bytes in, bytes out. Without a key (``--dev`` only) nothing is
signed and everything verifies: nodes then trust whoever can write to Redis.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

import msgpack

from rooms.envelope import Envelope, EnvelopeKind

__all__ = ["MAC_BYTES", "ClusterMac", "MacKind"]

MAC_BYTES = 32
_DOMAIN = "collab/redis-mac/v1"


class MacKind(StrEnum):
    UPDATE = "update"
    AWARENESS = "awareness"
    CONTROL = "control"
    SNAPSHOT = "snapshot"
    TOMBSTONE = "tombstone"


_ENVELOPE_KINDS = {
    EnvelopeKind.UPDATE: MacKind.UPDATE,
    EnvelopeKind.AWARENESS: MacKind.AWARENESS,
    EnvelopeKind.CONTROL: MacKind.CONTROL,
}


class ClusterMac:
    """Signs and verifies under one cluster key; without one, does neither."""

    __slots__ = ("_key",)

    def __init__(self, cluster_key: str | bytes | None) -> None:
        if cluster_key:
            raw = cluster_key.encode() if isinstance(cluster_key, str) else cluster_key
            # A key of its own for this use, whatever else the cluster key is for.
            self._key: bytes | None = hmac.digest(raw, _DOMAIN.encode(), "sha256")
        else:
            self._key = None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def sign(
        self,
        kind: MacKind,
        *,
        room: str,
        doc: str = "",
        origin: str = "",
        seq: int = 0,
        position: str = "",
        payload: bytes = b"",
    ) -> bytes:
        """The MAC of ``payload`` in its context (empty without a key)."""
        if self._key is None:
            return b""
        header: bytes = msgpack.packb(
            [_DOMAIN, kind.value, origin, room, doc, seq, position, len(payload)],
            use_bin_type=True,
        )
        mac = hmac.new(self._key, header, hashlib.sha256)
        mac.update(payload)
        return mac.digest()

    def verify(
        self,
        mac: bytes,
        kind: MacKind,
        *,
        room: str,
        doc: str = "",
        origin: str = "",
        seq: int = 0,
        position: str = "",
        payload: bytes = b"",
    ) -> bool:
        """Whether ``mac`` is the MAC of ``payload`` in this context (always,
        without a key)."""
        if self._key is None:
            return True
        expected = self.sign(
            kind, room=room, doc=doc, origin=origin, seq=seq, position=position, payload=payload
        )
        return len(mac) == MAC_BYTES and hmac.compare_digest(mac, expected)

    def seal(self, envelope: Envelope) -> Envelope:
        """``envelope`` with its MAC (awareness and control; update envelopes
        are built by the append script with the log entry's MAC)."""
        return Envelope(
            envelope.kind,
            envelope.origin,
            envelope.room,
            envelope.doc,
            envelope.seq,
            envelope.stream_id,
            envelope.payload,
            self.sign(
                _ENVELOPE_KINDS[envelope.kind],
                room=envelope.room,
                doc=envelope.doc,
                origin=envelope.origin,
                seq=envelope.seq,
                payload=envelope.payload,
            ),
        )

    def verify_envelope(self, envelope: Envelope) -> bool:
        """Whether a node holding the cluster key wrote ``envelope`` as it is
        (its stream id aside, which Redis assigned)."""
        return self.verify(
            envelope.mac,
            _ENVELOPE_KINDS[envelope.kind],
            room=envelope.room,
            doc=envelope.doc,
            origin=envelope.origin,
            seq=envelope.seq,
            payload=envelope.payload,
        )
