"""Revocations as one node sees them (protocol.md §10.1): a cache of the
store's revocations, kept current by polling the store's revocation version.

Every node holds every unexpired revocation in memory, so a connect or an
export checks them without a round trip. The node that adds or deletes a
revocation applies it to its own cache at once; every other node reads the
version every ``poll_s`` (0.25 s) and reloads the list when it changed, then
calls ``on_new`` with the revocations it had not seen, so live connections
of a revoked token or user close within about ``poll_s`` on every node.
Expired revocations apply to nothing, and every ``purge_every_s`` a node
deletes them from the store.

A store that does not answer leaves the cache as it was (revocations already
known keep applying) and is asked again at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from rooms.store import Revocation, Store
from rooms.tasks import stop_if_cancelled

__all__ = ["POLL_S", "Revocations"]

log = logging.getLogger("collab.rooms")

#: How often a node looks at the store's revocation version (seconds).
POLL_S = 0.25
#: How often a node deletes expired revocations from the store (seconds).
PURGE_EVERY_S = 60.0


def _wall_ms() -> float:
    return time.time() * 1000.0


class Revocations:
    """This node's view of the store's revocations."""

    def __init__(
        self,
        store: Store,
        *,
        on_new: Callable[[list[Revocation]], None] = lambda _new: None,
        poll_s: float = POLL_S,
        purge_every_s: float = PURGE_EVERY_S,
        clock_ms: Callable[[], float] = _wall_ms,
    ) -> None:
        self.store = store
        self.on_new = on_new
        self.poll_s = poll_s
        self.purge_every_s = purge_every_s
        self.clock_ms = clock_ms
        self._by_id: dict[str, Revocation] = {}
        self._version: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._version is not None

    def current(self) -> list[Revocation]:
        """Unexpired revocations, oldest first."""
        now = self.clock_ms()
        live = [r for r in self._by_id.values() if r.until_ms > now]
        return sorted(live, key=lambda r: (r.created_ms, r.id))

    def match(self, *, sub: str, jti: str | None, room: str | None) -> Revocation | None:
        """The revocation that applies to a token of ``sub`` (``jti``) in
        ``room`` (None: any room, for a check that is not about one), or None."""
        now = self.clock_ms()
        for revocation in self._by_id.values():
            if revocation.applies(sub=sub, jti=jti, room=room, now_ms=now):
                return revocation
        return None

    async def ensure_loaded(self) -> None:
        """Load the revocations if this node never has (OSError if the store fails)."""
        if self._version is None:
            await self.refresh()

    async def refresh(self) -> list[Revocation]:
        """Reload if the store's version changed; call ``on_new`` with (and
        return) the revocations this node had not seen. OSError if the store fails."""
        async with self._lock:
            version = await self.store.revocation_version()
            if version == self._version:
                return []
            version, stored = await self.store.load_revocations()
            new = [r for r in stored if r.id not in self._by_id]
            self._by_id = {r.id: r for r in stored}
            self._version = version
        if new:
            self.on_new(new)
        return new

    async def add(self, revocation: Revocation) -> None:
        """Store ``revocation`` and apply it here now (``on_new``); OSError if
        the store fails (nothing is applied then)."""
        await self.store.add_revocation(revocation)
        self._by_id[revocation.id] = revocation
        self.on_new([revocation])

    async def delete(self, revocation_id: str) -> bool:
        """Lift a revocation everywhere; False if the store has none of that id."""
        deleted = await self.store.delete_revocation(revocation_id)
        self._by_id.pop(revocation_id, None)
        return deleted

    async def purge(self) -> int:
        """Delete expired revocations from the store and this cache."""
        now = self.clock_ms()
        count = await self.store.purge_revocations(now)
        for revocation_id in [r.id for r in self._by_id.values() if r.until_ms <= now]:
            del self._by_id[revocation_id]
        return count

    def start(self) -> None:
        """Poll in the background (until :meth:`close`)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time() + self.purge_every_s
        failing = False
        while True:
            try:
                await self.refresh()
                if loop.time() >= next_purge:
                    next_purge = loop.time() + self.purge_every_s
                    purged = await self.purge()
                    if purged:
                        log.info("expired revocations purged count=%d", purged)
                if failing:
                    log.info("revocations readable again")
                failing = False
            except OSError as exc:
                stop_if_cancelled()
                if not failing:
                    log.warning("revocations unreadable, keeping those known: %s", exc)
                failing = True
            stop_if_cancelled()
            await asyncio.sleep(self.poll_s)
