"""Webhooks: session events POSTed to a platform's endpoints, signed, from a
durable outbox (protocol.md §10.5; docs/architecture.md §12; README,
"Webhooks").

:class:`Webhooks` is an :class:`~collab.extensions.Extension`. Its hooks run
in the extension's own queue, off the broadcast path: each turns a session
event into one :class:`~rooms.outbox.OutboxEntry` per endpoint that wants
it and awaits the store's write (:class:`~rooms.store.OutboxStore`), so an
event is kept across restarts from then on. Its delivery loop claims due
entries with a lease (nodes sharing a store never send one entry at the
same time), POSTs each with ``Collab-Signature`` (HMAC-SHA256 of
``"<t>.<body>"``), deletes it on a 2xx, and otherwise reschedules it with
exponential backoff and jitter (rooms.outbox.RetryPolicy) until it is given
up. Delivery is at least once: receivers dedupe by ``Collab-Event-Id``.

While the store does not take a write, new entries wait in memory (at most
``max_buffered``, the oldest dropped past it) and the loop adds them again
before it claims anything; a stop tries once more. A crash, or a stop while
the store still fails, loses what waited in memory only.

Bodies carry ids, never chat text, board content, display names or tokens:
``chat.message`` (the message with its text and author's name) goes only to
endpoints configured with ``include_content``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from collab import __version__
from collab.extensions import (
    ChatEvent,
    ExportEvent,
    Extension,
    ExtensionServer,
    ModerationEvent,
    RoomEvent,
)
from collab.logs import describe_exception
from collab.webhook_endpoints import (
    CHAT_MESSAGE,
    CHECKIN_CLOSED,
    EVENT_TYPES,
    EXPORT_READY,
    ROOM_DELETED,
    ROOM_PURGED,
    SESSION_ENDED,
    Endpoint,
    is_loopback,
    load_webhooks_file,
    parse_endpoints,
)
from collab.webhook_metrics import WebhookStats, webhooks_collector
from rooms.identity import Identity
from rooms.outbox import OutboxEntry, RetryPolicy, signature_header, verify_signature
from rooms.store import OutboxStore

if TYPE_CHECKING:
    from collab.config import Settings

__all__ = [
    "EVENT_TYPES",
    "Endpoint",
    "Webhooks",
    "load_webhooks_file",
    "parse_endpoints",
    "verify_signature",
    "webhooks_collector",
]

log = logging.getLogger("collab.webhooks")

_ROOM_ENDED = {"ended": SESSION_ENDED, "deleted": ROOM_DELETED, "purged": ROOM_PURGED}
_LOG_EVERY_S = 60.0
#: Entries the stop gives back (lease released) or writes, at most this long.
_STOP_WRITE_S = 2.0


def _who(identity: Identity | None) -> dict[str, str] | None:
    """Who did it: ids only (a display name may be a person's real name)."""
    if identity is None:
        return None
    return {"userId": identity.user_id, "role": identity.role.value}


def _checkin_closed(event: ModerationEvent) -> dict[str, Any] | None:
    """A ``mod:checkin`` close (its audit detail ``close <id> answered=<n>``,
    protocol.md §6.9) as ``checkin.closed``'s data: the id and how many
    answered, never the question or answers."""
    detail = event.detail.get("detail")
    if event.action != "mod:checkin" or not isinstance(detail, str):
        return None
    parts = detail.split(" ")
    if len(parts) != 3 or parts[0] != "close" or not parts[2].startswith("answered="):
        return None
    answered = parts[2].removeprefix("answered=")
    return {"id": parts[1], "answered": int(answered) if answered.isdigit() else 0}


class Webhooks(Extension):
    """POSTs session events to ``endpoints`` (:class:`Endpoint`, or objects as
    in the webhooks file), from an outbox in ``store`` (by default the
    server's own store, given at start by ``collab.app``).

    ``timeout_s`` bounds one POST; ``retry`` schedules attempts and gives up;
    a claim leases entries for ``lease_s`` (longer than a POST may take);
    the loop looks for due entries every ``poll_interval_s`` and at once when
    a hook added some, ``batch`` at a time.
    """

    name = "webhooks"

    def __init__(
        self,
        endpoints: Sequence[Endpoint | Mapping[str, Any]],
        *,
        store: OutboxStore | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        lease_s: float | None = None,
        poll_interval_s: float = 1.0,
        batch: int = 32,
        max_buffered: int = 10_000,
        stats_interval_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoints = {e.name: e for e in parse_endpoints(list(endpoints))}
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.lease_s = lease_s if lease_s is not None else max(60.0, 3 * timeout_s)
        if timeout_s <= 0 or self.lease_s <= timeout_s:
            raise ValueError("the webhook timeout must be positive and shorter than the lease")
        if poll_interval_s <= 0 or batch < 1 or max_buffered < 1:
            raise ValueError("poll interval, batch and max buffered must be positive")
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self.max_buffered = max_buffered
        self.stats_interval_s = stats_interval_s
        self.stats = WebhookStats()
        self._store = store
        self._clock = clock
        self._wants_chat = any(e.wants(CHAT_MESSAGE) for e in self.endpoints.values())
        #: New entries the store did not take yet, oldest first.
        self._buffer: deque[OutboxEntry] = deque()
        #: Entries claimed whose delivery has not ended (given back at a stop).
        self._inflight: dict[str, OutboxEntry] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._logged: dict[str, float] = {}
        self._stats_at = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Webhooks:
        """The webhooks ``--webhooks-file`` configures (ValueError without it)."""
        if not settings.webhooks:
            raise ValueError("no webhook endpoints are configured")
        return cls(
            settings.webhooks,
            timeout_s=settings.webhook_timeout_s,
            retry=RetryPolicy(give_up_after_s=settings.webhook_give_up_after_s),
        )

    def use_store(self, store: object) -> None:
        """Keep the outbox in ``store`` unless one was given; ValueError if it
        keeps no outbox (rooms.store.OutboxStore)."""
        if self._store is not None:
            return
        if not isinstance(store, OutboxStore):
            raise ValueError(
                f"webhooks need a store that keeps their outbox; {type(store).__name__} does not"
            )
        self._store = store

    @property
    def buffered(self) -> int:
        """Entries waiting in memory for the store."""
        return len(self._buffer)

    # -- lifecycle ---------------------------------------------------------------------

    async def on_start(self, server: ExtensionServer) -> None:
        if self._store is None:
            raise ValueError("webhooks need a store: pass store=, or let collab.app give its own")
        for endpoint in self.endpoints.values():
            url = urlsplit(endpoint.url)
            if url.scheme == "http" and not is_loopback(url.hostname or ""):
                log.warning(
                    "webhook endpoint=%s is plain http: bodies and signatures travel unencrypted",
                    endpoint.name,
                )
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": f"collab-webhooks/{__version__}"},
            connector=aiohttp.TCPConnector(limit=self.batch),
        )
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def on_stop(self) -> None:
        """Stop delivering at once: POSTs in flight are cancelled and their
        entries given back (due now, for the next start or another node);
        entries still in memory get one more write."""
        self._stopping = True
        self._wake.set()
        for task in list(self._deliveries):
            task.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await asyncio.wait_for(asyncio.shield(self._task), _STOP_WRITE_S * 2)
                except TimeoutError:
                    self._task.cancel()
                    await self._task
        store = self._store
        if store is not None:
            now = self._now_ms()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(_STOP_WRITE_S):  # all of them, together
                    for entry in list(self._inflight.values()):
                        await store.outbox_retry(entry.id, now, entry.attempts)
            self._inflight.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STOP_WRITE_S):
                    await self._flush_buffer()
        if self._buffer:
            log.error(
                "webhook entries lost: the store did not take them before the stop count=%d "
                "first=%s",
                len(self._buffer),
                self._buffer[0].id,
            )
        if self._session is not None:
            await self._session.close()

    # -- hooks: events into the outbox -------------------------------------------------

    async def on_room_ended(self, event: RoomEvent) -> None:
        event_type = _ROOM_ENDED.get(event.reason)
        if event_type is not None:
            await self.emit(event_type, event.room, {"by": _who(event.actor)})

    async def on_export(self, event: ExportEvent) -> None:
        data = {"format": event.format, "by": _who(event.actor), "key": event.key}
        await self.emit(EXPORT_READY, event.room, data)

    async def on_moderation(self, event: ModerationEvent) -> None:
        action = event.action.partition(":")[2] or event.action
        detail = {
            k: v for k, v in event.detail.items() if isinstance(v, str | int | float | bool | None)
        }
        data = {"action": action, "by": _who(event.actor), **detail}
        await self.emit("moderation." + action, event.room, data)
        closed = _checkin_closed(event)
        if closed is not None:
            await self.emit(CHECKIN_CLOSED, event.room, {**closed, "by": _who(event.actor)})

    async def on_chat_message(self, event: ChatEvent) -> None:
        if not self._wants_chat:
            return
        # The stored message's fields (protocol.md §5.2), its client's key aside.
        keys = ("id", "authorId", "authorName", "role", "text", "ts")
        message = {k: event.message[k] for k in keys if k in event.message}
        await self.emit(CHAT_MESSAGE, event.room, {"message": message})

    async def emit(self, event_type: str, room: str, data: Mapping[str, Any]) -> str | None:
        """Put an event in the outbox for every endpoint that wants it (once
        the store took it, it survives restarts); its id, or None if no
        endpoint wants it. Never raises for the store: see the module."""
        targets = [e for e in self.endpoints.values() if e.wants(event_type)]
        if not targets:
            return None
        event_id = "evt_" + secrets.token_hex(12)
        created_ms = self._now_ms()
        body = orjson.dumps(
            {
                "id": event_id,
                "type": event_type,
                "created_ms": int(created_ms),
                "room": room,
                "data": data,
            },
            default=str,
        )
        entries = [
            OutboxEntry(
                id=f"{event_id}:{e.name}",
                event_id=event_id,
                event_type=event_type,
                endpoint=e.name,
                room=room,
                body=body,
                created_ms=created_ms,
                next_ms=created_ms,
            )
            for e in targets
        ]
        self.stats.events[event_type] = self.stats.events.get(event_type, 0) + 1
        await self._add(entries)
        self._wake.set()
        return event_id

    async def _add(self, entries: list[OutboxEntry]) -> None:
        assert self._store is not None
        if not self._buffer:  # behind what waits, else first
            try:
                await self._store.outbox_add(entries)
                return
            except OSError as exc:
                self.stats.write_failures += 1
                self._log_once("store", "webhook outbox write failed (kept in memory): %s", exc)
        self._buffer.extend(entries)
        while len(self._buffer) > self.max_buffered:
            lost = self._buffer.popleft()
            self.stats.dropped += 1
            log.error("webhook entry dropped: too many wait for the store id=%s", lost.id)

    async def _flush_buffer(self) -> bool:
        """Write what waits in memory; whether all of it went."""
        assert self._store is not None
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(len(self._buffer), 100))]
            try:
                await self._store.outbox_add(batch)
            except OSError as exc:
                self._buffer.extendleft(reversed(batch))
                self.stats.write_failures += 1
                self._log_once("store", "webhook outbox write failed (kept in memory): %s", exc)
                return False
        return True

    # -- delivery --------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            more = False
            try:
                more = await self._tick()
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - logged, the loop goes on
                # Class and frames, never the message (collab.logs).
                log.error("webhook delivery round failed error=%s", describe_exception(exc))
            if self._stopping:
                return
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)

    async def _tick(self) -> bool:
        """One round: write what waits, claim what is due, deliver it.
        Whether a full batch came (more may be due)."""
        store = self._store
        assert store is not None
        if not await self._flush_buffer():
            return False
        now = self._now_ms()
        await self._refresh_stats(store, now)
        try:
            entries = await store.outbox_claim(now, self.batch, self.lease_s * 1000.0)
        except OSError as exc:
            self._log_once("store", "webhook outbox claim failed (retrying): %s", exc)
            return False
        for entry in entries:
            self._inflight[entry.id] = entry  # given back by a stop from here on
        if not entries or self._stopping:
            return False
        tasks = [asyncio.get_running_loop().create_task(self._deliver(e)) for e in entries]
        self._deliveries.update(tasks)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._deliveries.difference_update(tasks)
        return len(entries) == self.batch

    async def _deliver(self, entry: OutboxEntry) -> None:
        store = self._store
        assert store is not None
        endpoint = self.endpoints.get(entry.endpoint)
        now = self._now_ms()
        try:
            if self.retry.expired(entry, now):
                await self._give_up(store, entry, "too old")
            elif endpoint is None:
                # Another node's endpoint (a configuration being rolled out),
                # or one removed: back for a node that knows it, given up by age.
                await store.outbox_retry(entry.id, now + self.retry.max_s * 1000.0, entry.attempts)
            else:
                outcome = await self._post(endpoint, entry)
                if outcome is None:
                    await store.outbox_done(entry.id)
                    self.stats.count(entry.endpoint, "ok")
                    log.debug("webhook delivered endpoint=%s id=%s", entry.endpoint, entry.id)
                else:
                    await self._failed(store, entry, outcome)
        except OSError as exc:
            # The lease runs out and the entry is claimed again: at least once.
            self._log_once("store", "webhook outbox write failed (retrying): %s", exc)
        self._inflight.pop(entry.id, None)

    async def _post(self, endpoint: Endpoint, entry: OutboxEntry) -> str | None:
        """POST ``entry``; None on a 2xx, else why not (a status or an error class)."""
        assert self._session is not None
        headers = {
            "Content-Type": "application/json",
            "Collab-Signature": signature_header(
                endpoint.secret, entry.body, timestamp=int(self._clock())
            ),
            "Collab-Event-Id": entry.event_id,
            "Collab-Event-Type": entry.event_type,
        }
        try:
            async with self._session.post(
                endpoint.url,
                data=entry.body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as response:
                return None if 200 <= response.status < 300 else str(response.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return type(exc).__name__

    async def _failed(self, store: OutboxStore, entry: OutboxEntry, why: str) -> None:
        self.stats.count(entry.endpoint, "failed")
        self._log_once(
            "endpoint:" + entry.endpoint,
            "webhook delivery failed endpoint=%s status=%s id=%s attempts=%d (retrying)",
            entry.endpoint,
            why,
            entry.id,
            entry.attempts + 1,
        )
        next_ms = self.retry.next_ms(entry, self._now_ms())
        if next_ms is None:
            await self._give_up(store, entry, why)
        else:
            await store.outbox_retry(entry.id, next_ms, entry.attempts + 1)

    async def _give_up(self, store: OutboxStore, entry: OutboxEntry, why: str) -> None:
        await store.outbox_done(entry.id)
        self.stats.count(entry.endpoint, "given_up")
        log.error(
            "webhook given up endpoint=%s id=%s type=%s attempts=%d age_s=%d last=%s",
            entry.endpoint,
            entry.id,
            entry.event_type,
            entry.attempts,
            (self._now_ms() - entry.created_ms) / 1000.0,
            why,
        )

    async def _refresh_stats(self, store: OutboxStore, now_ms: float) -> None:
        if now_ms - self._stats_at < self.stats_interval_s * 1000.0:
            return
        self._stats_at = now_ms
        try:
            stats = await store.outbox_stats()
        except OSError:
            return
        self.stats.outbox_entries = stats.entries
        oldest = stats.oldest_created_ms
        self.stats.oldest_age_s = 0.0 if oldest is None else max(0.0, (now_ms - oldest) / 1000.0)

    def _now_ms(self) -> float:
        return self._clock() * 1000.0

    def _log_once(self, key: str, message: str, *args: object) -> None:
        """A warning at most once a minute per ``key`` (an outage or a down
        endpoint would otherwise write a line per entry)."""
        now = time.monotonic()
        if now - self._logged.get(key, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._logged[key] = now
            log.warning(message, *args)
