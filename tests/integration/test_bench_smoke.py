"""Every benchmark scenario at a tiny size: every figure present, nothing missing.

The speed targets are not asserted here (they live in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.servers import node_available

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def run_bench(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = out.glob("*.json")
    (page,) = out.glob("*.html")
    assert "<svg" in page.read_text()
    data = json.loads(result.read_text())
    assert data["machine"]["cores"] >= 1 and data["command"][0] == "python -m bench"
    assert "scenario" in done.stdout  # the summary table
    return data


FANOUT_FIELDS = {
    "deliveries",
    "expected_deliveries",
    "missing_deliveries",
    "deliveries_per_s",
    "fanout_ms",
    "delivery_ms",
    "server_cpu_us_per_delivery",
    "server_peak_rss_bytes",
    "generator_cpu_share",
    "generator_saturated",
}


def check_fanout(result: dict) -> None:
    assert result.keys() >= FANOUT_FIELDS
    assert result["missing_deliveries"] == 0
    assert result["deliveries"] == result["expected_deliveries"] > 0
    for key in ("p50", "p95", "p99", "max"):
        assert result["fanout_ms"][key] > 0
        assert result["delivery_ms"][key] > 0
    assert result["fanout_ms"]["p50"] <= result["fanout_ms"]["p99"] <= result["fanout_ms"]["max"]
    assert result["server_cpu_us_per_delivery"] is not None
    assert result["server_peak_rss_bytes"] > 10 << 20


def test_fanout_against_collab_and_baselines(tmp_path):
    data = run_bench(
        tmp_path,
        "fanout",
        "--receivers",
        "3",
        "--count",
        "30",
        "--warmup",
        "3",
        "--workers",
        "1",
        "--rounds",
        "2",
    )
    servers = {r["server"] for r in data["results"]}
    expected = {"collab", "relay"} | ({"y-websocket"} if node_available() is None else set())
    assert servers == expected
    assert sorted((r["server"], r["round"]) for r in data["results"]) == sorted(
        (server, round_) for server in expected for round_ in (0, 1)
    )
    # The second round starts with the next server.
    assert data["results"][0]["server"] != data["results"][len(expected)]["server"]
    for result in data["results"]:
        check_fanout(result)
    assert {row["server"]: row["rounds"] for row in data["combined"]} == dict.fromkeys(expected, 2)
    for row in data["combined"]:
        assert row["deliveries"] == row["expected_deliveries"] == 2 * 3 * 30


def test_a_checkout_runs_beside_collab(tmp_path):
    """--checkout: the same scenario against collab from another source tree
    (here a copy of this one), with the harness's load-test limits."""
    import shutil

    source = tmp_path / "other"
    for package in ("collab", "crdt", "rooms"):
        shutil.copytree(ROOT / package, source / package)
    data = run_bench(
        tmp_path,
        "fanout",
        "--receivers",
        "3",
        "--count",
        "20",
        "--warmup",
        "2",
        "--baselines",
        "",
        "--checkout",
        f"before={source}",
    )
    assert {r["server"] for r in data["results"]} == {"collab", "collab before"}
    for result in data["results"]:
        check_fanout(result)


def test_rooms(tmp_path):
    data = run_bench(
        tmp_path,
        "rooms",
        "--rooms",
        "4",
        "--members",
        "3",
        "--rate-per-room",
        "10",
        "--count",
        "10",
        "--warmup",
        "2",
        "--baselines",
        "",
    )
    (result,) = data["results"]
    check_fanout(result)
    assert result["expected_deliveries"] == 4 * 2 * 10


def test_cluster(tmp_path, redis_binary):
    data = run_bench(
        tmp_path, "cluster", "--receivers", "4", "--count", "20", "--warmup", "2", "--senders", "2"
    )
    assert {r["server"] for r in data["results"]} == {"collab x2 nodes", "collab 1 node"}
    for result in data["results"]:
        check_fanout(result)
        assert result["senders"] == 2 and result["expected_deliveries"] == 4 * 20
    multi = next(r for r in data["results"] if r["server"] == "collab x2 nodes")
    assert multi["redis_cpu_s"] is not None


