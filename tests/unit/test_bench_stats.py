"""The harness's statistics and its lean client's framing."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Doc, Map

from bench.report import combine, ratios
from bench.stats import percentile, summarize
from bench.wire import (
    binary_event_frames,
    connect_frame,
    event_frame,
    parse_text_frame,
    yws_decode,
    yws_update,
)
from bench.workload import board_with_shapes, stroke_updates, update_key


def test_percentile_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 101)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1))
def test_summary_is_ordered_and_bounded(values):
    s = summarize(values)
    assert s.count == len(values)
    assert min(values) <= s.p50 <= s.p95 <= s.p99 <= s.max == max(values)
    assert min(values) - 1e-6 <= s.mean <= max(values) + 1e-6


def test_empty_summary_is_json_nulls():
    assert summarize([]).as_json() == {
        "count": 0,
        "mean": None,
        "p50": None,
        "p95": None,
        "p99": None,
        "max": None,
    }


def test_socketio_framing_matches_the_protocol():
    # What socket.io-client sends for socket.emit('sync-update', Uint8Array) on /yjs|r
    header, body = binary_event_frames("/yjs|r", "sync-update", b"\x01\x02")
    assert header == '451-/yjs|r,["sync-update",{"_placeholder":true,"num":0}]'
    assert body == b"\x01\x02"
    header, _ = binary_event_frames("/yjs|r", "sync-step-1", b"\x00", ack_id=7)
    assert header == '451-/yjs|r,7["sync-step-1",{"_placeholder":true,"num":0}]'
    assert connect_frame("/yjs|r", {"token": "t"}) == '40/yjs|r,{"token":"t"}'
    assert event_frame("/yjs|r", "chat:send", {"text": "hi"}, 3) == (
        '42/yjs|r,3["chat:send",{"text":"hi"}]'
    )


@pytest.mark.parametrize(
    ("frame", "kind", "namespace", "ack", "data", "attachments"),
    [
        ('40/yjs|r,{"sid":"abc"}', "0", "/yjs|r", None, {"sid": "abc"}, 0),
        (
            '44/yjs|r,{"message":"no","data":{"code":"invalid_name"}}',
            "4",
            "/yjs|r",
            None,
            {"message": "no", "data": {"code": "invalid_name"}},
            0,
        ),
        ('43/yjs|r,12[{"ok":true}]', "3", "/yjs|r", 12, [{"ok": True}], 0),
        (
            '461-/yjs|r,5[{"_placeholder":true,"num":0}]',
            "6",
            "/yjs|r",
            5,
            [{"_placeholder": True, "num": 0}],
            1,
        ),
        ('42["hello"]', "2", "/", None, ["hello"], 0),
    ],
)
def test_parse_text_frame(frame, kind, namespace, ack, data, attachments):
    packet = parse_text_frame(frame)
    assert (packet.kind, packet.namespace, packet.ack_id, packet.data, packet.attachments) == (
        kind,
        namespace,
        ack,
        data,
        attachments,
    )


def test_non_message_frames_are_not_packets():
    assert parse_text_frame("2") is None
    assert parse_text_frame('0{"sid":"x"}') is None


def test_y_websocket_framing_round_trip():
    update = bytes(range(200))
    message = yws_update(update)
    assert message[:2] == b"\x00\x02" and message[2:4] == b"\xc8\x01"  # varuint 200
    assert yws_decode(message) == (0, 2, update)
    assert yws_decode(b"\x00") is None


def test_workload_updates_are_real_and_identifiable():
    updates = stroke_updates(60)
    replica = Doc()
    for u in updates:
        replica.apply_update(u)
    shapes = replica.get("shapes", type=Map).to_py()
    assert len(shapes) == 3 and all(len(s["points"]) == 20 for s in shapes.values())
    keys = [update_key(u) for u in updates]
    assert len(set(keys)) == 60, "every update has its own (client, clock)"
    # A server that re-encodes an update (y-websocket relays its own encoding)
    # keeps its first struct's id.
    relay = Doc()
    seen = []
    relay.observe(lambda e: seen.append(bytes(e.update)))
    for u in updates:
        relay.apply_update(u)
    assert [update_key(u) for u in seen] == keys
    assert json.dumps(shapes)


def test_board_updates_stay_under_the_message_limit():
    updates = board_with_shapes(2500, per_update=1000)
    assert len(updates) == 3
    assert all(len(u) < 1 << 20 for u in updates)
    doc = Doc()
    for u in updates:
        doc.apply_update(u)
    assert len(doc.get("shapes", type=Map)) == 2500


def _run(server: str, round_: int, p99: float, cpu: float) -> dict:
    return {
        "scenario": "fanout",
        "server": server,
        "receivers": 10,
        "round": round_,
        "deliveries": 100,
        "expected_deliveries": 100,
        "missing_deliveries": 0,
        "fanout_ms": {"count": 10, "p50": p99 / 2, "p99": p99, "max": p99},
        "server_cpu_us_per_delivery": cpu,
        "server_peak_rss_bytes": 1000 * (round_ + 1),
        "generator_cpu_share": 0.1 * (round_ + 1),
        "generator_saturated": False,
        "fanout_samples_ms": [p99],
    }


def test_rounds_combine_into_medians():
    runs = [_run("collab", k, p99, cpu) for k, (p99, cpu) in enumerate([(9, 5), (1, 4), (4, 30)])]
    (row,) = combine(runs)
    assert row["rounds"] == 3 and "round" not in row
    assert row["fanout_ms"] == {"count": 30, "p50": 2.0, "p99": 4, "max": 4}
    assert row["server_cpu_us_per_delivery"] == 5  # the median, not the mean
    assert row["deliveries"] == row["expected_deliveries"] == 300
    assert row["server_peak_rss_bytes"] == 3000  # the worst
    assert row["generator_cpu_share"] == pytest.approx(0.3)
    assert row["fanout_samples_ms"] == [1, 4, 9]
    single = _run("relay", 0, 2, 2)
    assert combine([single]) == [single]


def test_ratios_are_taken_within_a_round():
    runs = [
        _run("collab", 0, 10, 5),
        _run("y-websocket", 0, 20, 10),  # round 0: 0.5x
        _run("collab", 1, 30, 9),
        _run("y-websocket", 1, 10, 3),  # round 1: 3x (a slow stretch for collab)
        _run("collab", 2, 4, 4),
        _run("y-websocket", 2, 5, 5),  # round 2: 0.8x
        _run("collab", 3, 4, 4),  # no baseline in round 3: not paired
    ]
    (line,) = ratios(runs, "y-websocket")
    assert line.startswith("fanout N=10: collab/y-websocket (median of 3 rounds): ")
    assert "fan-out p99 0.80x [0.50–3.00]" in line
    assert "CPU/delivery 0.80x [0.50–3.00]" in line
    assert ratios(runs, "relay") == []
