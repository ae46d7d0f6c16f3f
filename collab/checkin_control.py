"""Check-ins on the Socket.IO side (protocol.md §6.9): a member's
``checkin:answer`` and anyone's ``checkin:results``. The facilitator's
``mod:checkin`` is moderation (collab.room_control runs
rooms.checkins.moderate_checkin).

An answer is stored before it is acknowledged; an anonymous one is stored
by compacting meta (the newest counts replace the log that held the older
ones), and its update is told to extensions without its author. Logs carry
ids and sizes, never answers or receipts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from collab.connections import Connection, ConnectionTable
from collab.emitter import Emitter
from collab.errors import RateLimited
from collab.logs import user_ref
from collab.wire import ack_error, ack_ok, one_argument
from crdt.errors import CollabError, InvalidPayload
from crdt.types import RoomId, UserId
from rooms.checkin_seal import CheckinVault
from rooms.checkins import (
    CHECKIN_ANSWER_EVENT,
    CHECKIN_RESULTS_EVENT,
    Answered,
    answer_checkin,
    checkin_results,
)
from rooms.errors import StoreUnavailable
from rooms.names import META
from rooms.ratelimit import Rate, TokenBucket
from rooms.registry import RoomRegistry
from rooms.room import Room

__all__ = ["ANSWER_RATE", "CheckinControl"]

log = logging.getLogger("collab.sync")

SYNC_UPDATE = "sync-update"

#: Each user's answers in a room (protocol.md §8.2): an anonymous answer
#: compacts meta, so they are few.
ANSWER_RATE = Rate(per_s=1.0, burst=5.0)
#: Users whose answer rates a node keeps before it forgets them all.
_MAX_BUCKETS = 10_000

Handler = Callable[..., Awaitable[dict[str, Any]]]


class CheckinControl:
    """The handlers of ``checkin:answer`` and ``checkin:results``."""

    def __init__(
        self,
        connections: ConnectionTable,
        registry: RoomRegistry,
        emitter: Emitter,
        vault: CheckinVault,
    ) -> None:
        self.connections = connections
        self.registry = registry
        self.emitter = emitter
        self.vault = vault
        self._rates: dict[tuple[RoomId, UserId], TokenBucket] = {}

    def handlers(self) -> dict[str, Handler]:
        """Event name → handler, for collab.sync to register."""
        return {
            CHECKIN_ANSWER_EVENT: self.on_answer,
            CHECKIN_RESULTS_EVENT: self.on_results,
        }

    def _take_answer(self, conn: Connection) -> None:
        """RateLimited past the user's answers in the room (a burst, then a
        steady rate); refused answers do not count."""
        now = time.monotonic()
        key = (conn.room_id, conn.identity.user_id)
        bucket = self._rates.get(key)
        if bucket is None:
            if len(self._rates) >= _MAX_BUCKETS:
                self._rates.clear()
            bucket = self._rates[key] = ANSWER_RATE.bucket(now)
        if not bucket.take(now):
            raise RateLimited("check-in answers past the limit; wait a moment")

    async def on_answer(self, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        """``checkin:answer {id, value, receipt?}`` → ack ``{ok, id, changed,
        receipt?}`` once stored (``receipt``: anonymous check-ins)."""
        conn = self.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, CHECKIN_ANSWER_EVENT, "events"))
        answered: Answered | None = None
        try:
            payload = one_argument(args)
            async with self.registry.use(conn.room_id) as room:
                meta = room.docs[META]
                await self.registry.settle(meta)  # another node's write of this answer
                answered = answer_checkin(
                    room,
                    conn.identity,
                    payload,
                    self.vault,
                    before_write=lambda: self._take_answer(conn),
                )
                await self._store(room, conn, answered)
        except CollabError as exc:
            self.emitter.refused(conn, CHECKIN_ANSWER_EVENT, exc)
            refusal = ack_error(exc)
            if answered is not None and answered.receipt is not None:
                # Not stored yet, but it stands (written when the store is
                # back): changing it again needs its receipt.
                refusal["receipt"] = answered.receipt
            return refusal
        log.info(
            "checkin answer room=%s id=%s user=%s changed=%s",
            conn.room_id,
            answered.checkin.id,
            user_ref(conn.identity.user_id),
            str(answered.changed).lower(),
        )
        extra = {"receipt": answered.receipt} if answered.receipt is not None else {}
        return ack_ok(id=answered.checkin.id, changed=answered.changed, **extra)

    async def _store(self, room: Room, conn: Connection, answered: Answered) -> None:
        """Relay the answer's updates, then store them (an anonymous one by
        compacting meta); StoreUnavailable if the store did not take them
        (they are kept and written later: the answer stands, the member
        may send it again)."""
        meta = room.docs[META]
        anonymous = answered.checkin.anonymous
        for update in answered.updates:
            self.emitter.broadcast(room.id, META, SYNC_UPDATE, update)
            # An anonymous answer's author is not told to extensions.
            self.emitter.changed(room.id, META, update, None if anonymous else conn.identity)
        try:
            await self.registry.flush_document(room, meta, force_compact=anonymous)
        except OSError as exc:
            if anonymous:
                meta.compact_due = True
            log.warning("checkin answer not stored room=%s: %s", room.id, exc)
        if anonymous:
            meta.purge_memory()
        if any(meta.is_pending(u) for u in answered.updates):
            raise StoreUnavailable("the answer could not be stored yet; send it again")

    async def on_results(self, namespace: str, sid: str, *args: Any) -> dict[str, Any]:
        """``checkin:results {id?}`` → ack ``{ok, checkin}`` or ``{ok,
        checkins}`` (rooms.checkins.checkin_results says who sees what)."""
        conn = self.connections.get(sid)
        if conn is None:
            return ack_error(InvalidPayload("not connected"))
        if not conn.quota.events.take(time.monotonic()):
            return ack_error(await self.emitter.rate_limited(conn, CHECKIN_RESULTS_EVENT, "events"))
        try:
            payload = one_argument(args) if args else {}
            async with self.registry.use(conn.room_id) as room:
                results = checkin_results(room, conn.identity, payload, self.vault)
        except CollabError as exc:
            self.emitter.refused(conn, CHECKIN_RESULTS_EVENT, exc)
            return ack_error(exc)
        if "checkins" in results:
            return ack_ok(**results)
        return ack_ok(checkin=results)