def test_join(tmp_path):
    data = run_bench(tmp_path, "join", "--clients", "3", "--shapes", "300")
    (result,) = data["results"]
    assert result["join_ms"]["count"] == 3 and result["join_ms"]["max"] > 0
    assert result["board_bytes"] > 10_000
    assert result["server_peak_rss_bytes"] > 0


def test_chat(tmp_path):
    data = run_bench(
        tmp_path, "chat", "--senders", "2", "--messages", "5", "--receivers", "3", "--rate", "50"
    )
    (result,) = data["results"]
    assert result["missing_deliveries"] == 0 and result["deliveries"] == 2 * 5 * 3
    assert result["ack_ms"]["count"] == 10


def test_against_a_running_deployment(tmp_path):
    """--target: a server the harness did not start, with tokens from --jwt-secret."""
    import asyncio

    from tests.procs import CollabNode

    secret = "remote-secret-" + "z" * 40
    node = CollabNode(tmp_path, "--jwt-secret", secret, "--store", "memory", node_id="remote")

    async def scenario() -> dict:
        await node.start()
        try:
            return await asyncio.to_thread(
                run_bench,
                tmp_path,
                "fanout",
                "--target",
                node.url,
                "--jwt-secret",
                secret,
                "--receivers",
                "3",
                "--count",
                "20",
                "--warmup",
                "2",
            )
        finally:
            await node.stop()

    data = asyncio.run(scenario())
    (result,) = data["results"]
    assert result["server"] == "remote" and result["missing_deliveries"] == 0
    assert result["server_cpu_us_per_delivery"] is None  # not our process to measure


def test_stalls(tmp_path):
    """Another room's round trip while heavy updates and a whole-board answer
    go in: one result per phase, each with its probe's round trips."""
    data = run_bench(tmp_path, "stalls", "--idle-s", "0.5", "--board-shapes", "300")
    phases = {r["phase"]: r for r in data["results"]}
    assert list(phases) == ["idle", "heavy", "at-limit", "answer"]
    for result in phases.values():
        assert result["rtt_ms"]["count"] > 0 and result["rtt_ms"]["max"] > 0
    assert phases["heavy"]["codes"] == ["message_too_large"] and phases["heavy"]["refused"] == 6
    assert phases["at-limit"]["refused"] == 0
    assert phases["answer"]["applied"] is True


@pytest.mark.parametrize("scenario", ["conns", "storm"])
def test_the_idle_connection_scenarios(tmp_path, scenario):
    # Against collab and, where node can run it, y-websocket's server: every
    # client connects and syncs; the storm brings every one of them back.
    baselines = "node" if node_available() is None else ""
    out = tmp_path / "out"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench", scenario, "--connections", "20", "--room-size", "5"),
            *("--idle-window-s", "1", "--store", "memory", "--baselines", baselines),
            *("--out", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = out.glob("*.json")
    results = json.loads(result.read_text())["results"]
    servers = {r["server"] for r in results}
    assert servers == ({"collab", "y-websocket"} if baselines else {"collab"})
    for r in results:
        assert r["connections"] == 20 and r["missing_deliveries"] == 0, r
        if scenario == "conns":
            assert r["synced"] == r["still_connected"] == 20 and r["drops"] == 0, r
            assert r["connect_all_s"] > 0 and r["idle_cpu_share"] >= 0
            assert r["rss_after_bytes"] > 0 and "rss_per_connection_bytes" in r
        else:
            assert r["back"] == r["drops"] == 20, r
            assert not any(reason.startswith("refused") for reason in r["refusals"]), r
    assert f"{scenario} collab N=20/5" in done.stdout
