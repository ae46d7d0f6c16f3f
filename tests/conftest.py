"""Shared fixtures: real collab servers on loopback ports picked at run time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from collab.app import CollabApp, create_app
from collab.client import CollabClient
from collab.config import settings_from
from tests.prereqs import unavailable


@dataclass
class RunningServer:
    app: CollabApp
    runner: web.AppRunner
    url: str

    @property
    def registry(self) -> Any:
        assert self.app.registry is not None
        return self.app.registry

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_server(*, extensions: Any = (), **overrides: Any) -> RunningServer:
    """A collab server on 127.0.0.1 with a free port (in this process), with
    ``extensions`` (collab.extensions) if given."""
    overrides.setdefault("store", "memory")
    overrides.setdefault("dev", True)
    overrides.setdefault("port", 0)
    settings = settings_from(None, {}, **overrides)
    app = create_app(settings, extensions=extensions)
    runner = web.AppRunner(app.web_app, handle_signals=False)
    await runner.setup()
    site = app.site(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return RunningServer(app, runner, f"http://127.0.0.1:{port}")


@pytest.fixture
async def server_factory() -> AsyncIterator[Callable[..., Awaitable[RunningServer]]]:
    servers: list[RunningServer] = []

    async def make(**overrides: Any) -> RunningServer:
        srv = await start_server(**overrides)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        await srv.stop()


@pytest.fixture
async def server(server_factory: Callable[..., Awaitable[RunningServer]]) -> RunningServer:
    return await server_factory()


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[..., Awaitable[CollabClient]]]:
    clients: list[CollabClient] = []

    async def make(url: str, room: str, doc_name: str = "board", **kwargs: Any) -> CollabClient:
        kwargs.setdefault("auth", {"name": f"user{len(clients)}"})
        client = CollabClient(url, room, doc_name, **kwargs)
        clients.append(client)
        await client.connect()
        return client

    yield make
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


SECRET = "test-secret-" + "x" * 40
ADMIN_KEY = "admin-key-for-tests-0123456789"


def mint(
    room: str,
    role: str = "participant",
    name: str = "Ann",
    sub: str | None = None,
    ttl_s: float = 3600,
    **kwargs: Any,
) -> str:
    """A token signed with the test servers' HS256 secret."""
    from collab.tokens import mint_token

    return mint_token(
        SECRET,
        algorithm="HS256",
        sub=sub or f"user-{name.lower()}",
        name=name,
        room=room,
        role=role,
        ttl_s=ttl_s,
        **kwargs,
    )


@pytest.fixture
async def token_server(server_factory: Callable[..., Awaitable[RunningServer]]) -> RunningServer:
    """A server that only accepts signed tokens (no --dev), with an admin key."""
    return await server_factory(dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY)


@pytest.fixture(scope="session")
def redis_binary() -> str:
    from tests.procs import REDIS_SERVER

    if REDIS_SERVER is None:
        unavailable("redis-server is not installed (README: Prerequisites); CI installs it")
    return REDIS_SERVER


@pytest.fixture
async def redis_server(redis_binary, tmp_path):
    """A fresh redis-server on a free loopback port, killed after the test."""
    from tests.procs import RedisProcess

    server = RedisProcess(tmp_path)
    await server.start()
    yield server
    await server.stop()
