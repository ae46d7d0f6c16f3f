"""Output: a terminal table, a JSON file with every figure and the machine,
and a self-contained HTML page plotting latency distributions (inline SVG)."""

from __future__ import annotations

import contextlib
import html
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["combine", "machine", "ratios", "table", "write_html", "write_json"]


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    node = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        node = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": node,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _ms(summary: dict[str, Any] | None, key: str) -> str:
    if not summary or summary.get(key) is None:
        return "-"
    return f"{summary[key]:.2f}"


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "scenario",
        "server",
        "N",
        "rate/s",
        "deliv",
        "miss",
        "fan p50",
        "p95",
        "p99",
        "max ms",
        "CPU µs/dlv",
        "RSS MB",
        "gen cpu",
        "",
    )
    rows = [head]
    for r in results:
        lat = r.get("fanout_ms") or r.get("join_ms") or r.get("ack_ms")
        rss = r.get("server_peak_rss_bytes")
        rows.append(
            (
                r["scenario"],
                r["server"],
                str(r.get("receivers", r.get("clients", ""))),
                _num(r.get("rate_per_s"), "{:g}"),
                str(r.get("deliveries", "-")),
                str(r.get("missing_deliveries", "-")),
                _ms(lat, "p50"),
                _ms(lat, "p95"),
                _ms(lat, "p99"),
                _ms(lat, "max"),
                _num(r.get("server_cpu_us_per_delivery")),
                _num(None if rss is None else rss / 2**20),
                _num(r.get("generator_cpu_share"), "{:.0%}"),
                "SATURATED" if r.get("generator_saturated") else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


_LATENCIES = ("fanout_ms", "delivery_ms", "join_ms", "ack_ms", "rtt_ms")
_MEDIANS = (
    "deliveries_per_s",
    "server_cpu_s",
    "server_cpu_us_per_delivery",
    "redis_cpu_s",
    "redis_cpu_us_per_delivery",
)
_SUMS = ("deliveries", "expected_deliveries", "missing_deliveries", "client_errors")


def _median(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def combine(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration (scenario, size, server), in the order they
    first ran: over several rounds, the median of each latency percentile and
    cost, the sum of the counts, the worst of RSS and generator load, and all
    latency samples together. A configuration run once is its own row."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in results:
        key = (r["scenario"], r.get("receivers"), r["server"], r.get("phase"))
        groups.setdefault(key, []).append(r)
    rows = []
    for runs in groups.values():
        if len(runs) == 1:
            rows.append(runs[0])
            continue
        row = {k: v for k, v in runs[0].items() if k != "round"}
        row["rounds"] = len(runs)
        for key in _LATENCIES:
            if runs[0].get(key):
                row[key] = {
                    stat: sum(r[key][stat] or 0 for r in runs)
                    if stat == "count"
                    else _median([r[key].get(stat) for r in runs])
                    for stat in runs[0][key]
                }
        for key in _MEDIANS:
            if key in runs[0]:
                row[key] = _median([r.get(key) for r in runs])
        for key in _SUMS:
            if key in runs[0]:
                row[key] = sum(r.get(key) or 0 for r in runs)
        for key in ("server_peak_rss_bytes", "generator_cpu_share"):
            if key in runs[0]:
                row[key] = max((r[key] for r in runs if r.get(key) is not None), default=None)
        if "generator_saturated" in runs[0]:
            row["generator_saturated"] = any(r["generator_saturated"] for r in runs)
        if "fanout_samples_ms" in runs[0]:
            row["fanout_samples_ms"] = sorted(v for r in runs for v in r["fanout_samples_ms"])
        rows.append(row)
    return rows


def _figure(result: dict[str, Any], label: str) -> float | None:
    if label == "CPU/delivery":
        value = result.get("server_cpu_us_per_delivery")
    else:
        value = result["fanout_ms"].get(label.removeprefix("fan-out "))
    return None if value is None else float(value)


def ratios(results: list[dict[str, Any]], baseline: str, subject: str = "collab") -> list[str]:
    """Lines of subject/baseline ratios for runs of the same scenario and size.

    Each ratio is taken within a round (the two ran minutes apart at most);
    over several rounds the line gives their median and, in brackets, the
    lowest and highest."""
    out = []
    keyed = {
        (r["scenario"], r.get("receivers"), r["server"], r.get("round", 0)): r for r in results
    }
    sizes = sorted({(r["scenario"], r.get("receivers")) for r in results}, key=str)
    for scenario, n in sizes:
        pairs = [
            (r, keyed[(scenario, n, baseline, rnd)])
            for (sc, size, server, rnd), r in keyed.items()
            if (sc, size, server) == (scenario, n, subject)
            and (scenario, n, baseline, rnd) in keyed
        ]
        if not pairs:
            continue
        parts = []
        for label in ("fan-out p50", "fan-out p99", "CPU/delivery"):
            values = [
                a / b
                for a, b in ((_figure(s, label), _figure(base, label)) for s, base in pairs)
                if a and b
            ]
            if not values:
                continue
            text = f"{label} {statistics.median(values):.2f}x"
            if len(values) > 1:
                text += f" [{min(values):.2f}–{max(values):.2f}]"
            parts.append(text)
        rounds = f" (median of {len(pairs)} rounds)" if len(pairs) > 1 else ""
        out.append(f"{scenario} N={n}: {subject}/{baseline}{rounds}: " + ", ".join(parts))
    return out


def write_json(
    path: Path,
    results: list[dict[str, Any]],
    argv: list[str],
    *,
    combined: list[dict[str, Any]] | None = None,
) -> None:
    """Every run (``results``, each with its round) and, when given, the
    per-configuration medians the table shows (``combined``)."""
    document: dict[str, Any] = {"machine": machine(), "command": argv, "results": results}
    if combined is not None:
        document["combined"] = [
            {k: v for k, v in row.items() if k != "fanout_samples_ms"} for row in combined
        ]
    path.write_text(json.dumps(document, indent=2))


_COLORS = ["#1971c2", "#e03131", "#2f9e44", "#f08c00", "#7048e8", "#0c8599", "#c2255c"]


def write_html(path: Path, results: list[dict[str, Any]], argv: list[str]) -> None:
    """CDF of per-update fan-out latency for every run that has samples."""
    runs = [r for r in results if r.get("fanout_samples_ms")]
    width, height, pad = 860, 420, 50
    peak = max((max(r["fanout_samples_ms"]) for r in runs), default=1.0) or 1.0
    import math

    def x(ms: float) -> float:  # log scale from 0.1 ms to the peak
        lo, hi = math.log10(0.1), math.log10(max(peak, 1.0))
        return pad + (math.log10(max(ms, 0.1)) - lo) / (hi - lo or 1) * (width - 2 * pad)

    def y(frac: float) -> float:
        return height - pad - frac * (height - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for ms in (0.1, 1, 10, 100, 1000, 10000):
        if ms <= peak * 1.01 or ms == 0.1:
            parts.append(
                f'<line x1="{x(ms):.1f}" x2="{x(ms):.1f}" y1="{pad}" y2="{height - pad}" '
                'stroke="#ddd"/>'
            )
            parts.append(
                f'<text x="{x(ms):.1f}" y="{height - pad + 16}" font-size="11" '
                f'text-anchor="middle">{ms:g} ms</text>'
            )
    for frac in (0, 0.5, 0.95, 0.99, 1.0):
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{y(frac):.1f}" y2="{y(frac):.1f}" '
            'stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{pad - 6}" y="{y(frac) + 4:.1f}" font-size="11" '
            f'text-anchor="end">{frac:.0%}</text>'
        )
    legend = []
    for i, r in enumerate(runs):
        color = _COLORS[i % len(_COLORS)]
        samples = r["fanout_samples_ms"]
        step = max(1, len(samples) // 400)
        pts = " ".join(
            f"{x(v):.1f},{y((k + 1) / len(samples)):.1f}"
            for k, v in list(enumerate(samples))[::step]
        )
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{pts}"/>')
        name = f"{r['scenario']} {r['server']} N={r.get('receivers')}"
        legend.append(
            f'<li><span style="color:{color}">&#9632;</span> {html.escape(name)} '
            f"(p99 {r['fanout_ms']['p99']:.2f} ms)</li>"
        )
    parts.append("</svg>")
    page = (
        "<!doctype html><meta charset='utf-8'><title>collab bench</title>"
        "<style>body{font-family:sans-serif;margin:2em}</style>"
        f"<h1>Fan-out latency, cumulative</h1><p><code>{html.escape(' '.join(argv))}</code></p>"
        + "".join(parts)
        + "<ul>"
        + "".join(legend)
        + "</ul>"
        f"<pre>{html.escape(table(results))}</pre>"
    )
    path.write_text(page)
