"""The servers a benchmark run starts itself, and how their cost is read.

CPU time and peak RSS come from the server process's own accounting
(``/proc/<pid>/stat`` utime + stime, ``/proc/<pid>/status`` VmHWM), read at
the start and end of the measured window; Redis's from ``INFO cpu``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

__all__ = [
    "BENCH_DIR",
    "ManagedProcess",
    "ProcessSample",
    "current_rss",
    "free_port",
    "node_available",
    "redis_argv",
    "redis_cpu_s",
    "start_collab",
    "start_node_peer",
    "start_redis",
    "start_relay",
]

BENCH_DIR = Path(__file__).resolve().parent
NODE_DIR = BENCH_DIR / "node"
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ProcessSample:
    cpu_s: float
    peak_rss_bytes: int


def sample(pid: int) -> ProcessSample:
    """CPU seconds (user + system) and peak RSS of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    peak = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return ProcessSample(cpu, peak)


def current_rss(pid: int) -> int:
    """Resident memory of ``pid`` now, in bytes (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class ManagedProcess:
    name: str
    url: str
    proc: asyncio.subprocess.Process
    log_path: Path
    extra: dict[str, object] = field(default_factory=dict)
    #: How it was started (``restart`` starts it again the same way, same port).
    spawn: _Spawn | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def sample(self) -> ProcessSample:
        return sample(self.pid)

    def rss_bytes(self) -> int:
        """The process's resident memory now (VmRSS)."""
        return current_rss(self.pid)

    def kill(self) -> None:
        """SIGKILL, as a crash or a node lost would end it."""
        if self.proc.returncode is None:
            self.proc.kill()

    async def restart(self) -> None:
        """Stop it (if running) and start it again the same way."""
        if self.spawn is None:
            raise RuntimeError(f"{self.name} cannot be restarted")
        await self.stop()
        fresh = await _start(self.spawn)
        self.proc, self.log_path = fresh.proc, fresh.log_path

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@dataclass(frozen=True, slots=True)
class _Spawn:
    name: str
    argv: list[str]
    ready: bytes
    workdir: Path
    url: str
    env: dict[str, str] | None
    cwd: Path | None


async def _spawn(
    name: str,
    argv: list[str],
    ready: bytes,
    workdir: Path,
    url: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    return await _start(_Spawn(name, argv, ready, workdir, url, env, cwd))


async def _start(spec: _Spawn) -> ManagedProcess:
    name, argv, ready, workdir, url, env, cwd = (
        spec.name,
        spec.argv,
        spec.ready,
        spec.workdir,
        spec.url,
        spec.env,
        spec.cwd,
    )
    log_path = workdir / f"{name}.log"
    log = log_path.open("ab")
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=log, env=env, cwd=cwd
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"{name} did not start; see {log_path}") from None
    if ready not in line:
        proc.kill()
        raise RuntimeError(f"{name} did not start ({line!r}); see {log_path}")
    # Keep draining stdout so the process never blocks on a full pipe.
    asyncio.get_running_loop().create_task(_drain(proc.stdout))
    return ManagedProcess(name, url, proc, log_path, spawn=spec)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


#: The limits of protocol.md §8 that a load test drives past on purpose (one
#: sender at thousands of updates a second, thousands of connections from one
#: address), raised for the servers the harness starts. Their checks still run
#: on every event: what they cost is part of what is measured. Environment
#: variables, so a --checkout of code from before they existed starts too.
LOAD_TEST_LIMITS = {
    f"COLLAB_{name}": "1000000"
    for name in (
        "UPDATE_RATE_PER_S",
        "UPDATE_BURST",
        "AWARENESS_RATE_PER_S",
        "AWARENESS_BURST",
        "EVENT_RATE_PER_S",
        "EVENT_BURST",
        "CHAT_RATE_PER_S",
        "CHAT_BURST",
        "MAX_SESSIONS_PER_ADDRESS",
        "MAX_ROOM_CONNECTIONS",
        "MAX_CONNECTIONS_PER_USER",
        "MAX_FAILED_CONNECTS_PER_MIN",
    )
} | {
    "COLLAB_UPDATE_BYTES_PER_S": str(1 << 40),
    "COLLAB_UPDATE_BYTES_BURST": str(1 << 40),
    "COLLAB_AWARENESS_BYTES_PER_S": str(1 << 40),
    "COLLAB_AWARENESS_BYTES_BURST": str(1 << 40),
}


async def start_collab(
    workdir: Path,
    *extra: str,
    name: str = "collab",
    store: str = "sqlite",
    port: int | None = None,
    source: Path | None = None,
) -> ManagedProcess:
    """``collab serve`` (from ``source``, another checkout, if given)."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")}
    env.update(LOAD_TEST_LIMITS)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    argv = [
        sys.executable,
        "-m",
        "collab",
        "serve",
        "--dev",
        "--port",
        str(port),
        "--store",
        store,
        "--data-dir",
        str(workdir / name),
        "--log-level",
        "warning",
        *extra,
    ]
    return await _spawn(
        name,
        argv,
        b"collab listening on",
        workdir,
        f"http://127.0.0.1:{port}",
        env=env,
        cwd=source,
    )


async def start_relay(workdir: Path) -> ManagedProcess:
    port = free_port()
    argv = [sys.executable, "-m", "bench.relay_server", "--port", str(port)]
    return await _spawn(
        "relay",
        argv,
        b"relay listening on",
        workdir,
        f"http://127.0.0.1:{port}",
        cwd=BENCH_DIR.parent,
    )


def node_available() -> str | None:
    """None if the Node peer can run, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "@y" / "websocket-server").exists():
        return "bench/node/node_modules is missing (run: cd bench/node && npm ci)"
    return None


async def start_node_peer(workdir: Path) -> ManagedProcess:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    return await _spawn(
        "y-websocket-server",
        ["node", "server.mjs"],
        b"running at",
        workdir,
        f"http://127.0.0.1:{port}",
        env=env,
        cwd=NODE_DIR,
    )


def redis_argv(binary: str, port: int, workdir: Path, *extra: str) -> list[str]:
    """A throwaway redis-server on loopback: no persistence, its files in ``workdir``."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        *extra,
    ]


async def start_redis(workdir: Path) -> ManagedProcess:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    argv = redis_argv(binary, port, workdir, "--loglevel", "warning")
    log_path = workdir / "redis.log"
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=log_path.open("wb"), stderr=asyncio.subprocess.STDOUT
    )
    client = aioredis.Redis(port=port)
    try:
        for _ in range(200):
            try:
                if await client.ping():
                    break
            except (OSError, aioredis.RedisError):
                await asyncio.sleep(0.025)
    finally:
        await client.aclose()
    return ManagedProcess("redis", f"redis://127.0.0.1:{port}/0", proc, log_path)


async def redis_cpu_s(url: str) -> float:
    client = aioredis.from_url(url)
    try:
        info = await client.info("cpu")
    finally:
        await client.aclose()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
