"""Socket.IO packets held to what collab's events use (protocol.md §8).

python-socketio decodes a packet's header and then buffers as many binary
frames as the header announces before it looks at them: a header declaring
a million attachments made the server keep every frame that followed. Its
placeholders are used as list indexes as they are, so ``"num": -1`` picked
the last attachment and a string, a float or an index past the end left the
packet waiting forever.

Every collab event carries at most one binary argument, so
:class:`CollabPacket` (python-socketio's ``serializer=`` hook, a public
option) refuses, from the header and before anything is buffered:

* a binary packet announcing other than exactly one attachment, and any
  other packet announcing attachments at all;
* a binary packet whose data does not hold exactly one placeholder
  ``{"_placeholder": true, "num": 0}`` (``num`` an integer in range, not a
  bool).

The refusal is :class:`collab.errors.InvalidPacket`; the caller (collab's
session guard) answers it and counts it against the connection.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from engineio import json as engineio_json
from socketio import packet as sio_packet

from collab.errors import InvalidPacket

__all__ = ["MAX_ATTACHMENTS", "CollabPacket"]

#: Binary attachments of one packet: collab's events take one binary argument.
MAX_ATTACHMENTS = 1

_BINARY = (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK)


def _bounded_int(digits: str) -> int:
    """An integer of at most 100 characters, as engine.io's json module parses them."""
    if len(digits) > 100:
        raise ValueError("Integer is too large")
    return int(digits)


#: engine.io's ``loads`` with one decoder made once: ``json.loads`` makes a
#: decoder (and its scanner) at every call that passes an option, as
#: engine.io's passes ``parse_int``.
_DECODER = json.JSONDecoder(parse_int=_bounded_int)


class _Json:
    """The two functions python-socketio's packets call on their ``json``
    (engine.io's json module by default). Encoding is orjson's: several times
    faster on every event, ack and CONNECT the server sends, compact as
    ``separators=(",", ":")`` asks (non-ASCII as UTF-8, not escaped); what it
    cannot encode (a key that is not a string, an integer past 64 bits, a
    lone surrogate) is encoded by the json module as before. Decoding is
    engine.io's (the json module, integers of at most 100 digits) with one
    decoder made once (2.3 µs less per packet): orjson would read an integer
    past 64 bits as a float and take what engine.io refuses."""

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        try:
            return orjson.dumps(obj).decode("utf-8")
        except TypeError:
            return json.dumps(obj, separators=(",", ":"))

    @staticmethod
    def loads(text: Any, **kwargs: Any) -> Any:
        if kwargs or not isinstance(text, str):
            return engineio_json.loads(text, **kwargs)
        return _DECODER.decode(text)


class CollabPacket(sio_packet.Packet):  # type: ignore[misc]
    """python-socketio's packet, refusing what collab's events never send."""

    json = _Json

    def decode(self, encoded_packet: Any) -> int:
        if not isinstance(encoded_packet, str):
            # A binary frame is only ever an attachment of an announced packet.
            raise InvalidPacket("a binary frame no packet announced")
        try:
            attachments = int(super().decode(encoded_packet) or 0)
        except (ValueError, TypeError, RecursionError):  # bad JSON, bad header
            raise InvalidPacket("a packet that does not decode") from None
        if self.packet_type in _BINARY:
            if attachments != MAX_ATTACHMENTS:
                raise InvalidPacket(
                    f"a binary packet must announce {MAX_ATTACHMENTS} attachment, not {attachments}"
                )
            found = _placeholders(self.data)
            if len(found) != 1 or not _valid_placeholder(found[0], attachments):
                raise InvalidPacket("a binary packet needs one placeholder, numbered 0")
        elif attachments:
            raise InvalidPacket("only binary packets carry attachments")
        return attachments


def _placeholders(data: Any, depth: int = 0) -> list[dict[str, Any]]:
    """Every placeholder object in ``data`` (bounded depth: JSON is flat here)."""
    if depth > 32:
        raise InvalidPacket("packet data nested too deep")
    if isinstance(data, dict):
        if data.get("_placeholder"):
            return [data]
        return [p for value in data.values() for p in _placeholders(value, depth + 1)]
    if isinstance(data, list):
        return [p for value in data for p in _placeholders(value, depth + 1)]
    return []


def _valid_placeholder(placeholder: dict[str, Any], attachments: int) -> bool:
    num = placeholder.get("num")
    return (
        placeholder.get("_placeholder") is True
        and type(num) is int
        and 0 <= num < attachments
        and set(placeholder) == {"_placeholder", "num"}
    )
