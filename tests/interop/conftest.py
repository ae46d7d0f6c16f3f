"""Fixtures for the JS interop suite: node, its modules, and node peers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.interop.jspeer import INTEROP_DIR, JsPeer
from tests.prereqs import unavailable

#: What the suite imports from node_modules (package.json pins the versions).
REQUIRED_MODULES = ("yjs", "y-socket.io", "socket.io-client", "y-protocols")


@pytest.fixture(scope="session")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        unavailable("node is not on PATH: the JS interop suite needs Node.js")
    return path


@pytest.fixture(scope="session")
def node_modules(node: str) -> None:
    """Install the pinned JS packages once (``npm ci``) if they are missing."""
    modules = INTEROP_DIR / "node_modules"
    if all((modules / name / "package.json").is_file() for name in REQUIRED_MODULES):
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("tests/interop/node_modules is missing and npm is not on PATH")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=INTEROP_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@pytest.fixture
async def js_peer(node: str, node_modules: None) -> AsyncIterator[Callable[..., Awaitable[JsPeer]]]:
    """``await js_peer(url, room, auth=..., autoConnect=...)``: a node process
    running js/peer.mjs (one SocketIOProvider), ended after the test."""
    peers: list[JsPeer] = []

    async def make(url: str, room: str, **config: Any) -> JsPeer:
        peer = await JsPeer.spawn(node, "peer.mjs", {"url": url, "room": room, **config})
        peers.append(peer)
        return peer

    yield make
    await asyncio.gather(*(p.close() for p in peers))
