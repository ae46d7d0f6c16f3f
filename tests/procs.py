"""Real processes for tests: redis-server (single or a 3-master cluster) and
``collab serve`` nodes, on free loopback ports, stopped by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from functools import partial
from pathlib import Path

import redis.asyncio as aioredis

from bench.servers import redis_argv
from tests.waiting import until

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """One redis-server without persistence (a restart comes back empty)."""

    def __init__(self, workdir: Path, *extra: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir / f"redis-{self.port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra = extra
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        assert REDIS_SERVER is not None, "redis-server is not installed"
        self.proc = await asyncio.create_subprocess_exec(
            *redis_argv(
                REDIS_SERVER, self.port, self.workdir, "--protected-mode", "no", *self.extra
            ),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = aioredis.Redis(port=self.port, socket_connect_timeout=0.5)

        async def answers() -> bool:
            with contextlib.suppress(OSError, aioredis.RedisError):
                return bool(await client.ping())
            return False

        try:
            await until(answers, timeout_s=5, what=f"redis-server on {self.port} answering")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None

    def client(self) -> aioredis.Redis:
        return aioredis.Redis(port=self.port)


async def _cluster_ok(client: aioredis.Redis) -> bool:
    return "cluster_state:ok" in str(await client.execute_command("CLUSTER", "INFO"))


class RedisClusterProcesses:
    """Three masters, slots split by redis-cli --cluster create."""

    def __init__(self, workdir: Path) -> None:
        # Each node also needs a free cluster-bus port (by default port + 10000,
        # which a random free port can push past 65535 or onto a busy port).
        self.nodes = [
            RedisProcess(
                workdir,
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                str(free_port()),
            )
            for _ in range(3)
        ]
        for node in self.nodes:
            node.extra = (*node.extra, "--cluster-config-file", f"nodes-{node.port}.conf")

    @property
    def url(self) -> str:
        return self.nodes[0].url

    async def start(self) -> None:
        assert REDIS_CLI is not None, "redis-cli is not installed"
        await asyncio.gather(*(n.start() for n in self.nodes))
        create = await asyncio.create_subprocess_exec(
            REDIS_CLI,
            "--cluster",
            "create",
            *(f"127.0.0.1:{n.port}" for n in self.nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(create.communicate(), 60)
        assert create.returncode == 0, out.decode()
        for node in self.nodes:
            client = node.client()
            try:
                await until(partial(_cluster_ok, client), timeout_s=20, what="cluster_state:ok")
            finally:
                await client.aclose()

    async def stop(self) -> None:
        await asyncio.gather(*(n.stop() for n in self.nodes))


class CollabNode:
    """``collab serve`` as a real process."""

    def __init__(self, workdir: Path, *args: str, node_id: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.node_id = node_id
        self.args = args
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr_path = workdir / f"collab-{node_id}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")}
        self._stderr = self.stderr_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collab",
            "serve",
            "--port",
            str(self.port),
            "--node-id",
            self.node_id,
            "--data-dir",
            str(self.workdir / self.node_id),
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if b"collab listening on" not in line:
            raise RuntimeError(f"node {self.node_id} did not start: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return None
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        self._stderr.close()
        return code

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
