"""Receivers spread over worker processes, and one paced sender.

Every receiver records, for each update it gets, the update's sequence
number and the arrival time from ``time.monotonic_ns()``. On Linux that is
CLOCK_MONOTONIC, one clock for every process of the machine, so send times
(taken by the sender in the parent process) and arrival times (taken in the
workers) are comparable without synchronization. Remote targets are
measured from this machine the same way: the latency includes the network.

Each worker reports its own CPU time over the measured window; a worker
busier than 90% of a core means the generator, not the server, may be the
bottleneck, and the run is flagged.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import sys
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from bench.lean import LeanSocketIO, LeanYWebsocket
from bench.workload import update_key

__all__ = ["SATURATED_CPU", "Arrivals", "Endpoint", "Loadgen"]

#: A generator process using more than this share of a core is flagged.
SATURATED_CPU = 0.9


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one receiver connects: Socket.IO (url, namespace, auth) or
    y-websocket (url, room)."""

    protocol: str  # "sio" or "yws"
    url: str
    path: str  # namespace (sio) or room (yws)
    auth: dict[str, Any] | None = None


def open_client(session: aiohttp.ClientSession, endpoint: Endpoint, on_update: Any = None) -> Any:
    if endpoint.protocol == "yws":
        return LeanYWebsocket(session, endpoint.url, endpoint.path, on_update)
    return LeanSocketIO(session, endpoint.url, endpoint.path, endpoint.auth, on_update)


@dataclass
class Arrivals:
    seqs: array = field(default_factory=lambda: array("i"))
    times: array = field(default_factory=lambda: array("q"))
    receivers: array = field(default_factory=lambda: array("i"))


def _worker_main(
    endpoints: list[tuple[int, Endpoint]], payloads: list[bytes], pipe: Connection
) -> None:
    asyncio.run(_worker(endpoints, payloads, pipe))


async def _worker(
    endpoints: list[tuple[int, Endpoint]], payloads: list[bytes], pipe: Connection
) -> None:
    index = {update_key(p): i for i, p in enumerate(payloads)}
    got = Arrivals()
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    clients = []

    def receiver(k: int) -> Any:
        seqs_append, times_append, recv_append = (
            got.seqs.append,
            got.times.append,
            got.receivers.append,
        )

        def on_update(payload: bytes, t: int) -> None:
            seq = index.get(update_key(payload))
            if seq is not None:
                seqs_append(seq)
                times_append(t)
                recv_append(k)

        return on_update

    sem = asyncio.Semaphore(32)

    async def connect(k: int, endpoint: Endpoint) -> None:
        async with sem:
            client = open_client(session, endpoint, receiver(k))
            await client.open()
            clients.append(client)

    try:
        await asyncio.gather(*(connect(k, e) for k, e in endpoints))
        pipe.send(("ready", len(clients)))
        cpu0 = wall0 = 0.0
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command == "start":
                cpu0, wall0 = time.process_time(), time.monotonic()
            elif command == "count":
                pipe.send(("count", len(got.seqs)))
            elif command == "stop":
                cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
                errors = sum(len(c.errors) for c in clients)
                pipe.send(
                    (
                        "done",
                        got.seqs.tobytes(),
                        got.times.tobytes(),
                        got.receivers.tobytes(),
                        cpu,
                        wall,
                        errors,
                    )
                )
                break
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for client in clients:
            with contextlib.suppress(Exception):  # closing regardless
                await client.close()
        await session.close()


class Loadgen:
    """Receivers in ``workers`` processes (round-robin over endpoints)."""

    def __init__(self, endpoints: list[Endpoint], payloads: list[bytes], *, workers: int) -> None:
        self.endpoints = endpoints
        self.payloads = payloads
        self.workers = max(1, min(workers, len(endpoints)))
        self._ctx = mp.get_context("spawn")
        self._procs: list[Any] = []
        self._pipes: list[Connection] = []
        self.worker_cpu: list[float] = []
        self.worker_wall: list[float] = []
        self.errors = 0

    async def start(self, timeout_s: float = 120.0) -> None:
        indexed = list(enumerate(self.endpoints))  # receiver k is endpoints[k]
        for chunk in (indexed[i :: self.workers] for i in range(self.workers)):
            parent, child = self._ctx.Pipe()
            proc = self._ctx.Process(
                target=_worker_main, args=(chunk, self.payloads, child), daemon=True
            )
            proc.start()
            self._procs.append(proc)
            self._pipes.append(parent)
        for pipe in self._pipes:
            reply = await asyncio.wait_for(_recv(pipe), timeout_s)
            if reply[0] != "ready":
                raise RuntimeError(f"a load generator failed: {reply[1]}")

    def begin(self) -> None:
        for pipe in self._pipes:
            pipe.send("start")

    async def count(self) -> int:
        total = 0
        for pipe in self._pipes:
            pipe.send("count")
            reply = await _recv(pipe)
            total += reply[1] if reply[0] == "count" else 0
        return total

    async def finish(self) -> Arrivals:
        got = Arrivals()
        for pipe in self._pipes:
            pipe.send("stop")
        for pipe in self._pipes:
            reply = await _recv(pipe)
            if reply[0] != "done":
                raise RuntimeError(f"a load generator failed: {reply[1]}")
            _, seqs, times, receivers, cpu, wall, errors = reply
            got.seqs.frombytes(seqs)
            got.times.frombytes(times)
            got.receivers.frombytes(receivers)
            self.worker_cpu.append(cpu)
            self.worker_wall.append(wall)
            self.errors += errors
        for proc in self._procs:
            proc.join(10)
        return got

    def close(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()

    @property
    def busiest_cpu_share(self) -> float:
        shares = [c / w for c, w in zip(self.worker_cpu, self.worker_wall, strict=True) if w > 0]
        return max(shares, default=0.0)


async def _recv(pipe: Connection) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, pipe.recv)


def progress(label: str, sent: int, total: int, delivered: int, expected: int) -> None:
    """A progress bar on a terminal; nothing when stderr is a file or pipe."""
    if not sys.stderr.isatty():
        return
    width = 24
    done = int(width * sent / max(total, 1))
    bar = "#" * done + "." * (width - done)
    sys.stderr.write(
        f"\r  {label:<34} [{bar}] sent {sent}/{total} delivered {delivered}/{expected}   "
    )
    sys.stderr.flush()
