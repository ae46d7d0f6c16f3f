"""The ``stalls`` scenario: another room's round trip while one client sends
heavy but valid updates (issue 14, finding 6).

Two clients in a probe room exchange small pen-stroke updates at ``rate``
per second; the round trip of each (sent by one, relayed by the server,
received by the other) is timed with ``time.monotonic_ns()`` in this
process. Meanwhile, phase by phase, a client in a room of its own sends:

* ``idle``: nothing (the baseline of the same run);
* ``heavy``: six updates of 42,000 map entries each (966 KB), past the
  struct limit (refused with ``message_too_large`` since issue 14, applied
  before it);
* ``at-limit``: six updates of exactly ``max_update_structs`` (5,000)
  entries, accepted;
* ``answer``: a whole board of several MB, drawn by five clients that edit
  each other's shapes, as its answer to the server's ``sync-step-1`` (what
  a client sends back after the server lost the document).

A phase ends when the server has handled what was sent (the sender asks
for the document: its events are handled in order) plus a short tail. Each
phase reports the probe's p50, p99 and max, and its ratio to ``idle``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pycrdt import Array, Doc, Map

from bench.lean import LeanSocketIO
from bench.stats import summarize
from bench.workload import stroke_updates, update_key

__all__ = [
    "HEAVY_ITEMS",
    "PHASES",
    "STRUCT_LIMIT",
    "heavy_updates",
    "run_stalls",
    "shared_board",
    "stalls_ratios",
    "stalls_table",
]

PHASES = ("idle", "heavy", "at-limit", "answer")

#: protocol.md §8.1 (``--max-update-structs``'s default).
STRUCT_LIMIT = 5_000
#: Issue 14's heavy updates: 42,000 items each.
HEAVY_ITEMS = 42_000
#: How long the probe runs after a phase's work is handled (late deliveries).
TAIL_S = 0.3


def heavy_updates(count: int, *, items: int, seed: int = 1) -> list[bytes]:
    """``count`` updates of ``items`` entries of one map each (one struct an
    entry; 42,000 make 966 KB), each from a Yjs client of its own."""
    out = []
    for n in range(count):
        doc: Doc = Doc(client_id=seed * 1000 + n)
        entries = doc.get("items", type=Map)
        with doc.transaction():
            for i in range(items):
                entries[f"k{i:07d}"] = i
        out.append(bytes(doc.get_update()))
    return out


def shared_board(shapes: int, *, clients: int = 5, seed: int = 3) -> bytes:
    """The whole state of a board of ``shapes`` pen shapes drawn by
    ``clients`` peers, 500 at a time, each batch then moved a little by the
    next peer (so structs depend on other clients' structs, as on a board
    people draw on together)."""
    rng = random.Random(seed)
    docs: list[Doc] = [Doc(client_id=1000 + k) for k in range(clients)]
    batch = 500
    for start in range(0, shapes, batch):
        drawer = docs[(start // batch) % clients]
        board = drawer.get("shapes", type=Map)
        with drawer.transaction():
            for i in range(start, min(shapes, start + batch)):
                board[f"s{i}"] = Map(
                    {
                        "type": "pen",
                        "x": rng.uniform(0, 4000),
                        "y": rng.uniform(0, 3000),
                        "color": "#1e1e1e",
                        "points": Array(
                            [[rng.uniform(0, 99), rng.uniform(0, 99)] for _ in range(3)]
                        ),
                    }
                )
        mover = docs[(start // batch + 1) % clients]
        mover.apply_update(drawer.get_update(mover.get_state()))
        moved = mover.get("shapes", type=Map)
        with mover.transaction():
            for i in range(start, min(shapes, start + batch), 10):
                moved[f"s{i}"]["x"] += 1.0
                moved[f"s{i}"]["points"].append([1.0, 2.0])
        drawer.apply_update(mover.get_update(drawer.get_state()))
    whole: Doc = Doc()
    for doc in docs:
        whole.apply_update(doc.get_update())
    return bytes(whole.get_update())


@dataclass
class _Probe:
    """Two clients of one room: ``sender`` sends a stroke update every
    ``1 / rate`` s, ``receiver`` times its arrival."""

    sender: LeanSocketIO
    receiver: LeanSocketIO
    rate: float
    payloads: list[bytes]
    sent: dict[tuple[int, int], int] = field(default_factory=dict)
    #: (send time, round trip in ms) of each update received.
    samples: list[tuple[int, float]] = field(default_factory=list)

    def on_update(self, payload: bytes, now: int) -> None:
        key = update_key(payload)
        sent = self.sent.pop(key, None) if key is not None else None
        if sent is not None:
            self.samples.append((sent, (now - sent) / 1e6))

    async def run(self, stop: asyncio.Event) -> None:
        start = time.monotonic()
        for i, payload in enumerate(self.payloads):
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            key = update_key(payload)
            assert key is not None
            self.sent[key] = time.monotonic_ns()
            await self.sender.send_update(payload)
        raise RuntimeError("the probe ran out of updates: raise its count")

    def window(self, begin: int, end: int) -> list[float]:
        """Round trips of the updates sent from ``begin`` to ``end`` (ns)."""
        return [rtt for sent, rtt in self.samples if begin <= sent <= end]


async def run_stalls(
    target: Any,
    *,
    rate: float,
    idle_s: float,
    board_shapes: int,
    heavy: list[bytes] | None = None,
    at_limit: list[bytes] | None = None,
    board: bytes | None = None,
) -> list[dict[str, Any]]:
    """One result per phase (see the module's docstring) against ``target``
    (a bench.scenarios.Target). The payloads may be given (made once for
    every target of a run); otherwise they are made here."""
    heavy = heavy if heavy is not None else heavy_updates(6, items=HEAVY_ITEMS)
    at_limit = at_limit if at_limit is not None else heavy_updates(6, items=STRUCT_LIMIT, seed=2)
    board = board if board is not None else shared_board(board_shapes)
    tag = uuid.uuid4().hex[:8]
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    probe_room = f"probe-{tag}"
    probe = _Probe(
        _client(session, target, 0, probe_room),
        _client(session, target, 1, probe_room),
        rate,
        stroke_updates(int(rate * 600)),
    )
    probe.receiver.on_update = probe.on_update
    stop = asyncio.Event()
    results = []
    try:
        await probe.sender.open()
        await probe.receiver.open()
        running = asyncio.get_running_loop().create_task(probe.run(stop))
        try:
            for phase in PHASES:
                begin = time.monotonic_ns()
                if phase == "idle":
                    await asyncio.sleep(idle_s)
                    outcome: dict[str, Any] = {"payload_bytes": 0}
                elif phase == "answer":
                    outcome = await _answer(session, target, f"answer-{tag}", board)
                else:
                    updates = heavy if phase == "heavy" else at_limit
                    outcome = await _updates(session, target, f"{phase}-{tag}", updates)
                await asyncio.sleep(TAIL_S)
                end = time.monotonic_ns()
                rtt = probe.window(begin, end - int(TAIL_S * 1e9))
                results.append(
                    {
                        "scenario": "stalls",
                        "server": target.label,
                        "phase": phase,
                        "rate_per_s": rate,
                        "duration_s": (end - begin) / 1e9,
                        "rtt_ms": summarize(rtt).as_json(),
                        "server_peak_rss_bytes": target.peak_rss(),
                        **outcome,
                    }
                )
        finally:
            stop.set()
            if not running.done():
                await running
    finally:
        await probe.sender.close()
        await probe.receiver.close()
        await session.close()
    return results


async def _updates(
    session: aiohttp.ClientSession, target: Any, room: str, updates: list[bytes]
) -> dict[str, Any]:
    """Send ``updates`` back to back as sync-updates; wait until the server
    handled them (the sender's next event is answered after them)."""
    client = _client(session, target, 2, room)
    await client.open()
    try:
        for update in updates:
            await client.send_update(update)
        size = await _barrier(client)
    finally:
        await client.close()
    codes = sorted({str(e.get("code")) for e in client.errors if isinstance(e, dict)})
    return {
        "payload_bytes": sum(len(u) for u in updates),
        "updates": len(updates),
        "refused": len(client.errors),
        "codes": codes,
        "document_bytes": size,
    }


async def _answer(
    session: aiohttp.ClientSession, target: Any, room: str, board: bytes
) -> dict[str, Any]:
    """Join a fresh room holding nothing and answer the server's
    sync-step-1 with ``board``; wait until the server handled it."""
    client = _client(session, target, 3, room, answer=board)
    await client.open()
    try:
        # The answer is sent, or the server ended the connection over it.
        answered = asyncio.ensure_future(client.answered.wait())
        ended = asyncio.ensure_future(client.ended.wait())
        await asyncio.wait({answered, ended}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        answered.cancel()
        ended.cancel()
        size = await _barrier(client) if client.answered.is_set() else None
    finally:
        await client.close()
    return {
        "payload_bytes": len(board),
        "document_bytes": size,
        "applied": size is not None and size >= 0.9 * len(board),
        "close_code": client.close_code,
        "codes": sorted({str(e.get("code")) for e in client.errors if isinstance(e, dict)}),
    }


def _client(
    session: aiohttp.ClientSession, target: Any, i: int, room: str, **options: Any
) -> LeanSocketIO:
    endpoint = target.endpoint(i, room)
    return LeanSocketIO(session, endpoint.url, endpoint.path, endpoint.auth, **options)


async def _barrier(client: LeanSocketIO) -> int | None:
    """The size of the document as the server has it once it handled what
    ``client`` sent before; None if the connection ended first."""
    try:
        return await client.sync_full_state(timeout_s=120)
    except (TimeoutError, ConnectionError, aiohttp.ClientError, RuntimeError):
        return None


def stalls_table(results: list[dict[str, Any]]) -> str:
    """One line per server and phase: the probe's round trip, its ratio to
    the same server's idle phase, and what became of what was sent."""
    idle = {(r["server"], r.get("round", 0)): r["rtt_ms"] for r in results if r["phase"] == "idle"}
    head = (
        "scenario",
        "server",
        "phase",
        "sent",
        "what happened",
        "rtt p50",
        "p99",
        "max ms",
        "p99/idle",
        "max/idle",
    )
    rows = [head]
    for r in results:
        rtt, base = r["rtt_ms"], idle.get((r["server"], r.get("round", 0))) or {}

        def ratio(key: str, rtt: dict[str, Any] = rtt, base: dict[str, Any] = base) -> str:
            a, b = rtt.get(key), base.get(key)
            return f"{a / b:.1f}x" if a and b else "-"

        rows.append(
            (
                r["scenario"],
                r["server"],
                r["phase"],
                f"{r['payload_bytes'] / 1e6:.2f} MB" if r["payload_bytes"] else "-",
                _what_happened(r),
                *(
                    f"{rtt[k]:.1f}" if rtt.get(k) is not None else "-"
                    for k in ("p50", "p99", "max")
                ),
                ratio("p99"),
                ratio("max"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stalls_ratios(results: list[dict[str, Any]], subject: str = "collab") -> list[str]:
    """Per phase, ``subject``'s probe round trip over every other server's
    (``--checkout`` runs), each ratio taken within a round; over several
    rounds the median and, in brackets, the lowest and highest."""
    keyed = {(r["server"], r["phase"], r.get("round", 0)): r["rtt_ms"] for r in results}
    others = sorted({r["server"] for r in results} - {subject})
    lines = []
    for other in others:
        for phase in PHASES:
            parts = []
            for stat in ("p50", "p99", "max"):
                values = [
                    mine[stat] / theirs[stat]
                    for (server, ph, rnd), mine in keyed.items()
                    if server == subject and ph == phase
                    for theirs in [keyed.get((other, phase, rnd))]
                    if theirs and mine.get(stat) and theirs.get(stat)
                ]
                if values:
                    text = f"{stat} {statistics.median(values):.2f}x"
                    if len(values) > 1:
                        text += f" [{min(values):.2f}-{max(values):.2f}]"
                    parts.append(text)
            if parts:
                lines.append(f"stalls {phase}: {subject}/{other}: " + ", ".join(parts))
    return lines


def _what_happened(r: dict[str, Any]) -> str:
    if r["phase"] == "idle":
        return "-"
    if r["phase"] == "answer":
        if r.get("applied"):
            return "applied"
        if r.get("codes"):
            return "refused " + ",".join(r["codes"])
        return f"connection ended (close code {r.get('close_code') or '-'})"
    refused = r.get("refused", 0)
    if not refused:
        return "applied"
    return f"{refused} refused " + ",".join(r.get("codes") or [])
