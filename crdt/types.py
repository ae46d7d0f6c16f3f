"""Names for the values that cross layers: ids and binary payloads."""

from __future__ import annotations

from typing import NewType

__all__ = ["ClientId", "DocName", "RoomId", "StateVector", "Update", "UserId"]

#: A room's id as it appears in a namespace (``/yjs|<room>``).
RoomId = NewType("RoomId", str)
#: A document of a room: ``board`` (the default), ``chat``, ``meta`` or a board name.
DocName = NewType("DocName", str)
#: Who a connection speaks for (assigned by the server, later from the token ``sub``).
UserId = NewType("UserId", str)
#: A Yjs client id (a document replica), as used in awareness.
ClientId = NewType("ClientId", int)

#: A Yjs v1 update (``Y.encodeStateAsUpdate`` / the ``update`` event).
Update = bytes
#: A Yjs v1 state vector (``Y.encodeStateVector``).
StateVector = bytes
