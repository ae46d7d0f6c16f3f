"""Token buckets: how fast a client may send, sans-I/O (the caller passes the clock).

A bucket holds up to ``burst`` tokens and gains ``per_s`` a second; an
action costing ``n`` is allowed when ``n`` tokens are there, and takes them.
So a client may send ``burst`` at once, then ``per_s`` a second for as long
as it likes, and an idle client is back to a full burst after
``burst / per_s`` seconds (protocol.md §8).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rate", "TokenBucket"]


@dataclass(frozen=True, slots=True)
class Rate:
    """A steady rate and the burst allowed on top of it (``burst`` ≥ 1)."""

    per_s: float
    burst: float

    def bucket(self, now: float) -> TokenBucket:
        return TokenBucket(self, now)


class TokenBucket:
    """One client's allowance under a :class:`Rate`."""

    __slots__ = ("_at", "_tokens", "rate")

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self._tokens = float(rate.burst)
        self._at = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are that many; return whether it was
        allowed. A refused action takes nothing (so a cost above the burst is
        always refused: settings keep the bursts above the message limits)."""
        tokens = self._tokens + (now - self._at) * self.rate.per_s
        if tokens > self.rate.burst:
            tokens = self.rate.burst
        self._at = now
        if cost <= tokens:
            self._tokens = tokens - cost
            return True
        self._tokens = tokens
        return False

    def level(self, now: float) -> float:
        """Tokens available at ``now`` (for tests and metrics)."""
        return min(self._tokens + (now - self._at) * self.rate.per_s, float(self.rate.burst))
