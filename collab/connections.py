"""This node's Socket.IO connections: one :class:`Connection` per document
namespace a client joined, found by its sid (every event) or by its room
(room-wide events: ``room:state``, closes, the admin API's counts)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from collab.admission import Quota
from collab.sessions import Session
from crdt.types import DocName, RoomId, UserId
from rooms.document import Document
from rooms.identity import Identity

__all__ = ["Connection", "ConnectionTable"]


@dataclass(slots=True)
class Connection:
    """One Socket.IO connection to one document namespace."""

    sid: str
    namespace: str
    room_id: RoomId
    doc_name: DocName
    #: Who the connection is in the room: :attr:`token_identity` with the
    #: room's role override, if any (RoomControl.refresh_roles keeps it current).
    identity: Identity
    doc: Document
    quota: Quota = field(repr=False)
    #: Who the token says the connection is (the role before any override).
    token_identity: Identity = field(repr=False)
    #: The Engine.IO session it came over (None only without the session guard).
    session: Session | None = field(default=None, repr=False)
    expiry: asyncio.TimerHandle | None = field(default=None, repr=False)
    #: The server's own sync step, due when the client's step has been
    #: answered or after a wait (collab.sync: the timer of that wait; None
    #: once it is on its way).
    server_step: asyncio.TimerHandle | None = field(default=None, repr=False)

    def take_server_step(self) -> bool:
        """Whether the server's step is still due (then it is no longer:
        the caller sends it)."""
        timer = self.server_step
        if timer is None:
            return False
        timer.cancel()
        self.server_step = None
        return True


class ConnectionTable:
    """The node's connections by sid and by room. The connect and disconnect
    handlers add and remove them; everyone else reads."""

    def __init__(self) -> None:
        #: Every connection by sid. A handler looks its sid up here once per
        #: event: a plain dict, no method call in between.
        self.by_sid: dict[str, Connection] = {}
        self._by_room: dict[RoomId, set[str]] = {}
        #: The connection of a sid, or None (``by_sid.get`` itself).
        self.get = self.by_sid.get

    def __len__(self) -> int:
        return len(self.by_sid)

    def add(self, conn: Connection) -> None:
        self.by_sid[conn.sid] = conn
        self._by_room.setdefault(conn.room_id, set()).add(conn.sid)

    def remove(self, sid: str) -> Connection | None:
        """Take ``sid`` out; its connection, or None if it had none."""
        conn = self.by_sid.pop(sid, None)
        if conn is not None:
            members = self._by_room.get(conn.room_id)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self._by_room[conn.room_id]
        return conn

    def sids_in(self, room_id: RoomId) -> list[str]:
        """The sids connected to ``room_id`` now (a copy: a caller that awaits
        between them looks each one up again, and may find it gone)."""
        return list(self._by_room.get(room_id, ()))

    def count_in(self, room_id: RoomId) -> int:
        return len(self._by_room.get(room_id, ()))

    def in_room(self, room_id: RoomId, doc: DocName | None = None) -> list[Connection]:
        """The connections to ``room_id`` (to its document ``doc``, if given)."""
        conns = (self.by_sid.get(sid) for sid in self._by_room.get(room_id, ()))
        return [c for c in conns if c is not None and (doc is None or c.doc_name == doc)]

    def of_user(self, room_id: RoomId, user_id: UserId) -> list[Connection]:
        """``user_id``'s connections to ``room_id``, whatever their documents."""
        return [c for c in self.in_room(room_id) if c.identity.user_id == user_id]

    def all(self) -> list[Connection]:
        """Every connection now (a copy)."""
        return list(self.by_sid.values())
