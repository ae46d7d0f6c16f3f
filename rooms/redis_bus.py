"""Per-document pub/sub between nodes (docs/architecture.md §6).

A node subscribes to a document's channel only while it has the document
loaded, and unsubscribes when it unloads: traffic of room X never reaches a
node without members in X. On a Redis Cluster channels are sharded
(SSUBSCRIBE on the node that owns the channel's slot); otherwise plain
SUBSCRIBE.

Each Redis node we subscribe on gets one dedicated connection, made with the
same options as every other connection (the URL's user, password, TLS,
socket and database: rooms.redis_conn), with no read timeout (redis-py's
default socket timeout would end a blocking listen), and a listener task.
When a connection drops (Redis restarted, or it dropped us for passing
``client-output-buffer-limit pubsub``), the listener reconnects
with backoff, resubscribes every channel, waits until Redis confirms every
subscription (so the catch-up that follows reads nothing the subscription
could still miss) and reports the reconnect, so the node catches up from the
streams; what arrived meanwhile is delivered after the catch-up began. With
Redis Sentinel each connection goes to the master the sentinels name at that
moment, so after a failover the subscriber follows the new master. Publishing (awareness and control
envelopes; updates are published by the store's append script) is batched:
everything published in one event-loop turn goes out in one pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from rooms.redis_conn import RedisOptions, describe_redis_error, master_address
from rooms.tasks import stop_if_cancelled

__all__ = ["RedisBus"]

log = logging.getLogger("collab.redis")

_BACKOFF_START_S = 0.05
_BACKOFF_MAX_S = 2.0
_POLL_S = 1.0
#: How long a (re)connection waits for Redis to confirm its subscriptions.
_CONFIRM_S = 5.0

#: A subscriber's Redis node: a cluster node's (host, port), or this one for
#: the address of the URL itself (a single server, maybe a unix socket).
Address = tuple[str, int]
_URL_ADDRESS: Address = ("", 0)


class _Subscriber:
    """One subscription connection to one Redis node, and its listener."""

    def __init__(self, bus: RedisBus, address: Address) -> None:
        self.bus = bus
        self.address = address
        #: Why the last connection attempt failed (for a clear startup error).
        self.last_error: str | None = None
        #: Channels we want; ``_active`` those the connection has subscribed.
        self.channels: set[str] = set()
        self._active: set[str] = set()
        self._lock = asyncio.Lock()
        self.connected = False
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_ready(self, timeout_s: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    def want(self, channel: str, on: bool) -> None:
        """Record the wish now; :meth:`apply` makes the connection follow it."""
        if on:
            self.channels.add(channel)
        else:
            self.channels.discard(channel)

    async def apply(self, channel: str) -> None:
        """Subscribe or unsubscribe ``channel`` to match the latest wish, so
        racing subscribe/unsubscribe calls end in the state last asked for."""
        async with self._lock:
            wanted = channel in self.channels
            if not self.connected or self._pubsub is None or wanted == (channel in self._active):
                return
            # On failure the listener reconnects and resubscribes everything.
            with contextlib.suppress(RedisError, OSError):
                await self._command("subscribe" if wanted else "unsubscribe", channel)
                if wanted:
                    self._active.add(channel)
                else:
                    self._active.discard(channel)

    async def _command(self, action: str, *channels: str) -> None:
        sharded = self.bus.cluster
        name = ("s" if sharded else "") + action
        await getattr(self._pubsub, name)(*channels)

    async def _run(self) -> None:
        backoff = _BACKOFF_START_S
        first = True
        while True:
            # No read timeout (it would end the listen), and no silent retries:
            # redis-py would reconnect and resubscribe by itself, and the
            # messages missed meanwhile would never be caught up.
            client: Any = None
            pubsub: Any = None
            try:
                client = aioredis.Redis(
                    **await self._connection_kwargs(),
                    # CLIENT LIST shows which node a subscriber connection is.
                    client_name=self.bus.client_name("sub"),
                    retry=Retry(NoBackoff(), 0),
                    socket_timeout=None,
                    socket_connect_timeout=5.0,
                    health_check_interval=10,
                )
                pubsub = client.pubsub()
                # A node-level channel keeps the connection subscribed (and
                # readable) even while no document is loaded.
                await pubsub.subscribe(self.bus.node_channel)
                self._pubsub = pubsub
                async with self._lock:
                    self._active = set(self.channels)
                    if self._active:
                        await self._command("subscribe", *self._active)
                    early = await self._confirm(pubsub, {self.bus.node_channel, *self._active})
                self.connected = True
                self.last_error = None
                self._ready.set()
                backoff = _BACKOFF_START_S
                if not first:
                    log.warning("redis subscriber reconnected at=%s", self.where)
                    await self.bus.reconnected()
                first = False
                for data in early:
                    self.bus.deliver(data)
                while True:
                    message = await pubsub.get_message(timeout=_POLL_S)
                    if message is not None and message["type"] in ("message", "smessage"):
                        self.bus.deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                stop_if_cancelled()
                self.last_error = describe_redis_error(exc, self.bus.options)
                if self.connected:
                    log.warning("redis subscriber lost at=%s: %s", self.where, self.last_error)
                self.connected = False
                self.bus.disconnected()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
            finally:
                self._pubsub = None
                self.connected = False
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.aclose()

    async def _connection_kwargs(self) -> dict[str, Any]:
        """Where this subscriber connects: its cluster node, the URL's address,
        or the master the sentinels name now."""
        options = self.bus.options
        host, port = self.address
        if options.sentinel:
            host, port = await master_address(options)
        return options.connection_kwargs(host=host or None, port=port or None)

    async def _confirm(self, pubsub: Any, channels: set[str]) -> list[bytes]:
        """Wait until Redis has confirmed a subscription to every one of
        ``channels`` (a refusal, e.g. an ACL's, raises); return the messages
        that arrived meanwhile, for delivery after the catch-up starts.
        TimeoutError past :data:`_CONFIRM_S`."""
        waiting = {channel.encode() for channel in channels}
        early: list[bytes] = []
        async with asyncio.timeout(_CONFIRM_S):
            while waiting:
                message = await pubsub.get_message(timeout=_POLL_S)
                if message is None:
                    continue
                if message["type"] in ("subscribe", "ssubscribe"):
                    waiting.discard(bytes(message["channel"]))
                elif message["type"] in ("message", "smessage"):
                    early.append(message["data"])
        return early

    @property
    def where(self) -> str:
        host, port = self.address
        return f"{host}:{port}" if host else self.bus.options.display

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class RedisBus:
    """Subscriptions and batched publishing for one node."""

    def __init__(
        self,
        command_client: Any,
        *,
        cluster: bool,
        node_id: str,
        options: RedisOptions,
        on_message: Callable[[bytes], None],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self.client = command_client
        self.cluster = cluster
        self.node_id = node_id
        self.options = options
        self.node_channel = f"collab:node:{node_id}"
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self._subscribers: dict[Address, _Subscriber] = {}
        self._outbox: list[tuple[str, bytes]] = []
        self._flush_scheduled = False
        self._publishing: set[asyncio.Task[None]] = set()
        self.publish_failures = 0
        self.lost = 0  # times a subscription connection dropped

    def client_name(self, role: str) -> str:
        """A Redis client name for this node's ``role`` connection (no spaces)."""
        return re.sub(r"[^A-Za-z0-9_.:-]", "_", f"collab:{role}:{self.node_id}")[:128]

    @property
    def healthy(self) -> bool:
        return all(s.connected for s in self._subscribers.values())

    def _node_for(self, channel: str) -> Address:
        if self.cluster:
            node = self.client.get_node_from_key(channel)
            return str(node.host), int(node.port)
        return _URL_ADDRESS

    def _subscriber(self, channel: str) -> _Subscriber:
        address = self._node_for(channel)
        sub = self._subscribers.get(address)
        if sub is None:
            sub = self._subscribers[address] = _Subscriber(self, address)
            sub.start()
        return sub

    async def start(self, *, timeout_s: float = 5.0) -> None:
        """Open the subscription connection (the node channel's shard) and
        wait until it is up; OSError saying why if it cannot be."""
        sub = self._subscriber(self.node_channel)
        try:
            await sub.wait_ready(timeout_s)
        except TimeoutError:
            raise OSError(f"cannot subscribe on Redis: {sub.last_error or 'no answer'}") from None

    async def subscribe(self, channel: str) -> None:
        sub = self._subscriber(channel)
        sub.want(channel, True)
        await sub.apply(channel)

    async def unsubscribe(self, channel: str) -> None:
        sub = self._subscribers.get(self._node_for(channel))
        if sub is not None:
            sub.want(channel, False)
            await sub.apply(channel)

    def release(self, channel: str) -> None:
        """Unsubscribe (now for the bookkeeping, soon on the wire)."""
        sub = self._subscribers.get(self._node_for(channel))
        if sub is not None:
            sub.want(channel, False)
            task = asyncio.get_running_loop().create_task(sub.apply(channel))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    def subscribed(self) -> set[str]:
        return set().union(*(s.channels for s in self._subscribers.values()))

    def publish(self, channel: str, data: bytes) -> None:
        """Queue ``data`` for ``channel``; sent with everything else queued in
        this event-loop turn, in one pipeline."""
        self._outbox.append((channel, data))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._spawn_flush)

    def _spawn_flush(self) -> None:
        self._flush_scheduled = False
        batch, self._outbox = self._outbox, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _send(self, batch: list[tuple[str, bytes]]) -> None:
        command = "spublish" if self.cluster else "publish"
        try:
            # The context resets the pipeline, also when Redis is unreachable
            # (else asyncio reports an unclosed pipeline when it is collected).
            async with self.client.pipeline(transaction=False) as pipe:
                for channel, data in batch:
                    getattr(pipe, command)(channel, data)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # Awareness and control are ephemeral: a lost one is superseded by
            # the next (clients renew awareness every 15 s).
            self.publish_failures += len(batch)
            log.warning("redis publish failed (%d messages): %s", len(batch), exc)

    def deliver(self, data: bytes) -> None:
        self._on_message(data)

    def disconnected(self) -> None:
        self.lost += 1

    async def reconnected(self) -> None:
        try:
            await self._on_reconnect()
        except Exception:
            log.exception("catch-up after reconnect failed")

    async def close(self) -> None:
        for sub in self._subscribers.values():
            await sub.close()
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)
