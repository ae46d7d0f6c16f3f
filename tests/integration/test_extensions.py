"""Extension hooks (collab.extensions, issue 15): each hook is called with
what happened, after the fact; authenticate may call out and is cached;
custom events answer with an ack; a hook that fails or hangs stalls nothing.

Real servers in this process (tests.conftest.start_server), the Python
client and python-socketio's client; the "platform API" the authenticate
hook calls is a real aiohttp server on loopback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from pycrdt import Map

from collab.client import CollabClient, CollabClientError
from collab.extensions import (
    ChangeEvent,
    ChatEvent,
    ConnectEvent,
    DisconnectEvent,
    DocumentEvent,
    EventContext,
    EventHandler,
    ExportEvent,
    Extension,
    Extensions,
    ModerationEvent,
    RoomEvent,
)
from collab.logs import FORMAT, SafeFormatter
from crdt.types import RoomId, UserId
from rooms.errors import PermissionDenied
from rooms.identity import Identity, Role
from rooms.names import namespace_for
from tests.conftest import ADMIN_KEY, SECRET, RunningServer, start_server
from tests.waiting import until


def served_log(caplog: pytest.LogCaptureFixture) -> str:
    """The captured records as ``collab serve`` writes them."""
    formatter = SafeFormatter(FORMAT)
    return "\n".join(formatter.format(r) for r in caplog.records)


class Recorder(Extension):
    """Keeps every notification it is given."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def of(self, hook: str) -> list[Any]:
        return [event for name, event in self.seen if name == hook]

    async def on_connect(self, event: ConnectEvent) -> None:
        self.seen.append(("on_connect", event))

    async def on_disconnect(self, event: DisconnectEvent) -> None:
        self.seen.append(("on_disconnect", event))

    async def on_load_document(self, event: DocumentEvent) -> None:
        self.seen.append(("on_load_document", event))

    async def on_store_document(self, event: DocumentEvent) -> None:
        self.seen.append(("on_store_document", event))

    async def on_change(self, event: ChangeEvent) -> None:
        self.seen.append(("on_change", event))

    async def on_chat_message(self, event: ChatEvent) -> None:
        self.seen.append(("on_chat_message", event))

    async def on_moderation(self, event: ModerationEvent) -> None:
        self.seen.append(("on_moderation", event))

    async def on_export(self, event: ExportEvent) -> None:
        self.seen.append(("on_export", event))

    async def on_room_ended(self, event: RoomEvent) -> None:
        self.seen.append(("on_room_ended", event))


@pytest.fixture
async def servers() -> AsyncIterator[list[RunningServer]]:
    running: list[RunningServer] = []
    yield running
    for srv in running:
        await srv.stop()


async def serve(running: list[RunningServer], extensions: Any, **overrides: Any) -> RunningServer:
    srv = await start_server(extensions=extensions, **overrides)
    running.append(srv)
    return srv


async def test_a_session_meets_the_hooks_in_order(servers, tmp_path):
    rec = Recorder()
    srv = await serve(
        servers, [rec], store="sqlite", data_dir=tmp_path / "data", flush_interval_s=0.05
    )
    async with CollabClient(srv.url, "ext/hooks", auth={"name": "Ann"}) as ann:
        ann.doc.get("shapes", type=Map)["s1"] = {"type": "rect", "x": 1}
        await until(lambda: rec.of("on_change"), what="on_change")
        await until(lambda: rec.of("on_store_document"), what="on_store_document")
    await until(lambda: rec.of("on_disconnect"), what="on_disconnect")

    connect = rec.of("on_connect")[0]
    assert (connect.room, connect.doc, connect.identity.name) == ("ext/hooks", "board", "Ann")
    loaded = {e.doc for e in rec.of("on_load_document")}
    assert "board" in loaded
    change = rec.of("on_change")[0]
    assert change.room == "ext/hooks" and change.doc == "board"
    assert change.author is not None and change.author.name == "Ann"
    assert isinstance(change.update, bytes) and change.update
    stored = [e for e in rec.of("on_store_document") if e.doc == "board"]
    assert stored and stored[0].updates >= 1 and stored[0].bytes > 0
    assert rec.of("on_disconnect")[0].sid == connect.sid
    order = [name for name, _ in rec.seen]
    assert order.index("on_connect") < order.index("on_change") < order.index("on_disconnect")


