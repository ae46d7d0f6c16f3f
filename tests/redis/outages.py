"""Helpers for Redis outage tests (tests/faults/test_redis_*.py): restarting a
real redis-server on its port, holding a node's subscriber off while its
command connection works, and what a node's log must not say.

Holding the subscriber off is how a test makes "the node wrote to the new
Redis before its subscription came back" happen every time, not by luck of
timing: the restarted server's ``default`` user may not SUBSCRIBE until
:func:`allow_subscribe`, so the node's subscriber keeps failing (and the node
reports ``"redis": "disconnected"``) while every command goes through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Array

from collab.client import CollabClient, CollabClientError
from tests.procs import RedisProcess
from tests.waiting import until

__all__ = [
    "NO_SUBSCRIBE",
    "allow_subscribe",
    "asyncio_complaints",
    "exactly_once",
    "messages",
    "restart",
    "send_until_stored",
    "status",
    "until_status",
]

#: redis-server arguments: the default user may do anything but SUBSCRIBE.
NO_SUBSCRIBE = ("--user", "default", "on", "nopass", "~*", "&*", "+@all", "-subscribe")

#: What asyncio logs when something is leaked or an error is dropped.
_COMPLAINTS = (
    "Unclosed",
    "Task exception was never retrieved",
    "Future exception was never retrieved",
    "Task was destroyed but it is pending",
)


def messages(client: CollabClient) -> list[dict[str, Any]]:
    return client.doc.get("messages", type=Array).to_py() or []


async def status(url: str) -> str | None:
    """A node's ``/healthz`` status (``ok``, ``degraded``), or None if it does not answer."""
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "/healthz") as resp:
            return str((await resp.json())["status"])
    except (TimeoutError, OSError, aiohttp.ClientError):
        return None


async def until_status(url: str, expected: str, *, timeout_s: float = 20) -> None:
    async def reached() -> bool:
        return await status(url) == expected

    await until(reached, timeout_s=timeout_s, what=f"{url} {expected}")


async def restart(
    redis: RedisProcess, workdir: Path, *extra: str, keep_args: bool = False
) -> RedisProcess:
    """Kill ``redis`` and start a new redis-server on its port with ``extra``
    arguments (and the old ones with ``keep_args``): empty, unless the old
    one persisted to its directory."""
    await redis.stop()
    args = (*redis.extra, *extra) if keep_args else extra
    again = RedisProcess(workdir, *args, port=redis.port)
    await again.start()
    return again


async def allow_subscribe(redis: RedisProcess) -> None:
    client = redis.client()
    try:
        await client.execute_command("ACL", "SETUSER", "default", "+subscribe")
    finally:
        await client.aclose()


async def send_until_stored(
    client: CollabClient, text: str, cmid: str, *, timeout_s: float = 20
) -> dict[str, Any]:
    """Send a chat message, again with the same id while the server answers
    ``store_unavailable`` (protocol.md §6.1); the ack once it is stored."""
    acks: list[dict[str, Any]] = []

    async def stored() -> bool:
        with contextlib.suppress(CollabClientError):
            acks.append(await client.send_chat(text, client_message_id=cmid))
        return bool(acks)

    await until(stored, timeout_s=timeout_s, what=f"chat {cmid} stored")
    return acks[0]


def exactly_once(held: Sequence[dict[str, Any]], acked_ids: Sequence[str]) -> None:
    """Every acknowledged message is held once, and nothing else is."""
    ids = [m["id"] for m in held]
    assert len(ids) == len(set(ids)), f"duplicates: {sorted(i for i in ids if ids.count(i) > 1)}"
    missing, unexpected = set(acked_ids) - set(ids), set(ids) - set(acked_ids)
    assert not missing and not unexpected, (
        f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
    )


def asyncio_complaints(log: str) -> list[str]:
    """Lines of a node's log where asyncio reports a leak or a lost error."""
    return [line for line in log.splitlines() if any(c in line for c in _COMPLAINTS)]
