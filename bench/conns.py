"""The platform's load shape: many mostly idle connections in small rooms.

``conns``: N clients in rooms of M connect (each as the y-socket.io provider
or the y-websocket client does: connect, then the sync handshake), then stay
idle. Reported: the time until all are synced, the server's resident memory
per connection (VmRSS after, minus before, over N), and its CPU while they
are idle, as a share of one core over a window longer than the Engine.IO
ping interval.

``storm``: the same N clients, then the server is killed (SIGKILL: a node
lost) and started again on its port. Every client reconnects with
socket.io-client's default backoff (1 s doubling to 5 s, ±50 %). Reported:
the time from the kill, and from the restart, until all are synced again,
and every refused attempt by its reason.

Clients live in worker processes (a few thousand each), one task per client.
The server is restarted before each round, so every round measures a fresh
process (freed memory a previous round left in the allocator would hide
the cost of the next).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing as mp
import random
import statistics
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from bench.loadgen import SATURATED_CPU, Endpoint, open_client
from bench.scenarios import Target

__all__ = ["conns_ratios", "conns_table", "run_conns", "run_storm"]

#: Each worker opens at most this many connections at once.
OPEN_CONCURRENCY = 64
#: A connection attempt (open and sync) that takes longer failed.
ATTEMPT_TIMEOUT_S = 20.0
#: socket.io-client's defaults: reconnectionDelay, reconnectionDelayMax,
#: randomizationFactor.
BACKOFF_FIRST_S, BACKOFF_MAX_S, BACKOFF_JITTER = 1.0, 5.0, 0.5


def _backoff(attempt: int) -> float:
    delay = min(BACKOFF_FIRST_S * 2**attempt, BACKOFF_MAX_S)
    return delay * (1 + BACKOFF_JITTER * (2 * random.random() - 1))


def _reason(exc: BaseException) -> str:
    """A refused or failed attempt, by kind (no addresses, no payloads)."""
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"http {exc.status}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError) and "closed before" not in str(exc):
        text = str(exc)
        code = text.split("'code': '", 1)[1].split("'", 1)[0] if "'code': '" in text else None
        return f"refused {code}" if code else type(exc).__name__
    return type(exc).__name__


class _Clients:
    """One worker's clients: each a task that connects, syncs and, when
    ``reconnect`` is on, connects again whenever its connection ends."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.endpoints = endpoints
        self.synced = [False] * len(endpoints)
        self.synced_count = 0
        self.ever_synced = 0
        self.refusals: collections.Counter[str] = collections.Counter()
        self.drops = 0
        self.reconnect = False
        self.stopping = asyncio.Event()
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.sem = asyncio.Semaphore(OPEN_CONCURRENCY)
        self.tasks: list[asyncio.Task[None]] = []
        self.live: list[Any] = [None] * len(endpoints)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._keep(k)) for k in range(len(self.endpoints))]

    async def _attempt(self, k: int) -> Any:
        endpoint = self.endpoints[k]
        client = open_client(self.session, endpoint)
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                await client.open(ATTEMPT_TIMEOUT_S)
                if endpoint.protocol == "sio":
                    await client.start_sync()
                await client.answered.wait()
                await client.synced.wait()
        except BaseException:
            with contextlib.suppress(Exception):
                await client.close()
            raise
        return client

    async def _keep(self, k: int) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                async with self.sem:
                    client = await self._attempt(k)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - counted by kind, then retried
                self.refusals[_reason(exc)] += 1
                await asyncio.sleep(_backoff(failures))
                failures += 1
                continue
            failures = 0
            self.live[k] = client
            self.synced[k] = True
            self.synced_count += 1
            self.ever_synced += 1
            await client.ended.wait()
            self.synced[k] = False
            self.synced_count -= 1
            self.live[k] = None
            if self.stopping.is_set():
                return
            self.drops += 1
            if not self.reconnect:
                return
            await asyncio.sleep(_backoff(0))

    async def close(self) -> None:
        self.stopping.set()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for client in self.live:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
        await self.session.close()


def _worker_main(endpoints: list[Endpoint], pipe: Connection) -> None:
    asyncio.run(_worker(endpoints, pipe))