async def test_chat_moderation_and_the_end_of_a_session(servers):
    rec = Recorder()
    srv = await serve(servers, [rec])
    auth = {"name": "Dr Kim", "role": "facilitator"}
    async with CollabClient(srv.url, "ext/talk", auth=auth) as kim:
        first = await kim.send_chat("hello group", client_message_id="m-1")
        again = await kim.send_chat("hello group", client_message_id="m-1")
        assert again["duplicate"] is True
        await kim.call("mod:lock", {"locked": True})
        await kim.call("mod:end", {})
        await until(lambda: rec.of("on_room_ended"), what="on_room_ended")

    chats = rec.of("on_chat_message")
    assert len(chats) == 1, "a duplicate is not told twice"
    assert chats[0].message["id"] == first["id"] and chats[0].message["text"] == "hello group"
    assert chats[0].author.name == "Dr Kim"
    assert any(e.doc == "chat" and e.author.name == "Dr Kim" for e in rec.of("on_change"))
    actions = [e.action for e in rec.of("on_moderation")]
    assert actions == ["mod:lock", "mod:end"]
    assert all(e.actor.name == "Dr Kim" for e in rec.of("on_moderation"))
    # The moderation writes to meta are changes too, by the facilitator.
    assert any(e.doc == "meta" for e in rec.of("on_change"))
    ended = rec.of("on_room_ended")[0]
    assert (ended.room, ended.reason, ended.actor.name) == ("ext/talk", "ended", "Dr Kim")


async def test_exports_and_deletions_through_the_admin_api(servers):
    rec = Recorder()
    srv = await serve(servers, [rec], dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY)
    from tests.conftest import mint

    token = mint("ext/admin", role="facilitator", name="Kim")
    async with CollabClient(srv.url, "ext/admin", auth={"token": token}) as kim:
        await kim.send_chat("for the record")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession() as http:
        room = "ext%2Fadmin"
        created = {"id": "ext/created", "title": "Made by the platform"}
        async with http.post(f"{srv.url}/api/rooms", json=created, headers=headers) as r:
            assert r.status == 201
        export_url = f"{srv.url}/api/rooms/{room}/export?format=markdown"
        async with http.get(export_url, headers=headers) as r:
            assert r.status == 200
        role = {"userId": "user-ann", "role": "observer"}
        async with http.post(f"{srv.url}/api/rooms/{room}/roles", json=role, headers=headers) as r:
            assert r.status == 200
        async with http.delete(f"{srv.url}/api/rooms/{room}", headers=headers) as r:
            assert r.status == 200
    await until(lambda: rec.of("on_room_ended"), what="on_room_ended")
    export = rec.of("on_export")[0]
    assert (export.room, export.format, export.actor) == ("ext/admin", "markdown", None)
    assert export.key  # the admin key's name, never the key
    assert ADMIN_KEY not in repr(export)
    assert rec.of("on_room_ended")[0].reason == "deleted"
    (role_set,) = rec.of("on_moderation")
    assert (role_set.action, role_set.actor) == ("admin:role", None)
    assert "user-ann" in role_set.detail["detail"] and role_set.detail["key"]
    # A room the admin API creates: its title is a change like any other.
    await until(
        lambda: any(e.room == "ext/created" and e.doc == "meta" for e in rec.of("on_change")),
        what="on_change for the created room's title",
    )


# -- authenticate ---------------------------------------------------------------------


