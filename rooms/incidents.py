"""Repeated failures, counted instead of written one by one (sans-I/O).

A flood of refused connects, failed admin logins or bad requests must not
become a flood of log lines and audit rows. :class:`Incidents` lets the
first occurrence of each key in a window through (the caller logs or audits
it in full) and counts the rest; when the window is over, :meth:`drain`
hands back one summary per key that repeated, for one line or one record.
At most ``max_keys`` keys are tracked per window; the others are counted
under :data:`OTHER`, so a flood of distinct keys is bounded too.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["OTHER", "Incidents", "Repeats"]

#: The key that stands for every key past ``max_keys`` in one window.
OTHER = "other"


@dataclass(frozen=True, slots=True)
class Repeats:
    """``count`` more occurrences of ``key`` after the first, in the window
    that started at ``since``."""

    key: Hashable
    count: int
    since: float


class Incidents:
    """Counts of keyed failures per window of ``window_s`` seconds."""

    __slots__ = ("_counts", "_ended", "_started", "max_keys", "window_s")

    def __init__(self, *, window_s: float = 60.0, max_keys: int = 100) -> None:
        self.window_s = window_s
        self.max_keys = max_keys
        self._counts: dict[Hashable, int] = {}
        self._started = 0.0
        #: Summaries of windows that ended before anyone drained them.
        self._ended: list[Repeats] = []

    def note(self, key: Hashable, now: float) -> bool:
        """Count one occurrence of ``key``; True if it is the first in this
        window (report it in full), False if it is only counted."""
        if self._counts and now - self._started >= self.window_s:
            self._ended.extend(self._close())
        if not self._counts:
            self._started = now
        if key not in self._counts and len(self._counts) >= self.max_keys:
            key = OTHER
        count = self._counts.get(key, 0)
        self._counts[key] = count + 1
        return count == 0

    def drain(self, now: float, *, everything: bool = False) -> list[Repeats]:
        """Summaries of every window that has ended (keys that repeated);
        with ``everything``, of the current one too (when stopping)."""
        done, self._ended = self._ended, []
        if self._counts and (everything or now - self._started >= self.window_s):
            done.extend(self._close())
        return done

    def _close(self) -> list[Repeats]:
        repeats = [Repeats(k, n - 1, self._started) for k, n in self._counts.items() if n > 1]
        self._counts = {}
        return repeats
