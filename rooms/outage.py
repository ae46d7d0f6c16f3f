"""Store outages: whether the store takes writes, and what that means for a
room's saving state (protocol.md §11). No I/O: the persister reports each
write's outcome to :class:`StoreHealth` and asks :func:`next_saving` what a
room's state becomes after a flush round.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rooms.room import Room, SavingState

__all__ = ["StoreHealth", "next_saving"]

log = logging.getLogger("collab.rooms")

#: While writes keep failing, one log line this often (not one per attempt).
_LOG_EVERY_S = 60.0


@dataclass(slots=True)
class StoreHealth:
    """Whether the store takes writes, from the outcome of each write.

    ``failing_since`` is set by the first failed write and cleared by the
    next one that succeeds. ``lost`` is set for good when the store's files
    are gone (a FileNotFoundError: the data directory was deleted or
    replaced): memory then holds the only copy of every loaded document,
    and the node must be restarted (rooms.recovery keeps what it holds).
    """

    clock: Callable[[], float] = time.monotonic
    failing_since: float | None = None
    #: The last failure's reason (the store's message: never content).
    last_error: str = ""
    lost: bool = False
    #: Failed write attempts of any kind (updates, chat, audit, records, probes).
    write_failures: int = 0
    #: Failed writes whose updates went back to memory for a retry.
    writes_delayed: int = 0
    _logged_at: float = field(default=0.0, repr=False)

    @property
    def ok(self) -> bool:
        return self.failing_since is None

    def failing_for(self) -> float:
        """Seconds since writes started failing (0 while they work)."""
        return 0.0 if self.failing_since is None else self.clock() - self.failing_since

    def failed(self, exc: OSError, *, delayed: bool = False) -> None:
        """A write failed; ``delayed``: its updates are kept for a retry."""
        now = self.clock()
        self.write_failures += 1
        if delayed:
            self.writes_delayed += 1
        if isinstance(exc, FileNotFoundError) and not self.lost:
            self.lost = True
            log.critical(
                "the store's files are gone: %s; memory holds the only copy of the loaded "
                "rooms until a restart (a stop writes them to a recovery file)",
                exc,
            )
        self.last_error = str(exc) or type(exc).__name__
        if self.failing_since is None:
            self.failing_since = now
            self._logged_at = now
            log.error(
                "store writes failing: %s; changes are kept in memory, chat is refused",
                self.last_error,
            )
        elif now - self._logged_at >= _LOG_EVERY_S:
            self._logged_at = now
            log.error(
                "store writes still failing after %.0f s (%d failed writes): %s",
                now - self.failing_since,
                self.write_failures,
                self.last_error,
            )

    def succeeded(self) -> None:
        """A write went through (not after the files were lost: nothing
        written since went where the next start reads)."""
        if self.failing_since is None or self.lost:
            return
        log.warning("store writes again after %.1f s", self.clock() - self.failing_since)
        self.failing_since = None


def next_saving(room: Room, *, failed: bool, now: float, window_s: float) -> SavingState | None:
    """The saving state ``room`` moves to after a flush round in which the
    store failed (``failed``) or not; None if it stays.

    OK once the store has all of the room's changes; DELAYED at the first
    failed round with changes unsaved; READ_ONLY when it has been DELAYED
    for ``window_s`` (``now``: the clock of ``Room.saving_delayed_since``).
    """
    if room.unsaved_since is None:
        return SavingState.OK if room.saving is not SavingState.OK else None
    if not failed:
        return None
    if room.saving is SavingState.OK:
        return SavingState.DELAYED
    since = room.saving_delayed_since
    if room.saving is SavingState.DELAYED and since is not None and now - since >= window_s:
        return SavingState.READ_ONLY
    return None