class PlatformAuth(Extension):
    """Asks a platform's HTTP API who a ticket belongs to."""

    name = "platform-auth"

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    async def authenticate(self, auth: Any, room: RoomId) -> Identity | None:
        ticket = auth.get("ticket") if isinstance(auth, dict) else None
        if ticket is None:
            return None  # collab's own check decides
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.api_url}/who", params={"ticket": ticket, "room": room}) as r,
        ):
            if r.status != 200:
                raise PermissionDenied("the platform does not know this ticket")
            who = await r.json()
        return Identity(UserId(who["id"]), who["name"], Role(who["role"]))


@pytest.fixture
async def platform() -> AsyncIterator[tuple[str, list[str]]]:
    """A platform API on loopback: ``/who?ticket=`` answers for ``t-ann``."""
    calls: list[str] = []

    async def who(request: web.Request) -> web.Response:
        calls.append(request.query["ticket"])
        if request.query["ticket"] != "t-ann":
            return web.json_response({"error": "unknown"}, status=404)
        return web.json_response({"id": "p-17", "name": "Ann (platform)", "role": "observer"})

    app = web.Application()
    app.router.add_get("/who", who)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", calls
    await runner.cleanup()


async def test_authenticate_calls_the_platform_and_caches_its_answer(servers, platform):
    api, calls = platform
    rec = Recorder()
    srv = await serve(servers, Extensions([PlatformAuth(api), rec], auth_cache_s=60))
    async with CollabClient(srv.url, "ext/auth", auth={"ticket": "t-ann"}) as ann:
        assert ann.room_state is not None
    async with CollabClient(srv.url, "ext/auth", auth={"ticket": "t-ann"}):
        pass
    assert calls == ["t-ann"], "the second connect used the cached answer"
    await until(lambda: len(rec.of("on_connect")) == 2, what="two connects")
    identity = rec.of("on_connect")[0].identity
    assert (identity.user_id, identity.name) == ("p-17", "Ann (platform)")
    assert identity.role is Role.OBSERVER

    # Refused by the platform: the connect gets the extension's code; cached too.
    for _ in range(2):
        with pytest.raises(CollabClientError) as refused:
            await CollabClient(srv.url, "ext/auth", auth={"ticket": "t-bob"}).connect()
        assert refused.value.code == "permission_denied"
    assert calls == ["t-ann", "t-bob"]

    # No ticket: collab's own authenticator (--dev: open) decides.
    async with CollabClient(srv.url, "ext/auth", auth={"name": "Cy"}):
        pass
    assert rec.of("on_connect")[-1].identity.name == "Cy"


class Hanging(Extension):
    name = "hanging"

    async def authenticate(self, auth: Any, room: RoomId) -> Identity | None:
        await asyncio.Event().wait()
        return None


class Broken(Extension):
    name = "broken"

    async def authenticate(self, auth: Any, room: RoomId) -> Identity | None:
        raise RuntimeError("secret-detail-from-the-platform")


async def test_an_authenticate_that_hangs_or_fails_refuses_retryably(servers, caplog):
    caplog.set_level(logging.INFO)
    slow = await serve(servers, Extensions([Hanging()], auth_timeout_s=0.2))
    broken = await serve(servers, [Broken()])
    for srv in (slow, broken):
        with pytest.raises(CollabClientError) as refused:
            await CollabClient(srv.url, "ext/auth", auth={"name": "Ann"}).connect()
        assert refused.value.code == "room_unavailable"
    # The server's log (its formatter) has the exception's class and frames,
    # never its message.
    text = served_log(caplog)
    assert 'extension authenticate failed extension="broken"' in text
    assert "RuntimeError" in text
    assert "secret-detail-from-the-platform" not in text


# -- custom events ------------------------------------------------------------------


class Poll(Extension):
    name = "poll"

    def __init__(self) -> None:
        self.votes: dict[str, str] = {}

    def events(self) -> dict[str, EventHandler]:
        return {"poll:vote": self.vote}

    async def vote(self, ctx: EventContext, payload: Any) -> Any:
        if not isinstance(payload, dict) or payload.get("choice") not in ("a", "b"):
            raise PermissionDenied("choose a or b")
        self.votes[ctx.identity.user_id] = payload["choice"]
        tally = {c: list(self.votes.values()).count(c) for c in ("a", "b")}
        await ctx.reply_to_room("poll:results", tally)
        return tally


