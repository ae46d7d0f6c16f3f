"""The benchmark scenarios: fanout, rooms, cluster, join, chat.

Each returns a result dict (every figure, JSON-ready). Servers are started
by the caller (``bench.cli``) or are a remote deployment (``--target``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from array import array
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.loadgen import SATURATED_CPU, Endpoint, Loadgen, open_client, progress
from bench.servers import ManagedProcess, redis_cpu_s
from bench.stats import summarize
from bench.workload import board_with_shapes, stroke_updates

__all__ = ["Target", "run_chat", "run_fanout", "run_join", "run_rooms"]


@dataclass
class Target:
    """A server under test: what it is, where, and (when started here) its processes."""

    label: str
    protocol: str  # "sio" (collab, relay, a remote collab) or "yws" (the Node peer)
    urls: list[str]
    processes: list[ManagedProcess] = field(default_factory=list)
    redis_url: str | None = None
    jwt_secret: str | None = None
    namespace_prefix: str = "/yjs|"

    def endpoint(
        self, i: int, room: str, *, doc: str | None = None, role: str = "participant"
    ) -> Endpoint:
        url = self.urls[i % len(self.urls)]
        if self.protocol == "yws":
            return Endpoint("yws", url, room)
        path = self.namespace_prefix + room + ("" if doc is None else f"/{doc}")
        return Endpoint("sio", url, path, self._auth(room, role, i))

    def _auth(self, room: str, role: str, i: int) -> dict[str, Any]:
        if self.jwt_secret is None:
            return {"name": f"bench-{i}", "role": role}
        from collab.tokens import mint_token

        token = mint_token(
            self.jwt_secret,
            algorithm="HS256",
            sub=f"bench-{i}",
            name=f"bench-{i}",
            room=room,
            role=role,
            ttl_s=3600,
        )
        return {"token": token}

    def cpu_s(self) -> float | None:
        if not self.processes:
            return None
        return sum(p.sample().cpu_s for p in self.processes)

    def peak_rss(self) -> int | None:
        if not self.processes:
            return None
        return max(p.sample().peak_rss_bytes for p in self.processes)


async def _redis_cpu(target: Target) -> float | None:
    return await redis_cpu_s(target.redis_url) if target.redis_url else None


def _machine_cost(
    target: Target,
    cpu0: float | None,
    cpu1: float | None,
    r0: float | None,
    r1: float | None,
    deliveries: int,
) -> dict[str, Any]:
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    redis = None if r0 is None or r1 is None else r1 - r0
    return {
        "server_cpu_s": cpu,
        "server_cpu_us_per_delivery": None
        if cpu is None or not deliveries
        else cpu * 1e6 / deliveries,
        "server_peak_rss_bytes": target.peak_rss(),
        "redis_cpu_s": redis,
        "redis_cpu_us_per_delivery": None
        if redis is None or not deliveries
        else redis * 1e6 / deliveries,
    }


async def _drain(lg: Loadgen, expected: int, label: str, total: int, idle_timeout_s: float) -> int:
    """Wait until every delivery arrived, or nothing new arrived for a while."""
    last, last_change = -1, time.monotonic()
    while True:
        got = await lg.count()
        progress(label, total, total, got, expected)
        if got >= expected:
            return got
        if got != last:
            last, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > idle_timeout_s:
            return got
        await asyncio.sleep(0.05)


async def run_fanout(
    target: Target,
    *,
    receivers: int,
    rate: float,
    count: int,
    warmup: int,
    workers: int,
    senders: int = 1,
    scenario: str = "fanout",
) -> dict[str, Any]:
    """One room: ``receivers`` members, and ``senders`` more drawing at once,
    ``rate`` updates/s between them (they take turns, update by update)."""
    room = f"bench-{uuid.uuid4().hex[:10]}"
    total = warmup + count
    payloads = _interleaved_strokes(total, senders)
    endpoints = [target.endpoint(i + 1, room) for i in range(receivers)]
    label = f"{scenario} {target.label} N={receivers}"
    lg = Loadgen(endpoints, payloads, workers=workers)
    await lg.start()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    drawers = [open_client(session, target.endpoint(0, room))] + [
        open_client(session, target.endpoint(receivers + k, room)) for k in range(1, senders)
    ]
    send_ns = array("q", [0] * total)
    try:
        for drawer in drawers:
            await drawer.open()
        lg.begin()
        cpu0 = r0 = None
        gen_cpu0 = time.process_time()
        start = time.monotonic()
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == warmup:
                cpu0, r0 = target.cpu_s(), await _redis_cpu(target)
                window_start = time.monotonic_ns()
            send_ns[i] = time.monotonic_ns()
            await drawers[i % senders].send_update(payloads[i])
            if i % 25 == 0:
                progress(label, i, total, -1, receivers * total)
        gen_cpu = time.process_time() - gen_cpu0
        gen_wall = time.monotonic() - start
        expected = receivers * total
        got = await _drain(lg, expected, label, total, idle_timeout_s=5.0)
        cpu1, r1 = target.cpu_s(), await _redis_cpu(target)
        arrivals = await lg.finish()
    finally:
        lg.close()
        for drawer in drawers:
            await drawer.close()
        await session.close()
    result = _fanout_result(
        scenario,
        target,
        receivers,
        rate,
        count,
        warmup,
        workers,
        send_ns,
        arrivals,
        expected_per_update=receivers,
        window_start=window_start,
        cost=_machine_cost(target, cpu0, cpu1, r0, r1, 0),
        lg=lg,
        sender_cpu_share=gen_cpu / gen_wall if gen_wall else 0.0,
        cpu=(cpu0, cpu1),
        redis=(r0, r1),
        received_total=got,
    )
    result["senders"] = senders
    return result


def _interleaved_strokes(total: int, senders: int) -> list[bytes]:
    """``total`` updates in sending order: update i is the next of sender
    ``i % senders``'s own strokes (each sender its own Yjs client)."""
    own = [stroke_updates(-(-total // senders), seed=7 + k) for k in range(senders)]
    return [own[i % senders][i // senders] for i in range(total)]


def _fanout_result(
    scenario: str,
    target: Target,
    receivers: int,
    rate: float,
    count: int,
    warmup: int,
    workers: int,
    send_ns: array,
    arrivals: Any,
    *,
    expected_per_update: int,
    window_start: int,
    cost: dict[str, Any],
    lg: Loadgen,
    sender_cpu_share: float,
    cpu: tuple[float | None, float | None],
    redis: tuple[float | None, float | None],
    received_total: int,
    send_index: Any = None,
) -> dict[str, Any]:
    per_update_max: dict[Any, int] = {}
    delivery_ms = []
    seen = set()
    last_arrival = window_start
    for seq, t, r in zip(arrivals.seqs, arrivals.times, arrivals.receivers, strict=True):
        key = seq if send_index is None else send_index(r, seq)
        if seq < warmup or (r, key) in seen:
            continue
        seen.add((r, key))
        sent = send_ns[key]
        delivery_ms.append((t - sent) / 1e6)
        if t > per_update_max.get(key, 0):
            per_update_max[key] = t
        last_arrival = max(last_arrival, t)
    fanout_ms = [(t - send_ns[k]) / 1e6 for k, t in per_update_max.items()]
    deliveries = len(delivery_ms)
    expected = expected_per_update * count
    duration_s = (last_arrival - window_start) / 1e9
    cost = _machine_cost(target, cpu[0], cpu[1], redis[0], redis[1], deliveries)
    gen_share = max(lg.busiest_cpu_share, sender_cpu_share)
    return {
        "scenario": scenario,
        "server": target.label,
        "receivers": receivers,
        "rate_per_s": rate,
        "count": count,
        "warmup": warmup,
        "generator_processes": lg.workers,
        "deliveries": deliveries,
        "expected_deliveries": expected,
        "missing_deliveries": expected - deliveries,
        "deliveries_per_s": deliveries / duration_s if duration_s > 0 else None,
        "fanout_ms": summarize(fanout_ms).as_json(),
        "delivery_ms": summarize(delivery_ms).as_json(),
        "fanout_samples_ms": sorted(fanout_ms),
        **cost,
        "generator_cpu_share": gen_share,
        "generator_saturated": gen_share > SATURATED_CPU,
        "client_errors": lg.errors,
    }


async def run_rooms(
    target: Target,
    *,
    rooms: int,
    members: int,
    rate_per_room: float,
    count: int,
    warmup: int,
    workers: int,
) -> dict[str, Any]:
    """``rooms`` rooms of ``members`` (one sender, members - 1 receivers each)."""
    names = [f"bench-{uuid.uuid4().hex[:8]}-{r}" for r in range(rooms)]
    total = warmup + count
    payloads = stroke_updates(total)
    per_room = members - 1
    endpoints = [
        target.endpoint(r * members + k + 1, names[r])
        for r in range(rooms)
        for k in range(per_room)
    ]
    label = f"rooms {target.label} {rooms}x{members}"
    lg = Loadgen(endpoints, payloads, workers=workers)
    await lg.start()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    senders = [open_client(session, target.endpoint(r * members, names[r])) for r in range(rooms)]
    send_ns = array("q", [0] * (rooms * total))
    try:
        sem = asyncio.Semaphore(32)

        async def open_one(client: Any) -> None:
            async with sem:
                await client.open()

        await asyncio.gather(*(open_one(s) for s in senders))
        lg.begin()
        schedule = sorted(
            (i / rate_per_room + r / (rate_per_room * rooms), r, i)
            for r in range(rooms)
            for i in range(total)
        )
        gen_cpu0 = time.process_time()
        start = time.monotonic()
        cpu0 = r0 = None
        window_start = time.monotonic_ns()
        for n, (offset, r, i) in enumerate(schedule):
            delay = start + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if cpu0 is None and i == warmup:
                cpu0, r0 = target.cpu_s(), await _redis_cpu(target)
                window_start = time.monotonic_ns()
            send_ns[r * total + i] = time.monotonic_ns()
            await senders[r].send_update(payloads[i])
            if n % 200 == 0:
                progress(label, n, len(schedule), -1, per_room * len(schedule))
        gen_cpu = time.process_time() - gen_cpu0
        gen_wall = time.monotonic() - start
        expected = per_room * rooms * total
        got = await _drain(lg, expected, label, len(schedule), idle_timeout_s=5.0)
        cpu1, r1 = target.cpu_s(), await _redis_cpu(target)
        arrivals = await lg.finish()
    finally:
        lg.close()
        for s in senders:
            await s.close()
        await session.close()

    def send_index(receiver: int, seq: int) -> int:
        return (receiver // per_room) * total + seq

    result = _fanout_result(
        "rooms",
        target,
        per_room * rooms,
        rate_per_room * rooms,
        count,
        warmup,
        workers,
        send_ns,
        arrivals,
        expected_per_update=per_room * rooms,
        window_start=window_start,
        cost={},
        lg=lg,
        sender_cpu_share=gen_cpu / gen_wall if gen_wall else 0.0,
        cpu=(cpu0, cpu1),
        redis=(r0, r1),
        received_total=got,
        send_index=send_index,
    )
    result.update(rooms=rooms, members=members, rate_per_room=rate_per_room)
    return result


async def run_join(target: Target, *, clients: int, shapes: int) -> dict[str, Any]:
    """``clients`` join a room holding a board of ``shapes`` shapes at once;
    each measures the time until it holds the whole board."""
    room = f"bench-{uuid.uuid4().hex[:10]}"
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    seeder = open_client(session, target.endpoint(0, room))
    try:
        await seeder.open()
        board = board_with_shapes(shapes)
        for update in board:
            await seeder.send_update(update)
        # The board is in the server once a client syncing now gets all of it.
        probe = open_client(session, target.endpoint(1, room))
        await probe.open()
        size = 0
        for _ in range(200):
            size = await probe.sync_full_state()
            if size >= sum(len(u) for u in board) * 0.9:
                break
            await asyncio.sleep(0.1)
        await probe.close()
        rss_before = target.peak_rss()

        async def join(i: int) -> float:
            client = open_client(session, target.endpoint(i + 2, room))
            started = time.monotonic()
            await client.open()
            got = await client.sync_full_state()
            elapsed = (time.monotonic() - started) * 1000
            await client.close()
            if got < size * 0.9:
                raise RuntimeError(f"a joiner got {got} bytes of {size}")
            return elapsed

        times = await asyncio.gather(*(join(i) for i in range(clients)))
    finally:
        await seeder.close()
        await session.close()
    return {
        "scenario": "join",
        "server": target.label,
        "clients": clients,
        "shapes": shapes,
        "board_bytes": size,
        "join_ms": summarize(times).as_json(),
        "server_peak_rss_bytes_before": rss_before,
        "server_peak_rss_bytes": target.peak_rss(),
        "missing_deliveries": 0,
    }


async def run_chat(
    target: Target, *, senders: int, receivers: int, messages: int, rate: float
) -> dict[str, Any]:
    """``senders`` send ``messages`` chat messages each through ``chat:send``
    (with acks) at ``rate`` messages/s in all; ``receivers`` follow the chat."""
    room = f"bench-{uuid.uuid4().hex[:10]}"
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    watchers: list[Any] = []
    counts = [0] * receivers

    def counter(k: int) -> Any:
        def on_update(payload: bytes, t: int) -> None:
            counts[k] += 1

        return on_update

    chatters = [open_client(session, target.endpoint(i, room, doc="chat")) for i in range(senders)]
    try:
        for k in range(receivers):
            watcher = open_client(
                session, target.endpoint(senders + k, room, doc="chat"), counter(k)
            )
            await watcher.open()
            watchers.append(watcher)
        for c in chatters:
            await c.open()
        cpu0 = target.cpu_s()
        acks: list[float] = []
        start = time.monotonic()
        total = senders * messages

        async def send(n: int) -> None:
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            t = time.monotonic()
            ack = await chatters[n % senders].call(
                "chat:send",
                {"text": f"message {n} " + secrets.token_hex(8), "clientMessageId": f"m{n}"},
            )
            if not ack.get("ok"):
                raise RuntimeError(f"chat:send refused: {ack}")
            acks.append((time.monotonic() - t) * 1000)

        await asyncio.gather(*(send(n) for n in range(total)))
        deadline = time.monotonic() + 10
        while sum(counts) < total * receivers and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # deliveries are counted in callbacks: poll them
        cpu1 = target.cpu_s()
    finally:
        for c in chatters + watchers:
            await c.close()
        await session.close()
    delivered = sum(counts)
    return {
        "scenario": "chat",
        "server": target.label,
        "senders": senders,
        "receivers": receivers,
        "messages": total,
        "rate_per_s": rate,
        "ack_ms": summarize(acks).as_json(),
        "deliveries": delivered,
        "expected_deliveries": total * receivers,
        "missing_deliveries": total * receivers - delivered,
        "server_cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
        "server_peak_rss_bytes": target.peak_rss(),
    }
