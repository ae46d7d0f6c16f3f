"""Webhooks (collab.webhooks, protocol.md §10.5): session events reach a
platform's endpoint signed, without content unless the endpoint opted in,
and survive a receiver that is down and a server restart.

Real collab servers in this process (tests.conftest.start_server) and a
real aiohttp receiver on a loopback port; the receiver is taken down
(answering 503, then not listening at all) and brought back on the same
port. Short retry delays; every wait is on a condition (tests.waiting.until).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from collab.client import CollabClient
from collab.webhooks import Webhooks, verify_signature
from rooms.outbox import RetryPolicy
from rooms.store_sqlite import SqliteStore
from tests.conftest import ADMIN_KEY, SECRET, RunningServer, mint, start_server
from tests.scrape import scrape
from tests.waiting import until

HOOK_SECRET = "whsec-clinic-" + "c" * 40
RECORDS_SECRET = "whsec-records-" + "r" * 40
FACILITATOR = {"name": "Dr Kim", "role": "facilitator"}
#: Quick retries, so a receiver that comes back is found in well under a second.
FAST: dict[str, Any] = {
    "timeout_s": 2.0,
    "retry": RetryPolicy(initial_s=0.05, max_s=0.2, give_up_after_s=600.0),
    "poll_interval_s": 0.05,
    "stats_interval_s": 0.0,
}


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    #: What the receiver answered.
    status: int

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """A platform's webhook endpoint: records every request, answers
    ``status`` (or hangs while ``hang`` is set); can stop listening and come
    back on the same port."""

    def __init__(self) -> None:
        self.requests: list[Delivery] = []
        self.status = 200
        self.hang = False
        self.released = asyncio.Event()
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{name}", self.handle)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        self.released.set()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.status
        delivery = Delivery(request.path, dict(request.headers), body, status)
        self.requests.append(delivery)
        if self.hang:
            await self.released.wait()
        return web.Response(status=status)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def delivered(self, name: str) -> list[Delivery]:
        """Requests to ``/name`` answered with a 2xx."""
        return [d for d in self.requests if d.path == f"/{name}" and 200 <= d.status < 300]

    def to(self, name: str) -> list[Delivery]:
        return [d for d in self.requests if d.path == f"/{name}"]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def servers() -> AsyncIterator[list[RunningServer]]:
    running: list[RunningServer] = []
    yield running
    for srv in running:
        if srv.app.registry is not None and not srv.app.registry.closing:
            await srv.stop()


async def serve(running: list[RunningServer], hooks: Webhooks, **overrides: Any) -> RunningServer:
    srv = await start_server(extensions=[hooks], **overrides)
    running.append(srv)
    return srv


def clinic(receiver: Receiver, events: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "name": "clinic",
        "url": receiver.url("clinic"),
        "secret": HOOK_SECRET,
        "events": events,
        **fields,
    }


def records(receiver: Receiver, events: list[str]) -> dict[str, Any]:
    return {
        "name": "records",
        "url": receiver.url("records"),
        "secret": RECORDS_SECRET,
        "events": events,
        "include_content": True,
    }


def check_signed(delivery: Delivery, secret: str = HOOK_SECRET) -> dict[str, Any]:
    """The delivery verifies under ``secret`` and its headers match its body."""
    assert verify_signature(secret, delivery.headers["Collab-Signature"], delivery.body)
    body = delivery.json
    assert delivery.headers["Collab-Event-Id"] == body["id"]
    assert delivery.headers["Collab-Event-Type"] == body["type"]
    assert delivery.headers["Content-Type"] == "application/json"
    assert set(body) == {"id", "type", "created_ms", "room", "data"}
    return body


async def outbox_entries(srv: RunningServer) -> int:
    return (await srv.app.store.outbox_stats()).entries  # type: ignore[union-attr]


async def test_a_facilitator_ends_a_session(receiver, servers):
    hooks = Webhooks([clinic(receiver, ["session.ended"])], **FAST)
    srv = await serve(servers, hooks)
    async with CollabClient(srv.url, "wh/end", auth=FACILITATOR) as kim:
        await kim.send_chat("what I said in the group stays here")
        await kim.call("mod:end", {})
        await until(lambda: receiver.delivered("clinic"), what="session.ended delivered")

    (delivery,) = receiver.to("clinic")
    body = check_signed(delivery)
    assert (body["type"], body["room"]) == ("session.ended", "wh/end")
    assert body["data"]["by"]["role"] == "facilitator"
    assert set(body["data"]["by"]) == {"userId", "role"}, "ids only"
    assert b"what I said" not in delivery.body, "no chat content"
    assert b"Dr Kim" not in delivery.body, "no display names"
    assert not verify_signature(
        "another-secret-" + "x" * 40, delivery.headers["Collab-Signature"], delivery.body
    )
    await until(lambda: hooks.stats.deliveries.get(("clinic", "ok")) == 1, what="counted")
    await until(lambda: _zero(outbox_entries(srv)), what="the outbox emptied")
    metrics = await scrape(srv.url)
    assert metrics['collab_webhook_deliveries_total{endpoint="clinic",outcome="ok"}'] == 1.0
    assert metrics['collab_webhook_events_total{type="session.ended"}'] == 1.0


async def _zero(count: Any) -> bool:
    return await count == 0


async def test_an_admin_export_is_announced_without_its_content(receiver, servers):
    hooks = Webhooks([clinic(receiver, ["export.ready"])], **FAST)
    srv = await serve(servers, hooks, dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY)
    token = mint("wh/export", role="facilitator", name="Kim")
    async with CollabClient(srv.url, "wh/export", auth={"token": token}) as kim:
        await kim.send_chat("a transcript line")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession() as http:
        url = f"{srv.url}/api/rooms/wh%2Fexport/export?format=markdown"
        async with http.get(url, headers=headers) as r:
            assert r.status == 200
            assert "a transcript line" in await r.text()
    await until(lambda: receiver.delivered("clinic"), what="export.ready delivered")

    (delivery,) = receiver.to("clinic")
    body = check_signed(delivery)
    assert (body["type"], body["room"]) == ("export.ready", "wh/export")
    assert body["data"] == {"format": "markdown", "by": None, "key": "admin"}
    assert b"transcript line" not in delivery.body
    assert ADMIN_KEY.encode() not in delivery.body


async def test_moderation_actions_carry_ids_only(receiver, servers):
    hooks = Webhooks([clinic(receiver, ["moderation.*"])], **FAST)
    srv = await serve(servers, hooks)
    async with CollabClient(srv.url, "wh/mod", auth=FACILITATOR) as kim:
        await kim.call("mod:lock", {"locked": True})
        await kim.call("mod:mute", {"userId": "user-ann", "muted": True})
        await until(lambda: len(receiver.delivered("clinic")) == 2, what="two moderation events")

    bodies = {b["type"]: b for b in (check_signed(d) for d in receiver.to("clinic"))}
    assert set(bodies) == {"moderation.lock", "moderation.mute"}
    mute = bodies["moderation.mute"]["data"]
    assert mute["action"] == "mute" and mute["by"]["role"] == "facilitator"
    assert mute["detail"] == "user-ann muted=true"
    assert bodies["moderation.lock"]["data"]["detail"] == "locked=true"


async def test_chat_messages_go_only_to_the_endpoint_that_opted_in(receiver, servers):
    hooks = Webhooks(
        [
            clinic(receiver, ["session.ended", "moderation.*"]),
            records(receiver, ["chat.message"]),
        ],
        **FAST,
    )
    srv = await serve(servers, hooks)
    async with CollabClient(srv.url, "wh/talk", auth=FACILITATOR) as kim:
        sent = await kim.send_chat("hello group")
        await kim.call("mod:end", {})
        await until(lambda: receiver.delivered("records"), what="chat.message delivered")
        await until(lambda: len(receiver.delivered("clinic")) == 2, what="end and moderation.end")

    (chat,) = receiver.to("records")
    body = check_signed(chat, RECORDS_SECRET)
    assert body["type"] == "chat.message"
    message = body["data"]["message"]
    assert (message["id"], message["text"], message["authorName"]) == (
        sent["id"],
        "hello group",
        "Dr Kim",
    )
    clinic_bodies = [check_signed(d) for d in receiver.to("clinic")]
    assert sorted(b["type"] for b in clinic_bodies) == ["moderation.end", "session.ended"]
    assert all(b"hello group" not in d.body for d in receiver.to("clinic"))
    # The end went only where it was wanted.
    assert [d.json["type"] for d in receiver.to("records")] == ["chat.message"]


async def test_a_receiver_that_is_down_gets_the_event_once_it_is_back(receiver, servers):
    receiver.status = 503
    hooks = Webhooks([clinic(receiver, ["session.ended"])], **FAST)
    srv = await serve(servers, hooks)
    async with CollabClient(srv.url, "wh/down", auth=FACILITATOR) as kim:
        await kim.call("mod:end", {})
    await until(lambda: len(receiver.to("clinic")) >= 3, what="retries while answering 503")

    await receiver.stop()  # not listening at all now
    failed = hooks.stats.deliveries.get(("clinic", "failed"), 0)
    await until(
        lambda: hooks.stats.deliveries.get(("clinic", "failed"), 0) >= failed + 3,
        what="retries while nothing listens",
    )
    assert await outbox_entries(srv) == 1, "kept in the outbox meanwhile"

    receiver.status = 200
    await receiver.start()  # back, on the same port
    await until(lambda: receiver.delivered("clinic"), what="delivered once it is back")

    attempts = receiver.to("clinic")
    assert len({d.headers["Collab-Event-Id"] for d in attempts}) == 1, "one event, one id"
    assert len({d.body for d in attempts}) == 1, "the same bytes every time"
    (delivered,) = receiver.delivered("clinic")
    assert check_signed(delivered)["type"] == "session.ended"
    await until(lambda: _zero(outbox_entries(srv)), what="the outbox emptied")
    assert hooks.stats.deliveries[("clinic", "ok")] == 1
    assert ("clinic", "given_up") not in hooks.stats.deliveries


async def test_a_restart_delivers_what_the_last_run_could_not(receiver, servers, tmp_path):
    data = tmp_path / "data"
    await receiver.stop()
    first_hooks = Webhooks([clinic(receiver, ["session.ended"])], **FAST)
    first = await serve(servers, first_hooks, store="sqlite", data_dir=data)
    async with CollabClient(first.url, "wh/restart", auth=FACILITATOR) as kim:
        await kim.call("mod:end", {})
    await until(
        lambda: first_hooks.stats.deliveries.get(("clinic", "failed"), 0) >= 1,
        what="a failed attempt",
    )
    await first.stop()
    assert await _sqlite_outbox(data) == 1, "the undelivered entry is on disk"

    await receiver.start()
    second_hooks = Webhooks([clinic(receiver, ["session.ended"])], **FAST)
    second = await serve(servers, second_hooks, store="sqlite", data_dir=data)
    await until(lambda: receiver.delivered("clinic"), what="delivered by the next start")

    (delivery,) = receiver.to("clinic")
    body = check_signed(delivery)
    assert (body["type"], body["room"]) == ("session.ended", "wh/restart")
    await until(lambda: _zero(outbox_entries(second)), what="the outbox emptied")


async def _sqlite_outbox(data: Path) -> int:
    store = await SqliteStore.open(data / "collab.sqlite3")
    try:
        return (await store.outbox_stats()).entries
    finally:
        await store.close()


async def test_an_event_handed_over_while_the_store_fails_is_not_lost(receiver, servers, tmp_path):
    data = tmp_path / "data"
    hooks = Webhooks([clinic(receiver, ["session.ended"])], **FAST)
    srv = await serve(servers, hooks, store="sqlite", data_dir=data)
    async with CollabClient(srv.url, "wh/outage", auth=FACILITATOR) as kim:
        # Another process holds the database's write lock: every write fails.
        lock = sqlite3.connect(data / "collab.sqlite3", isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            await kim.call("mod:end", {})
            await until(lambda: hooks.buffered == 1, what="kept in memory")
            assert hooks.stats.write_failures >= 1
            assert not receiver.requests
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        await until(lambda: receiver.delivered("clinic"), what="delivered after the outage")
    assert hooks.buffered == 0
    assert check_signed(receiver.to("clinic")[0])["room"] == "wh/outage"
    assert (await scrape(srv.url))["collab_webhook_outbox_write_failures_total"] >= 1.0


async def test_a_stop_gives_back_a_delivery_in_flight(receiver, servers, tmp_path):
    """A stop does not wait for a receiver that hangs; the entry it was
    sending is due again at once (not after its lease) for the next start."""
    data = tmp_path / "data"
    receiver.hang = True
    slow = {**FAST, "timeout_s": 60.0, "lease_s": 600.0}
    first = await serve(
        servers,
        Webhooks([clinic(receiver, ["session.ended"])], **slow),
        store="sqlite",
        data_dir=data,
    )
    async with CollabClient(first.url, "wh/stop", auth=FACILITATOR) as kim:
        await kim.call("mod:end", {})
    await until(lambda: receiver.to("clinic"), what="a delivery in flight")
    hanging_id = receiver.to("clinic")[0].headers["Collab-Event-Id"]

    await asyncio.wait_for(first.stop(), 30)  # a bound for a broken stop, not a timing check
    receiver.hang = False
    receiver.released.set()
    second = await serve(
        servers,
        Webhooks([clinic(receiver, ["session.ended"])], **slow),
        store="sqlite",
        data_dir=data,
    )
    await until(lambda: receiver.delivered("clinic"), what="delivered by the next start")
    (delivered,) = receiver.delivered("clinic")
    assert delivered.headers["Collab-Event-Id"] == hanging_id
    await until(lambda: _zero(outbox_entries(second)), what="the outbox emptied")


async def test_the_webhooks_file_configures_a_server(receiver, servers, tmp_path):
    path = tmp_path / "webhooks.json"
    path.write_text(json.dumps({"endpoints": [clinic(receiver, ["room.deleted"])]}))
    path.chmod(0o600)
    srv = await start_server(dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, webhooks_file=path)
    servers.append(srv)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{srv.url}/api/rooms", json={"id": "wh/file"}, headers=headers) as r:
            assert r.status == 201
        async with http.delete(f"{srv.url}/api/rooms/wh%2Ffile", headers=headers) as r:
            assert r.status == 200
    await until(lambda: receiver.delivered("clinic"), what="room.deleted delivered")
    body = check_signed(receiver.to("clinic")[0])
    assert (body["type"], body["room"], body["data"]) == ("room.deleted", "wh/file", {"by": None})
    metrics = await scrape(srv.url)
    assert metrics['collab_webhook_deliveries_total{endpoint="clinic",outcome="ok"}'] == 1.0
