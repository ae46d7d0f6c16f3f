"""Prometheus metrics of one server (its own registry, so tests can run many)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from crdt.errors import CollabError

__all__ = ["LatencyHistogram", "Metrics", "StoreStats", "Traffic"]

#: How prometheus_client writes a bucket's bound (``le``): 1.0, 0.0001, +Inf.
_go_float: Callable[[float], str] = floatToGoString


class Metrics:
    """The counters the server updates on its paths (protocol.md §9 lists them)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("collab_connections", "Open document connections.", registry=r)
        self.rooms = Gauge("collab_rooms_loaded", "Rooms loaded in memory.", registry=r)
        self.documents = Gauge("collab_documents_loaded", "Documents loaded in memory.", registry=r)
        self.traffic = Traffic()
        r.register(_TrafficCollector(self.traffic))
        self.errors = Counter(
            "collab_errors", "Errors sent to clients, by code.", ["code"], registry=r
        )
        self.limit_refusals = Counter(
            "collab_limit_refusals",
            "Events, connects and sessions refused by a limit (protocol.md §8), by limit.",
            ["limit"],
            registry=r,
        )
        self.fanout_seconds = LatencyHistogram(
            (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
        )
        r.register(
            _HistogramCollector(
                "collab_fanout_seconds",
                "From receiving an update to handing it to every local recipient's transport.",
                self.fanout_seconds,
            )
        )

    def count_error(self, exc: CollabError) -> None:
        self.errors.labels(exc.code.value).inc()

    def refused(self, limit: str) -> None:
        """Count a refusal by the limit named ``limit`` (see protocol.md §8)."""
        self.limit_refusals.labels(limit).inc()

    def bind_gauges(self, rooms: Callable[[], int], documents: Callable[[], int]) -> None:
        self.rooms.set_function(rooms)
        self.documents.set_function(documents)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def bind_broadcast(self, stats: Callable[[], dict[str, int]]) -> None:
        """Expose the broadcast path's counters (``Broadcaster.stats``)."""
        self.registry.register(_BroadcastCollector(stats))

    def bind_store(self, stats: Callable[[], StoreStats]) -> None:
        """Expose whether the store takes writes and what waits for it
        (protocol.md §10, §11)."""
        self.registry.register(_StoreCollector(stats))

    def bind_extensions(self, stats: Callable[[], dict[str, tuple[int, int, int]]]) -> None:
        """Expose each extension's queue, dropped notifications and failed
        hooks (``Extensions.stats``)."""
        self.registry.register(_ExtensionCollector(stats))

    def bind_replication(
        self, stats: Callable[[], dict[str, int]], connected: Callable[[], bool]
    ) -> None:
        """Expose a replicator's counters (received, applied, dropped, gaps,
        reseeds, reconnects, forged)."""
        self.registry.register(_ReplicationCollector(stats, connected))


@dataclass(frozen=True, slots=True)
class StoreStats:
    """The store's side of a scrape (read from the registry at scrape time)."""

    up: bool
    write_failures: int
    writes_delayed: int
    unsaved_updates: int
    oldest_unsaved_s: float
    #: Loaded rooms by saving state (``ok``, ``delayed``, ``read_only``).
    rooms_saving: dict[str, int] = field(default_factory=dict)


class Traffic:
    """The counters of the message path, as plain integers read at scrape
    time: a Prometheus counter takes a lock on every increment, and these
    change on every update, for every recipient. Event-loop thread only."""

    __slots__ = ("bytes_in", "bytes_out", "deliveries_out", "updates_in")

    def __init__(self) -> None:
        self.updates_in = 0
        self.bytes_in = 0
        self.bytes_out = 0
        #: event name → deliveries
        self.deliveries_out: dict[str, int] = {}


class LatencyHistogram:
    """A histogram observed on the message path without a lock: a count per
    bucket, read at scrape time (prometheus_client's Histogram takes a lock
    twice per observation, and this one is observed on every update).
    Event-loop thread only."""

    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        #: Upper bounds, ascending (the last bucket, +Inf, is implied).
        self.buckets = buckets
        #: Observations per bucket, not cumulative; the last is +Inf's own.
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # The first bound the value does not exceed: Prometheus's ``le``.
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value


class _HistogramCollector(Collector):
    def __init__(self, name: str, help_text: str, histogram: LatencyHistogram) -> None:
        self._name = name
        self._help = help_text
        self._histogram = histogram

    def collect(self) -> Iterator[HistogramMetricFamily]:
        h = self._histogram
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip((*h.buckets, float("inf")), h.counts, strict=True):
            cumulative += count
            buckets.append((_go_float(bound), cumulative))
        yield HistogramMetricFamily(self._name, self._help, buckets=buckets, sum_value=h.sum)


class _TrafficCollector(Collector):
    def __init__(self, traffic: Traffic) -> None:
        self._traffic = traffic

    def collect(self) -> Iterator[CounterMetricFamily]:
        t = self._traffic
        for name, help_text, value in (
            ("collab_updates_in", "Document updates accepted from clients.", t.updates_in),
            ("collab_bytes_in", "Payload bytes accepted from clients.", t.bytes_in),
            (
                "collab_bytes_out",
                "Payload bytes relayed to clients (summed over recipients).",
                t.bytes_out,
            ),
        ):
            family = CounterMetricFamily(name, help_text)
            family.add_metric([], value)
            yield family
        deliveries = CounterMetricFamily(
            "collab_deliveries_out",
            "Events relayed to clients (one per recipient).",
            labels=["event"],
        )
        for event, count in sorted(t.deliveries_out.items()):
            deliveries.add_metric([event], count)
        yield deliveries


class _BroadcastCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats()
        deliveries = CounterMetricFamily(
            "collab_broadcast_deliveries",
            "Broadcast deliveries by path: written straight to the socket (direct), "
            "or through its Engine.IO queue (queued: behind unsent data, polling, "
            "upgrading, or the fast path off).",
            labels=["path"],
        )
        deliveries.add_metric(["direct"], stats["direct"])
        deliveries.add_metric(["queued"], stats["queued"])
        yield deliveries
        dropped = CounterMetricFamily(
            "collab_slow_consumers_dropped", "Recipients disconnected as slow consumers."
        )
        dropped.add_metric([], stats["dropped_slow"])
        yield dropped
        behind = GaugeMetricFamily(
            "collab_recipients_behind",
            "Recipients with broadcasts queued that are not yet written.",
        )
        behind.add_metric([], stats["behind"])
        yield behind


class _ExtensionCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, tuple[int, int, int]]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        queued = GaugeMetricFamily(
            "collab_extension_queued",
            "Notifications waiting for an extension's hooks.",
            labels=["extension"],
        )
        dropped = CounterMetricFamily(
            "collab_extension_events_dropped",
            "Notifications dropped because an extension's queue was full.",
            labels=["extension"],
        )
        failed = CounterMetricFamily(
            "collab_extension_hook_failures",
            "Extension hooks that raised (contained and logged).",
            labels=["extension"],
        )
        for name, (waiting, lost, failures) in self._stats().items():
            queued.add_metric([name], waiting)
            dropped.add_metric([name], lost)
            failed.add_metric([name], failures)
        yield queued
        yield dropped
        yield failed


