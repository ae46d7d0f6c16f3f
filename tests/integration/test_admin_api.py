"""The admin HTTP API: auth, rooms, info, export, delete, audit, retention, OpenAPI."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import aiohttp
import jsonschema
import pytest
from openapi_spec_validator import validate
from pycrdt import Map

from collab.admin import ADMIN_FAILURES
from collab.client import CollabClient
from collab.openapi import OPENAPI
from tests.conftest import ADMIN_KEY, SECRET, mint
from tests.waiting import until

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def check(schema_name: str, body: Any) -> None:
    """Validate a response body against a schema of the OpenAPI document."""
    schema = {
        "$ref": f"#/components/schemas/{schema_name}",
        **{"components": OPENAPI["components"]},
    }
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)


class Api:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base, self.http = base, http

    async def call(
        self, method: str, path: str, *, headers: dict | None = AUTH, **kwargs: Any
    ) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as r:
            ctype = r.headers.get("Content-Type", "")
            body = await (r.json() if ctype.startswith("application/json") else r.text())
            return r.status, body


@pytest.fixture
async def api(token_server):
    async with aiohttp.ClientSession() as http:
        yield Api(token_server.url, http)


def test_openapi_document_is_valid():
    validate(OPENAPI)


async def test_openapi_is_served(api):
    status, body = await api.call("GET", "/api/openapi.json", headers=None)
    assert status == 200 and body == OPENAPI


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"Authorization": "Bearer wrong-key-000000000000"},
        {"Authorization": ADMIN_KEY},
        {"Authorization": f"Basic {ADMIN_KEY}"},
    ],
)
async def test_unauthorized(api, token_server, headers):
    for method, path in [
        ("GET", "/api/rooms"),
        ("POST", "/api/rooms"),
        ("DELETE", "/api/rooms/x"),
        ("GET", "/api/rooms/x/audit"),
    ]:
        status, body = await api.call(method, path, headers=headers)
        assert status == 401
        check("Error", body)
        assert body["error"]["code"] == "unauthorized"
    # One record for the first failure of an address in a minute; the rest
    # are counted into one summary when the minute ends (protocol.md §10.2).
    await token_server.registry.flush_audit()
    records = await token_server.registry.store.read_audit(None)
    failed = [r for r in records if r.action == "admin_auth" and r.outcome == "unauthorized"]
    assert len(failed) == 1
    failures = token_server.app.web_app[ADMIN_FAILURES]
    assert failures.report(time.monotonic() + 60) == 1
    await token_server.registry.flush_audit()
    records = await token_server.registry.store.read_audit(None)
    failed = [r for r in records if r.action == "admin_auth" and r.outcome == "unauthorized"]
    assert len(failed) == 2 and "repeats=3" in failed[1].detail


async def test_create_list_info(api, token_server, client_factory):
    status, room = await api.call(
        "POST",
        "/api/rooms",
        json={"id": "clinic-7/group-a", "title": "Tuesday group", "retentionDays": 14},
    )
    assert status == 201, room
    check("RoomInfo", room)
    assert room["title"] == "Tuesday group" and room["retentionDays"] == 14
    status, body = await api.call("POST", "/api/rooms", json={"id": "clinic-7/group-a"})
    assert status == 409 and body["error"]["code"] == "conflict"

    fac = await client_factory(
        token_server.url,
        "clinic-7/group-a",
        auth={"token": mint("clinic-7/*", role="facilitator", name="F", sub="f")},
    )
    await client_factory(
        token_server.url,
        "clinic-7/group-a",
        "chat",
        auth={"token": mint("clinic-7/*", name="P", sub="p")},
    )
    fac.doc.get("shapes", type=Map)["s"] = {"type": "rect", "x": 1, "y": 2, "w": 3, "h": 4}
    assert fac.room_state.get("title") == "Tuesday group" or await _title(fac)

    status, listing = await api.call("GET", "/api/rooms")
    assert status == 200
    check("RoomList", listing)
    (entry,) = [r for r in listing["rooms"] if r["id"] == "clinic-7/group-a"]
    assert entry["connections"] == 2 and entry["title"] == "Tuesday group"

    path = "/api/rooms/" + quote("clinic-7/group-a", safe="")
    await fac.wait_for(lambda: True)

    async def board_stored() -> bool:
        _, body = await api.call("GET", path)
        return bool(body["documentBytes"].get("board", 0) > 10)

    await until(board_stored, what="the board's bytes in the room info")
    status, info = await api.call("GET", path)
    assert status == 200
    check("RoomInfo", info)
    assert {(u["userId"], u["role"]) for u in info["online"]} == {
        ("f", "facilitator"),
        ("p", "participant"),
    }
    assert set(info["documentBytes"]) >= {"board", "chat", "meta"}


async def _title(client: CollabClient) -> bool:
    await client.wait_for(lambda: client.room_state.get("title") == "Tuesday group")
    return True


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"data": b"{not json"}, "invalid_payload"),
        ({"json": ["a"]}, "invalid_payload"),
        ({"json": {"id": "r", "color": "red"}}, "invalid_payload"),
        ({"json": {"title": "no id"}}, "invalid_payload"),
        ({"json": {"id": "bad room"}}, "invalid_name"),
        ({"json": {"id": "r", "retentionDays": -1}}, "invalid_payload"),
        ({"json": {"id": "r", "retentionDays": True}}, "invalid_payload"),
        ({"json": {"id": "r", "title": 5}}, "invalid_payload"),
    ],
)
async def test_create_bad_requests(api, token_server, kwargs, code):
    status, body = await api.call("POST", "/api/rooms", **kwargs)
    assert status == 400, body
    check("Error", body)
    assert body["error"]["code"] == code
    assert await token_server.registry.store.list_rooms() == []
    await token_server.registry.flush_audit()
    records = await token_server.registry.store.read_audit(None)
    assert [(r.action, r.outcome) for r in records] == [("create", code)]


async def test_unknown_room_is_404(api):
    for method, path in [
        ("GET", "/api/rooms/nope"),
        ("GET", "/api/rooms/nope/export"),
        ("DELETE", "/api/rooms/nope"),
    ]:
        status, body = await api.call(method, path)
        assert status == 404 and body["error"]["code"] == "not_found"


async def test_export_formats(api, token_server, client_factory):
    await api.call("POST", "/api/rooms", json={"id": "exp", "title": "Skills <workshop>"})
    board = await client_factory(
        token_server.url, "exp", auth={"token": mint("exp", role="facilitator", sub="f")}
    )
    chat = await client_factory(
        token_server.url, "exp", "chat", auth={"token": mint("exp", name="Pat", sub="p")}
    )
    shapes = board.doc.get("shapes", type=Map)
    shapes["r"] = {"type": "rect", "x": 0, "y": 0, "w": 100, "h": 50, "color": "#ff0000", "z": 1}
    shapes["a"] = {"type": "arrow", "points": [[0, 0], [50, 50]], "z": 2}
    shapes["t"] = {
        "type": "sticky",
        "x": 10,
        "y": 10,
        "w": 80,
        "h": 80,
        "text": "<b>hi</b> & bye",
        "z": 3,
    }
    shapes["evil"] = {"type": "rect", "color": '"/><script>alert(1)</script>', "w": 1, "h": 1}
    first = await chat.send_chat("first *message*")
    await chat.send_chat("second message")
    await board.call("mod:redact", {"messageId": first["id"]})
    board_doc = token_server.registry.rooms["exp"].docs["board"]
    await until(
        lambda: len(board_doc.engine.read_map("shapes")) == 4, what="4 shapes on the server"
    )

    status, data = await api.call("GET", "/api/rooms/exp/export")
    assert status == 200
    check("Export", data)
    assert data["meta"]["title"] == "Skills <workshop>"
    assert [(m["authorName"], m["text"], m["redacted"]) for m in data["chat"]] == [
        ("Pat", "", True),
        ("Pat", "second message", False),
    ]
    assert [s["id"] for s in data["board"]["shapes"]] == ["evil", "r", "a", "t"]
    assert data["board"]["shapes"][-1]["fontSize"] == 16  # the default, said

    status, md = await api.call("GET", "/api/rooms/exp/export?format=markdown")
    assert status == 200
    assert md.startswith("# Transcript: Skills \\<workshop\\>")
    assert "> _message removed_" in md and "first" not in md
    assert "**Pat** (participant)" in md and "> second message" in md

    status, svg = await api.call("GET", "/api/rooms/exp/export?format=svg")
    assert status == 200
    root = ElementTree.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert root.find(f".//{ns}rect[@data-id='r']").get("stroke") == "#ff0000"
    arrow = root.find(f".//{ns}g[@data-id='a']")
    assert arrow.find(f"{ns}path[@class='arrow-head']").get("fill") == arrow.find(
        f"{ns}polyline"
    ).get("stroke")
    assert "<script" not in svg and "&lt;b&gt;hi&lt;/b&gt; &amp; bye" in svg

    status, body = await api.call("GET", "/api/rooms/exp/export?format=pdf")
    assert status == 400 and body["error"]["code"] == "invalid_payload"
    status, log = await api.call("GET", "/api/rooms/exp/audit")
    check("AuditLog", log)
    exports = [
        (r["user_id"], r["role"], r["detail"], r["outcome"])
        for r in log["records"]
        if r["action"] == "export"
    ]
    # Who (the admin key's name, an unnamed key is "admin"), how, and what.
    assert exports == [
        ("admin", "admin", "json via=admin-key", "ok"),
        ("admin", "admin", "markdown via=admin-key", "ok"),
        ("admin", "admin", "svg via=admin-key", "ok"),
        ("admin", "admin", "admin", "invalid_payload"),
    ]


async def test_delete_purges_everything_but_the_audit(api, token_server, client_factory):
    await api.call("POST", "/api/rooms", json={"id": "gone", "title": "t"})
    member = await client_factory(
        token_server.url, "gone", auth={"token": mint("gone")}, reconnection=False
    )
    chat = await client_factory(
        token_server.url, "gone", "chat", auth={"token": mint("gone")}, reconnection=False
    )
    member.doc.get("shapes", type=Map)["x"] = {"type": "rect"}
    await chat.send_chat("bye")
    await token_server.registry.flush_all()
    status, body = await api.call("DELETE", "/api/rooms/gone")
    assert status == 200, body
    check("Deleted", body)
    assert body["connectionsClosed"] == 2
    for client in (member, chat):
        await client.wait_for(lambda c=client: not c.connected, timeout_s=5)
        assert any(e["code"] == "room_deleted" for e in client.errors)
    store = token_server.registry.store
    assert "gone" not in await store.list_rooms()
    for doc in ("board", "chat", "meta"):
        stored = await store.load("gone", doc)
        assert stored.snapshot is None and stored.updates == ()
    status, log = await api.call("GET", "/api/rooms/gone/audit")
    assert status == 200
    actions = [r["action"] for r in log["records"]]
    assert "create" in actions and actions[-1] == "delete"
    status, _ = await api.call("GET", "/api/rooms/gone")
    assert status == 404


async def test_retention_purges_idle_rooms(server_factory, client_factory):
    srv = await server_factory(
        dev=False,
        jwt_secret=SECRET,
        admin_key=ADMIN_KEY,
        retention_check_interval_s=0.1,
        unload_after_s=0,
    )
    async with aiohttp.ClientSession() as http:
        api = Api(srv.url, http)
        await api.call("POST", "/api/rooms", json={"id": "short", "retentionDays": 1e-5})
        await api.call("POST", "/api/rooms", json={"id": "long", "retentionDays": 30})
        client = await client_factory(srv.url, "short", auth={"token": mint("short")})
        client.doc.get("shapes", type=Map)["x"] = {"type": "rect"}
        registry = srv.registry
        real_clock = registry.clock_ms
        registry.clock_ms = lambda: real_clock() + 86_400_000  # a day on: "short" has expired
        assert await registry.purge_expired() == []  # ... but a room in use stays
        assert "short" in await registry.store.list_rooms()
        await client.close()

        async def purged() -> bool:
            return "short" not in await registry.store.list_rooms()

        await until(purged, what="the idle room's purge by the retention loop")
        assert await registry.store.list_rooms() == ["long"]
        status, log = await api.call("GET", "/api/rooms/short/audit")
        assert status == 200
        assert log["records"][-1]["action"] == "purge"


async def test_markdown_export_in_a_time_zone(api, token_server, client_factory):
    await api.call("POST", "/api/rooms", json={"id": "tz", "title": "Grupo"})
    chat = await client_factory(
        token_server.url, "tz", "chat", auth={"token": mint("tz", name="Pat", sub="p")}
    )
    await chat.send_chat("hola")
    status, data = await api.call("GET", "/api/rooms/tz/export")
    assert status == 200
    sent = datetime.fromtimestamp(data["chat"][0]["ts"] / 1000, tz=ZoneInfo("Asia/Kolkata"))

    status, md = await api.call("GET", "/api/rooms/tz/export?format=markdown&tz=Asia/Kolkata")
    assert status == 200
    assert f"**Pat** (participant) · {sent:%Y-%m-%d %H:%M} (+05:30)" in md
    assert "times in Asia/Kolkata" in md

    for bad in ("Nowhere/Special", "../etc/passwd"):
        status, body = await api.call("GET", f"/api/rooms/tz/export?format=markdown&tz={bad}")
        assert status == 400, body
        check("Error", body)
        assert body["error"]["code"] == "invalid_payload" and "tz" in body["error"]["message"]
