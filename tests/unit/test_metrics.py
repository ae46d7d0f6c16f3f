"""The lock-free histogram exposes what prometheus_client's Histogram would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from collab.metrics import Metrics

HELP = "From receiving an update to handing it to every local recipient's transport."
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def _fanout_lines(text: bytes) -> list[str]:
    return [
        line
        for line in text.decode().splitlines()
        if "collab_fanout_seconds" in line and "_created" not in line
    ]


def test_the_fanout_histogram_renders_as_prometheus_client_s_histogram():
    metrics = Metrics()
    registry = CollectorRegistry()
    oracle = Histogram("collab_fanout_seconds", HELP, buckets=BUCKETS, registry=registry)
    rng = random.Random(18)
    # Values on the bounds (le is inclusive), between them, past the last, and 0.
    values = [*BUCKETS, 0.0, 2.0, 1e-9] + [rng.random() ** 4 for _ in range(500)]
    for value in values:
        oracle.observe(value)
        metrics.fanout_seconds.observe(value)
    ours = _fanout_lines(metrics.render())
    assert ours == _fanout_lines(generate_latest(registry))
    assert f"collab_fanout_seconds_count {float(len(values))}" in ours