async def _worker(endpoints: list[Endpoint], pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    clients = _Clients(endpoints)
    cpu0 = wall0 = 0.0
    try:
        pipe.send(("ready",))
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command == "open":
                cpu0, wall0 = time.process_time(), time.monotonic()
                clients.start()
            elif command == "reconnect":
                clients.reconnect = True
            elif command == "count":
                pipe.send(
                    (
                        "count",
                        clients.synced_count,
                        clients.drops,
                        dict(clients.refusals),
                        time.process_time() - cpu0,
                        time.monotonic() - wall0,
                    )
                )
            elif command == "stop":
                break
    finally:
        await clients.close()
        pipe.send(("done",))


class _Crowd:
    """The worker processes holding the clients."""

    def __init__(self, endpoints: list[Endpoint], workers: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        #: The workers' CPU seconds since ``open``, as of the last :meth:`count`.
        self.cpu_s = 0.0
        workers = max(1, min(workers, len(endpoints)))
        for i in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main, args=(endpoints[i::workers], child), daemon=True
            )
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    async def ready(self) -> None:
        for pipe in self.pipes:
            await _recv(pipe)

    def send(self, command: str) -> None:
        for pipe in self.pipes:
            pipe.send(command)

    async def count(self) -> tuple[int, int, collections.Counter[str], float]:
        """(synced now, drops, refusals by reason, busiest worker's CPU share).
        :attr:`cpu_s` is then the workers' CPU since ``open``, all together."""
        synced = drops = 0
        refusals: collections.Counter[str] = collections.Counter()
        busiest = total = 0.0
        self.send("count")
        for pipe in self.pipes:
            _, n, dropped, refused, cpu, wall = await _recv(pipe)
            synced += n
            drops += dropped
            refusals.update(refused)
            busiest = max(busiest, cpu / wall if wall > 0 else 0.0)
            total += cpu
        self.cpu_s = total
        return synced, drops, refusals, busiest

    async def close(self) -> None:
        self.send("stop")
        for pipe in self.pipes:
            with contextlib.suppress(EOFError, OSError):
                await asyncio.wait_for(_recv(pipe), 60)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


async def _recv(pipe: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


def _endpoints(target: Target, connections: int, room_size: int) -> list[Endpoint]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    return [target.endpoint(i, f"{prefix}-{i // room_size}") for i in range(connections)]


async def _until_synced(crowd: _Crowd, want: int, timeout_s: float) -> tuple[float, int]:
    """Seconds until ``want`` clients are synced (or the timeout), and how many were."""
    start = time.monotonic()
    synced = 0
    while time.monotonic() - start < timeout_s:
        synced, _, _, _ = await crowd.count()
        if synced >= want:
            break
        await asyncio.sleep(0.05)  # the workers are polled; nothing to await
    return time.monotonic() - start, synced


async def _warm(target: Target, room_size: int, workers: int) -> None:
    """One room joined and left, so the first connection's one-time costs
    (lazy imports, caches) are not counted per connection."""
    crowd = _Crowd(_endpoints(target, room_size, room_size), workers=1)
    try:
        await crowd.ready()
        crowd.send("open")
        await _until_synced(crowd, room_size, 60)
    finally:
        await crowd.close()


def _server(target: Target) -> Any:
    if len(target.processes) != 1:
        raise RuntimeError("conns and storm measure one server process the harness started")
    return target.processes[0]


async def run_conns(
    target: Target, *, connections: int, room_size: int, idle_s: float, workers: int
) -> dict[str, Any]:
    """``connections`` idle clients in rooms of ``room_size``."""
    server = _server(target)
    await server.restart()
    await _warm(target, room_size, workers)
    await asyncio.sleep(1.0)  # the warm-up's disconnects are processed
    rss0 = server.rss_bytes()
    crowd = _Crowd(_endpoints(target, connections, room_size), workers)
    try:
        await crowd.ready()
        connect_cpu0 = server.sample().cpu_s
        crowd.send("open")
        connect_s, synced = await _until_synced(crowd, connections, 300)
        connect_cpu = server.sample().cpu_s - connect_cpu0
        generator_cpu = crowd.cpu_s  # the clients' side of the same handshakes
        await asyncio.sleep(2.0)  # let the last handshakes' garbage go
        rss1 = server.rss_bytes()
        cpu0, wall0 = server.sample().cpu_s, time.monotonic()
        await asyncio.sleep(idle_s)
        cpu1, wall1 = server.sample().cpu_s, time.monotonic()
        still, drops, refusals, busiest = await crowd.count()
    finally:
        await crowd.close()
    return {
        "scenario": "conns",
        "server": target.label,
        "connections": connections,
        "room_size": room_size,
        "synced": synced,
        "connect_all_s": connect_s,
        # The server's CPU while they connected: per connection, and its
        # share of a core (below 1: the handshakes wait on more than its CPU).
        "connect_cpu_per_connection_ms": connect_cpu * 1000 / max(synced, 1),
        "connect_cpu_share": connect_cpu / connect_s if connect_s > 0 else 0.0,
        # The load generator's CPU for them (its workers share the machine's
        # cores with the server: the protocol's client side is in the wall time).
        "generator_connect_cpu_per_connection_ms": generator_cpu * 1000 / max(synced, 1),
        "rss_before_bytes": rss0,
        "rss_after_bytes": rss1,
        "rss_per_connection_bytes": (rss1 - rss0) / max(synced, 1),
        "idle_s": wall1 - wall0,
        "idle_cpu_share": (cpu1 - cpu0) / (wall1 - wall0),
        "still_connected": still,
        "drops": drops,
        "refusals": dict(refusals),
        "generator_cpu_share": busiest,
        "generator_saturated": busiest > SATURATED_CPU,
        "missing_deliveries": connections - min(synced, still),
    }


async def run_storm(
    target: Target, *, connections: int, room_size: int, workers: int, timeout_s: float = 120.0
) -> dict[str, Any]:
    """``connections`` clients dropped at once by a killed server, and back."""
    server = _server(target)
    await server.restart()
    crowd = _Crowd(_endpoints(target, connections, room_size), workers)
    try:
        await crowd.ready()
        crowd.send("open")
        connect_s, _ = await _until_synced(crowd, connections, 300)
        refused_before = (await crowd.count())[2]
        crowd.send("reconnect")
        await crowd.count()  # every worker has the command before the kill
        killed_at = time.monotonic()
        server.kill()
        await server.proc.wait()
        await server.restart()
        restarted_at = time.monotonic()
        refused_while_down = (await crowd.count())[2]
        back_s, back = await _until_synced(crowd, connections, timeout_s)
        _, drops, refusals, busiest = await crowd.count()
    finally:
        await crowd.close()
    refusals.subtract(refused_while_down)
    refused_while_down.subtract(refused_before)
    return {
        "scenario": "storm",
        "server": target.label,
        "connections": connections,
        "room_size": room_size,
        "connect_all_s": connect_s,
        "restart_s": restarted_at - killed_at,
        "all_back_after_kill_s": restarted_at - killed_at + back_s,
        "all_back_after_restart_s": back_s,
        "back": back,
        "drops": drops,
        "refusals": {k: v for k, v in refusals.items() if v},
        "failed_while_down": {k: v for k, v in refused_while_down.items() if v},
        "generator_cpu_share": busiest,
        "generator_saturated": busiest > SATURATED_CPU,
        "missing_deliveries": connections - back,
    }


#: (figure, heading, format) of the conns and storm tables, and which figures
#: get a ratio against the baseline.
_COLUMNS = {
    "conns": (
        ("connect_all_s", "connect all s", "{:.2f}"),
        ("connect_cpu_per_connection_ms", "CPU/connect ms", "{:.2f}"),
        ("connect_cpu_share", "busy", "{:.0%}"),
        ("generator_connect_cpu_per_connection_ms", "clients' CPU/connect ms", "{:.2f}"),
        ("rss_per_connection_bytes", "RSS/conn KB", "{:.1f}"),
        ("idle_cpu_share", "idle CPU", "{:.1%}"),
        ("drops", "drops", "{}"),
    ),
    "storm": (
        ("all_back_after_kill_s", "back after kill s", "{:.2f}"),
        ("all_back_after_restart_s", "after restart s", "{:.2f}"),
        ("back", "back", "{}"),
        ("refusals", "refused after restart", "{}"),
    ),
}


def _cell(key: str, value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if key == "rss_per_connection_bytes":
        value /= 1000
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "0"
    return fmt.format(value)


def _medians(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["scenario"], r["connections"], r["server"]), []).append(r)
    rows = []
    for runs in groups.values():
        row = dict(runs[0])
        for key, _, _ in _COLUMNS[row["scenario"]]:
            values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
            if values:
                row[key] = statistics.median(values)
        row["rounds"] = len(runs)
        rows.append(row)
    return rows


def conns_table(results: list[dict[str, Any]]) -> str:
    """The conns and storm rows (medians over rounds)."""
    lines = []
    for row in _medians(results):
        cells = [f"{row['scenario']} {row['server']} N={row['connections']}/{row['room_size']}"]
        cells += [
            f"{head} {_cell(key, row.get(key), fmt)}"
            for key, head, fmt in _COLUMNS[row["scenario"]]
        ]
        share = row.get("generator_cpu_share")
        cells.append(f"gen cpu {share:.0%}" if share is not None else "")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def conns_ratios(
    results: list[dict[str, Any]], baseline: str, subject: str = "collab"
) -> list[str]:
    """subject/baseline for each figure, within a round, median over rounds."""
    keyed = {(r["scenario"], r["connections"], r["server"], r.get("round", 0)): r for r in results}
    out = []
    for scenario, n in sorted({(r["scenario"], r["connections"]) for r in results}):
        pairs = [
            (r, keyed[(scenario, n, baseline, rnd)])
            for (sc, size, server, rnd), r in keyed.items()
            if (sc, size, server) == (scenario, n, subject)
            and (scenario, n, baseline, rnd) in keyed
        ]
        parts = []
        for key, head, _ in _COLUMNS[scenario]:
            values = [
                a[key] / b[key]
                for a, b in pairs
                if isinstance(a.get(key), int | float)
                and isinstance(b.get(key), int | float)
                and b[key]
            ]
            if values:
                text = f"{head} {statistics.median(values):.2f}x"
                if len(values) > 1:
                    text += f" [{min(values):.2f}-{max(values):.2f}]"
                parts.append(text)
        if parts:
            out.append(f"{scenario} N={n}: {subject}/{baseline}: " + ", ".join(parts))
    return out
