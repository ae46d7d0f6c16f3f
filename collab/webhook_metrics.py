"""Metrics of the webhooks extension (collab.webhooks; protocol.md §10.5):
what it counts, and the Prometheus collector /metrics reads it through."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["WebhookSource", "WebhookStats", "webhooks_collector"]


@dataclass(slots=True)
class WebhookStats:
    """What a :class:`Webhooks` did (for /metrics and tests)."""

    #: (endpoint, outcome) → count; outcomes ``ok``, ``failed``, ``given_up``.
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Events written to the outbox, by type.
    events: dict[str, int] = field(default_factory=dict)
    #: Outbox writes (of new entries) the store did not take.
    write_failures: int = 0
    #: Entries dropped from memory because too many waited for the store.
    dropped: int = 0
    #: Entries waiting in the outbox at the last look, and the oldest's age.
    outbox_entries: int = 0
    oldest_age_s: float = 0.0

    def count(self, endpoint: str, outcome: str) -> None:
        key = (endpoint, outcome)
        self.deliveries[key] = self.deliveries.get(key, 0) + 1


class WebhookSource(Protocol):
    """What the collector reads of a webhooks extension."""

    @property
    def stats(self) -> WebhookStats: ...

    @property
    def buffered(self) -> int: ...


class _WebhookCollector(Collector):
    def __init__(self, hooks: Sequence[WebhookSource]) -> None:
        self._hooks = hooks

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        deliveries = CounterMetricFamily(
            "collab_webhook_deliveries",
            "Webhook delivery attempts by endpoint and outcome (ok, failed, given_up).",
            labels=["endpoint", "outcome"],
        )
        events = CounterMetricFamily(
            "collab_webhook_events", "Webhook events put in the outbox, by type.", labels=["type"]
        )
        failures = CounterMetricFamily(
            "collab_webhook_outbox_write_failures",
            "Outbox writes of new webhook entries the store did not take (kept in memory).",
        )
        dropped = CounterMetricFamily(
            "collab_webhook_entries_dropped",
            "Webhook entries dropped because too many waited in memory for the store.",
        )
        buffered = GaugeMetricFamily(
            "collab_webhook_entries_buffered", "Webhook entries waiting in memory for the store."
        )
        size = GaugeMetricFamily(
            "collab_webhook_outbox_entries", "Webhook entries in the outbox (looked at every 10 s)."
        )
        oldest = GaugeMetricFamily(
            "collab_webhook_outbox_oldest_seconds", "Age of the oldest webhook entry in the outbox."
        )
        for hook in self._hooks:
            s = hook.stats
            for (endpoint, outcome), n in sorted(s.deliveries.items()):
                deliveries.add_metric([endpoint, outcome], n)
            for event_type, n in sorted(s.events.items()):
                events.add_metric([event_type], n)
        failures.add_metric([], sum(h.stats.write_failures for h in self._hooks))
        dropped.add_metric([], sum(h.stats.dropped for h in self._hooks))
        buffered.add_metric([], sum(h.buffered for h in self._hooks))
        size.add_metric([], max((h.stats.outbox_entries for h in self._hooks), default=0))
        oldest.add_metric([], max((h.stats.oldest_age_s for h in self._hooks), default=0.0))
        yield from (deliveries, events, failures, dropped, buffered, size, oldest)


def webhooks_collector(hooks: Sequence[WebhookSource]) -> Collector:
    """The /metrics collector of ``hooks`` (protocol.md §10.5)."""
    return _WebhookCollector(hooks)