class _StoreCollector(Collector):
    def __init__(self, stats: Callable[[], StoreStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self._stats()
        up = GaugeMetricFamily(
            "collab_store_up",
            "1 while the store takes writes (the last write or probe went through).",
        )
        up.add_metric([], 1.0 if s.up else 0.0)
        yield up
        failures = CounterMetricFamily(
            "collab_store_write_failures",
            "Store writes that failed (updates, chat, audit, room records, probes).",
        )
        failures.add_metric([], s.write_failures)
        yield failures
        delayed = CounterMetricFamily(
            "collab_store_writes_delayed",
            "Failed store writes whose updates were kept in memory for a retry.",
        )
        delayed.add_metric([], s.writes_delayed)
        yield delayed
        unsaved = GaugeMetricFamily(
            "collab_unsaved_updates", "Updates held in memory that the store does not have yet."
        )
        unsaved.add_metric([], s.unsaved_updates)
        yield unsaved
        oldest = GaugeMetricFamily(
            "collab_oldest_unsaved_seconds",
            "Age of the oldest change the store does not have (0: it has everything).",
        )
        oldest.add_metric([], s.oldest_unsaved_s)
        yield oldest
        rooms = GaugeMetricFamily(
            "collab_rooms_saving",
            "Loaded rooms by saving state (room:state.saving).",
            labels=["state"],
        )
        for state in ("ok", "delayed", "read_only"):
            rooms.add_metric([state], s.rooms_saving.get(state, 0))
        yield rooms


class _ReplicationCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, int]], connected: Callable[[], bool]) -> None:
        self._stats = stats
        self._connected = connected

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        help_text = {
            "received": "Envelopes received from Redis channels.",
            "applied": "Remote updates applied to local replicas.",
            "dropped": "Envelopes dropped (malformed, foreign, or not applicable).",
            "gaps": "Sequence gaps detected (each followed by a catch-up).",
            "reseeds": "Documents re-seeded into Redis after it lost them.",
            "reconnects": "Times a Redis subscription came back after a drop.",
            "forged": "Envelopes and stored entries refused: their MAC under the cluster "
            "key fails (protocol.md §10.3).",
        }
        for name, value in self._stats().items():
            family = CounterMetricFamily(f"collab_envelopes_{name}", help_text[name])
            family.add_metric([], value)
            yield family
        gauge = GaugeMetricFamily("collab_redis_connected", "1 while subscribed to Redis.")
        gauge.add_metric([], 1.0 if self._connected() else 0.0)
        yield gauge
