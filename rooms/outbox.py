"""The webhook outbox: what waits to be delivered, and when to try again
(docs/architecture.md §12, protocol.md §10.5).

Sans-I/O: records, the retry schedule, the signature a delivery carries and
the MAC of a record kept in Redis. The stores keep :class:`OutboxEntry`
records (:class:`rooms.store.OutboxStore`); ``collab.webhooks`` writes them
and delivers them.

An entry is one event for one endpoint. Its ``body`` is the exact JSON sent
(``{id, type, created_ms, room, data}``); what varies per attempt (the
signature's timestamp) is computed when it is sent, so a retry sends the
same bytes under the same ``Collab-Event-Id``.

Claiming is a lease: :meth:`~rooms.store.OutboxStore.outbox_claim` moves a
due entry's ``next_ms`` to the end of the lease in the same step as it reads
it, so no other claim (another node's, on a shared store) returns it until
then. The deliverer then deletes it (delivered), reschedules it (failed) or
the lease runs out (the node stopped): delivery is at least once.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

__all__ = [
    "OUTBOX_COLUMNS",
    "OutboxEntry",
    "OutboxMac",
    "OutboxStats",
    "RetryPolicy",
    "parse_signature",
    "sign",
    "signature_header",
    "verify_signature",
]

_MAC_DOMAIN = b"collab/webhook-outbox/v1"

#: The outbox table's columns in the SQL stores, in :meth:`OutboxEntry.row` order.
OUTBOX_COLUMNS = (
    "id",
    "event_id",
    "event_type",
    "endpoint",
    "room",
    "body",
    "created_ms",
    "next_ms",
    "attempts",
)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One event waiting for one endpoint."""

    #: ``<event id>:<endpoint>``: unique, the store's key.
    id: str
    #: The event's id (the ``Collab-Event-Id`` header and the body's ``id``).
    event_id: str
    #: The event's type (``session.ended``), for the header and the logs.
    event_type: str
    #: The endpoint's name (its URL and secret are configuration, not stored).
    endpoint: str
    room: str
    #: The JSON body, sent as it is on every attempt.
    body: bytes
    created_ms: float
    #: When it is due (after a claim: when the claim's lease ends).
    next_ms: float
    #: Attempts made so far.
    attempts: int = 0

    def row(self) -> tuple[str, str, str, str, str, bytes, float, float, int]:
        """The entry as a table row, in :data:`OUTBOX_COLUMNS` order (SQL stores)."""
        return (
            self.id,
            self.event_id,
            self.event_type,
            self.endpoint,
            self.room,
            self.body,
            self.created_ms,
            self.next_ms,
            self.attempts,
        )

    def record(self) -> bytes:
        """What a store that keeps one blob per entry holds: every field but
        the schedule (``next_ms``, ``attempts``), which changes."""
        return orjson.dumps(
            {
                "i": self.id,
                "e": self.event_id,
                "t": self.event_type,
                "n": self.endpoint,
                "r": self.room,
                "b": self.body.decode(),
                "c": self.created_ms,
            }
        )

    @classmethod
    def from_record(cls, record: bytes, *, next_ms: float, attempts: int) -> OutboxEntry:
        """The inverse of :meth:`record`; ValueError if it is not one."""
        try:
            d = orjson.loads(record)
            return cls(
                id=str(d["i"]),
                event_id=str(d["e"]),
                event_type=str(d["t"]),
                endpoint=str(d["n"]),
                room=str(d["r"]),
                body=str(d["b"]).encode(),
                created_ms=float(d["c"]),
                next_ms=next_ms,
                attempts=attempts,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"not an outbox record: {type(exc).__name__}") from None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """How much waits in the outbox (for /metrics)."""

    entries: int
    #: ``created_ms`` of the oldest entry (None when empty).
    oldest_created_ms: float | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, up to a bound, for a bounded time.

    Attempt ``n`` (1 for the first failure) waits about ``initial_s * 2**(n-1)``
    capped at ``max_s``; the jitter draws from the upper half of that, so
    entries that failed together spread out. An entry older than
    ``give_up_after_s`` is given up.
    """

    initial_s: float = 1.0
    max_s: float = 3600.0
    give_up_after_s: float = 3 * 86_400.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("the retry delays must satisfy 0 < initial <= max")
        if self.give_up_after_s <= 0:
            raise ValueError("give-up-after must be positive")

    def delay_s(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after ``attempts`` failed attempts (1 or more)."""
        exponent = min(max(attempts, 1) - 1, 62)
        ceiling = min(self.max_s, self.initial_s * 2.0**exponent)
        return ceiling / 2 + rand() * ceiling / 2

    def expired(self, entry: OutboxEntry, now_ms: float) -> bool:
        """Whether ``entry`` is too old to try again."""
        return now_ms - entry.created_ms >= self.give_up_after_s * 1000.0

    def next_ms(
        self, entry: OutboxEntry, now_ms: float, rand: Callable[[], float] = random.random
    ) -> float | None:
        """When to try ``entry`` again after it failed its attempt number
        ``entry.attempts + 1``; None when that would be past the give-up time."""
        due = now_ms + self.delay_s(entry.attempts + 1, rand) * 1000.0
        if due - entry.created_ms >= self.give_up_after_s * 1000.0:
            return None
        return due


# -- signatures (what a receiver checks) ----------------------------------------------


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``Collab-Signature`` value: ``t=<unix seconds>,v1=<hex>``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={sign(secret, t, body)}"


def parse_signature(header: str) -> tuple[int, list[str]] | None:
    """``t=…,v1=…[,v1=…]`` → the timestamp and the ``v1`` signatures; None if
    the header is not one (other schemes are ignored, for later versions)."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if not value.isascii() or not value.isdigit() or timestamp is not None:
                return None
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify_signature(
    secret: str | bytes,
    header: str,
    body: bytes,
    *,
    tolerance_s: float = 300.0,
    now_s: float | None = None,
) -> bool:
    """Whether ``header`` (``Collab-Signature``) signs ``body`` (the raw request
    bytes, before any JSON parsing) under ``secret``, with a timestamp within
    ``tolerance_s`` of now (an old delivery replayed fails). For receivers;
    constant-time."""
    parsed = parse_signature(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    now = time.time() if now_s is None else now_s
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    # Every candidate is compared, so the time does not say which one matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    return matched


# -- a record's MAC in a shared store ----------------------------------------------------


class OutboxMac:
    """Authenticates outbox records in a store other processes can write
    (Redis): a node signs what it delivers with the endpoint's secret, so a
    record no node wrote must never be sent. A key of its own, derived from
    the cluster key; without one (``--dev``) nothing is signed and every
    record verifies."""

    __slots__ = ("_key",)

    def __init__(self, cluster_key: str | bytes | None) -> None:
        if cluster_key:
            raw = cluster_key.encode() if isinstance(cluster_key, str) else cluster_key
            self._key: bytes | None = hmac.digest(raw, _MAC_DOMAIN, "sha256")
        else:
            self._key = None

    def seal(self, record: bytes) -> bytes:
        """``<hex MAC>.<record>`` (``.<record>`` without a key)."""
        if self._key is None:
            return b"." + record
        return hmac.new(self._key, record, hashlib.sha256).hexdigest().encode() + b"." + record

    def open(self, sealed: bytes) -> bytes | None:
        """The record of a sealed value, None if its MAC fails."""
        mac, sep, record = sealed.partition(b".")
        if not sep:
            return None
        if self._key is None:
            return record
        expected = hmac.new(self._key, record, hashlib.sha256).hexdigest().encode()
        return record if hmac.compare_digest(mac, expected) else None
