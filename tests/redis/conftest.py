"""Fixtures for scale-out tests: a real redis-server and real ``collab serve`` nodes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from collab.client import CollabClient
from tests.conftest import ADMIN_KEY, SECRET, RunningServer, mint, start_server
from tests.procs import CollabNode

#: The key the nodes of one test authenticate their Redis traffic with.
CLUSTER_KEY = "cluster-key-for-tests-" + "c" * 20

pytestmark = pytest.mark.slow


@pytest.fixture
async def node_factory(tmp_path) -> Callable[..., Awaitable[CollabNode]]:
    nodes: list[CollabNode] = []

    async def make(
        redis_url: str, node_id: str, *extra: str, port: int | None = None, start: bool = True
    ) -> CollabNode:
        """A node on ``redis_url`` (any URL: redis://user:password@..., rediss://,
        unix://...?db=N); ``extra`` flags after the defaults, e.g. the Redis
        options --redis-password-file, --redis-tls-ca, --redis-tls-cert and
        --redis-tls-key (tests/redis/test_redis_security.py). With ``start``
        False the caller starts it (a start expected to fail)."""
        node = CollabNode(
            tmp_path,
            "--jwt-secret",
            SECRET,
            "--admin-key",
            ADMIN_KEY,
            "--cluster-key",
            CLUSTER_KEY,
            "--store",
            "redis",
            "--redis-url",
            redis_url,
            "--log-level",
            "info",
            "--flush-interval-s",
            "0.2",
            *extra,
            node_id=node_id,
            port=port,
        )
        nodes.append(node)
        if start:
            await node.start()
        return node

    yield make
    for node in nodes:
        if node.proc is not None and node.proc.returncode is None:
            node.resume()
            await node.kill()


@pytest.fixture
async def clients():
    made: list[CollabClient] = []

    async def make(node_url: str, room: str, doc_name: str = "board", **kwargs) -> CollabClient:
        # A user of its own per client, as open identity would give it.
        user = f"c{len(made)}"
        kwargs.setdefault("auth", {"token": mint(room, name=user, sub=user)})
        client = CollabClient(node_url, room, doc_name, **kwargs)
        made.append(client)
        await client.connect(timeout_s=15)
        return client

    yield make
    await asyncio.gather(*(c.close(drain_timeout_s=1) for c in made), return_exceptions=True)


async def metrics(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        text = await resp.text()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def healthz(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/healthz") as resp:
        return await resp.json()


@pytest.fixture
async def in_process_nodes(redis_server):
    """Start collab servers in this process on the test's redis-server (so
    their registries can be looked into), named by ``names``; every one is
    stopped after the test."""
    started: list[RunningServer] = []

    async def start(*names: str, **settings) -> list[RunningServer]:
        made = []
        for name in names:
            node = await start_server(
                store="redis",
                redis_url=redis_server.url,
                dev=False,
                jwt_secret=SECRET,
                admin_key=ADMIN_KEY,
                cluster_key=CLUSTER_KEY,
                node_id=name,
                flush_interval_s=0.1,
                **settings,
            )
            started.append(node)
            made.append(node)
        return made

    yield start
    for node in started:
        await node.stop()
