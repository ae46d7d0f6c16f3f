"""Audit records and log lines for what can repeat (issue 12, finding 8).

A refused connect, a refused event or a reconnect is worth one record; two
thousand of them in a second are worth one record and a count. A
:class:`Reporter` writes the first occurrence of each kind per window in
full and counts the rest (:class:`rooms.incidents.Incidents`); when the
window is over, :meth:`Reporter.flush` writes one summary each: an audit
record whose detail ends in ``repeats=N``, a log line with the count. So a
flood costs a bounded number of rows and lines however fast it comes, and
every kind of event that happened is still on record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from crdt.types import RoomId, UserId
from rooms.audit import AuditAction
from rooms.identity import Identity
from rooms.incidents import OTHER, Incidents
from rooms.registry import RoomRegistry

__all__ = ["Reporter"]

log = logging.getLogger("collab.sync")

#: Seconds between looks for windows that ended.
_FLUSH_EVERY_S = 5.0


class _AuditKey(NamedTuple):
    action: AuditAction
    room: RoomId | None
    user: UserId | None
    role: str | None
    outcome: str
    detail: str


class Reporter:
    """Coalesced audit records (into ``registry``) and log lines."""

    def __init__(
        self,
        registry: RoomRegistry,
        *,
        window_s: float = 60.0,
        max_keys: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.window_s = window_s
        self._audits = Incidents(window_s=window_s, max_keys=max_keys)
        self._lines = Incidents(window_s=window_s, max_keys=max_keys)
        self._task: asyncio.Task[None] | None = None

    def audit(
        self,
        action: AuditAction,
        *,
        room: RoomId | None = None,
        identity: Identity | None = None,
        outcome: str = "ok",
        detail: str = "",
        user_id: UserId | None = None,
    ) -> None:
        """An audit record, written now if it is the first of its kind (same
        action, room, user, role, outcome and detail) this window."""
        user = identity.user_id if identity is not None else user_id
        role = identity.role.value if identity is not None else None
        key = _AuditKey(action, room, user, role, outcome, detail)
        if self._audits.note(key, self.clock()):
            self.registry.audit(
                action, room=room, identity=identity, outcome=outcome, detail=detail, user_id=user
            )

    def line(self, kind: Hashable, message: str, *args: Any) -> None:
        """An info log line, written now if it is the first of ``kind`` this
        window (``kind`` should name what repeats: a reason and an address)."""
        if self._lines.note(kind, self.clock()):
            log.info(message, *args)

    def flush(self, *, everything: bool = False) -> None:
        """Write one summary for each kind that repeated in a window now over
        (``everything``: in the current window too)."""
        now = self.clock()
        for repeats in self._audits.drain(now, everything=everything):
            key = repeats.key
            if not isinstance(key, _AuditKey):  # OTHER: past max_keys kinds this window
                self.registry.audit(
                    AuditAction.REFUSED,
                    outcome="repeated",
                    detail=f"{OTHER} repeats={repeats.count}",
                )
                continue
            self.registry.audit(
                key.action,
                room=key.room,
                user_id=key.user,
                role=key.role,
                outcome=key.outcome,
                detail=f"{key.detail} repeats={repeats.count}".strip(),
            )
        for repeats in self._lines.drain(now, everything=everything):
            log.info(
                "repeated %d more times in %.0f s: %s", repeats.count, self.window_s, repeats.key
            )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop, and write what has been counted so far."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush(everything=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY_S)
            self.flush()
