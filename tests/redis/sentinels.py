"""Redis Sentinel as real processes: a master, a replica and three sentinels
(``redis-server <conf> --sentinel``: the server binary runs sentinel mode),
on free loopback ports, with short failure detection so a failover takes a
few seconds. Stopped by the tests."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from tests.procs import REDIS_SERVER, RedisProcess, free_port
from tests.waiting import until

__all__ = ["MASTER_NAME", "SentinelGroup"]

MASTER_NAME = "collab-master"


class SentinelGroup:
    """One master, one replica, three sentinels watching them (quorum 2)."""

    def __init__(self, workdir: Path, *master_args: str) -> None:
        self.workdir = workdir
        self.master = RedisProcess(workdir, *master_args)
        self.replica = RedisProcess(workdir, "--replicaof", "127.0.0.1", str(self.master.port))
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._sentinels: list[asyncio.subprocess.Process] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    async def start(self) -> None:
        assert REDIS_SERVER is not None, "redis-server is not installed"
        await self.master.start()
        await self.replica.start()
        await until(self._replica_synced, timeout_s=15, what="the replica in sync")
        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\n"
                "bind 127.0.0.1\n"
                "protected-mode no\n"
                f"dir {self.workdir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 800\n"
                f"sentinel failover-timeout {MASTER_NAME} 4000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self._sentinels.append(
                await asyncio.create_subprocess_exec(
                    REDIS_SERVER,
                    str(conf),
                    "--sentinel",
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        await until(self._sentinels_agree, timeout_s=20, what="three sentinels watching")

    async def _replica_synced(self) -> bool:
        return (await _info(self.replica.port, "replication")).get("master_link_status") == "up"

    async def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            state = await self._master_state(port)
            if (
                state is None
                or int(state.get("num-other-sentinels", 0)) != 2
                or int(state.get("num-slaves", 0)) != 1
            ):
                return False
        return True

    async def _master_state(self, port: int) -> dict[str, Any] | None:
        client = aioredis.Redis(port=port, socket_connect_timeout=0.5, decode_responses=True)
        try:
            return dict(await client.sentinel_master(MASTER_NAME))
        except (OSError, aioredis.RedisError):
            return None
        finally:
            await client.aclose()

    async def master_port(self) -> int | None:
        """The master's port as the first sentinel answering says."""
        for port in self.sentinel_ports:
            state = await self._master_state(port)
            if state is not None:
                return int(state["port"])
        return None

    async def cut_replication(self) -> None:
        """From now on the master's writes do not reach the replica (as when
        asynchronous replication lags at the moment the master dies): the
        master refuses the replica's SYNC/PSYNC and drops its link."""
        client = self.master.client()
        try:
            await client.execute_command(
                "ACL", "SETUSER", "default", "-psync", "-sync", "-replconf"
            )
            await client.execute_command("CLIENT", "KILL", "TYPE", "replica")
        finally:
            await client.aclose()

        async def link_down() -> bool:
            info = await _info(self.replica.port, "replication")
            return info.get("master_link_status") == "down"

        await until(link_down, timeout_s=10, what="the replica's link down")

    async def kill_master_and_fail_over(self) -> None:
        """SIGKILL the master; return once every sentinel names the replica
        and it answers as a master."""
        await self.master.stop()

        async def promoted() -> bool:
            for port in self.sentinel_ports:
                state = await self._master_state(port)
                if state is None or int(state["port"]) != self.replica.port:
                    return False
            return (await _info(self.replica.port, "replication")).get("role") == "master"

        await until(promoted, timeout_s=30, what="the replica promoted")

    async def stop(self) -> None:
        for proc in self._sentinels:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await self.replica.stop()
        await self.master.stop()


async def _info(port: int, section: str) -> dict[str, Any]:
    client = aioredis.Redis(port=port, socket_connect_timeout=0.5, decode_responses=True)
    try:
        with contextlib.suppress(OSError, aioredis.RedisError):
            return dict(await client.info(section))
        return {}
    finally:
        await client.aclose()