async def test_a_custom_event_is_answered_and_its_results_reach_the_room(servers):
    poll = Poll()
    srv = await serve(servers, [poll])
    namespace = namespace_for(RoomId("ext/poll"), "board")
    watcher = socketio.AsyncClient()
    results: list[Any] = []
    watcher.on("poll:results", results.append, namespace=namespace)
    await watcher.connect(
        srv.url, namespaces=[namespace], auth={"name": "Bo"}, transports=["websocket"]
    )
    try:
        async with CollabClient(srv.url, "ext/poll", auth={"name": "Ann"}) as ann:
            ack = await ann.call("poll:vote", {"choice": "a"})
            assert ack == {"ok": True, "result": {"a": 1, "b": 0}}
            with pytest.raises(CollabClientError) as refused:
                await ann.call("poll:vote", {"choice": "z"})
            assert refused.value.code == "permission_denied"
            await until(lambda: results == [{"a": 1, "b": 0}], what="the results")
            # An event no extension answers is still unknown.
            with pytest.raises(CollabClientError) as unknown:
                await ann.call("poll:close", {})
            assert unknown.value.code == "unknown_event"
    finally:
        await watcher.disconnect()


def test_reserved_or_doubled_event_names_are_refused_at_start():
    class Taken(Extension):
        def events(self) -> dict[str, EventHandler]:
            return {"chat:send": Poll().vote}

    with pytest.raises(ValueError, match="reserved"):
        Extensions([Taken()])
    with pytest.raises(ValueError, match="two extensions"):
        Extensions([Poll(), Poll()])


# -- hooks that fail or hang stall nothing --------------------------------------------------


class Stuck(Extension):
    """Its on_change waits until the test releases it."""

    name = "stuck"
    queue_limit = 5

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def on_change(self, event: ChangeEvent) -> None:
        self.entered.set()
        await self.release.wait()


class Failing(Extension):
    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    async def on_change(self, event: ChangeEvent) -> None:
        self.calls += 1
        raise RuntimeError("board-content-in-a-message")


async def test_a_hook_that_hangs_or_fails_never_holds_up_a_room(servers, caplog):
    stuck, failing, rec = Stuck(), Failing(), Recorder()
    srv = await serve(servers, [stuck, failing, rec])
    async with (
        CollabClient(srv.url, "ext/stall", auth={"name": "Ann"}) as ann,
        CollabClient(srv.url, "ext/stall", auth={"name": "Bob"}) as bob,
    ):
        shapes = ann.doc.get("shapes", type=Map)
        for i in range(20):
            shapes[f"s{i}"] = {"i": i}
        theirs = bob.doc.get("shapes", type=Map)
        await until(lambda: len(theirs) == 20, what="every edit relayed")
        # Every change reached the recorder (not held up by the stuck
        # extension), and the failing hook ran for each of them.
        changes = srv.app.metrics.traffic.updates_in
        await until(lambda: len(rec.of("on_change")) == changes, what="the recorder told")
        await until(lambda: failing.calls == changes, what="the failing hook ran for each")
        assert stuck.entered.is_set()
    queued, dropped, _ = srv.app.extensions.stats["stuck"]
    assert queued == 5 and dropped == changes - 6, (queued, dropped, changes)
    stuck.release.set()  # the stop drains what it holds
    assert srv.app.extensions.stats["failing"][2] == changes
    text = served_log(caplog)
    assert 'extension hook failed extension="failing" hook=on_change' in text
    assert "board-content-in-a-message" not in text
    async with aiohttp.ClientSession() as http, http.get(f"{srv.url}/metrics") as r:
        text = await r.text()
    assert 'collab_extension_events_dropped_total{extension="stuck"}' in text
