"""HTTP hardening (issue 13, findings 8 and 9): caching and sniffing of the
admin API's answers, the web app's CSP, the /metrics token, what /healthz says.

Every test runs a real server on a loopback port and speaks HTTP to it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from pycrdt import Map

from collab import __version__
from collab.client import CollabClient
from tests.conftest import ADMIN_KEY, SECRET, mint

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
ROOM = "clinic-7/patient-jane-doe"
PATH = "/api/rooms/" + quote(ROOM, safe="")
METRICS_TOKEN = "metrics-token-0123456789abcdef"


async def fetch(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, **kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, **kwargs) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


@pytest.fixture
async def room_server(token_server, client_factory):
    """A token server whose room has a shape and a chat message."""
    board = await client_factory(token_server.url, ROOM, auth={"token": mint(ROOM)})
    board.doc.get("shapes", type=Map)["s"] = {"type": "rect", "x": 1, "y": 2}
    await board.send_chat("hello")
    await token_server.registry.flush_all()
    return token_server


# -- Cache-Control: no-store, X-Content-Type-Options: nosniff ---------------------------


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/api/rooms", AUTH, 200),
        ("GET", PATH, AUTH, 200),
        ("GET", PATH + "/export?format=json", AUTH, 200),
        ("GET", PATH + "/export?format=markdown", AUTH, 200),
        ("GET", PATH + "/export?format=svg", AUTH, 200),
        ("GET", PATH + "/export?format=pdf", AUTH, 400),
        ("GET", PATH + "/audit", AUTH, 200),
        ("GET", "/api/openapi.json", None, 200),
        ("GET", "/api/rooms", None, 401),
        ("GET", PATH + "/export?format=json", {"Authorization": "Bearer wrong-key-0000000"}, 401),
        ("GET", "/api/rooms/" + quote("no-such-room", safe=""), AUTH, 404),
        ("GET", "/api/no-such-route", AUTH, 404),
        ("PUT", "/api/rooms", AUTH, 405),
        ("GET", "/metrics", None, 200),
        ("GET", "/healthz", None, 200),
    ],
)
async def test_api_answers_are_not_stored_or_sniffed(room_server, method, path, headers, status):
    got, response_headers, body = await fetch(
        room_server.url + path, method=method, headers=headers
    )
    assert got == status, body[:200]
    assert response_headers.get("Cache-Control") == "no-store"
    assert response_headers.get("X-Content-Type-Options") == "nosniff"


async def test_a_store_failure_is_a_503_with_the_headers(server_factory, tmp_path):
    """The store is gone: the admin API says so (room_unavailable), as the
    Socket.IO side does, with the headers."""
    srv = await server_factory(
        store="sqlite",
        data_dir=tmp_path,
        dev=False,
        jwt_secret=SECRET,
        admin_key=ADMIN_KEY,
        shutdown_grace_s=0.5,  # its stop waits for the closed store that long
    )
    await srv.app.store.close()
    status, headers, body = await fetch(srv.url + PATH, headers=AUTH)
    assert status == 503
    assert json.loads(body)["error"]["code"] == "room_unavailable"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_an_unexpected_failure_is_a_500_with_the_headers(server_factory, tmp_path, caplog):
    """A failure no handler expected (here: a store that is not one, as a bug
    would leave it) is a JSON 500 with the headers, logged with the route's
    pattern, not its path."""
    srv = await server_factory(
        store="sqlite", data_dir=tmp_path, dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY
    )
    srv.registry.store = object()
    status, headers, body = await fetch(srv.url + PATH, headers=AUTH)
    assert status == 500
    assert json.loads(body) == {"error": {"code": "internal_error", "message": "internal error"}}
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    lines = [r.getMessage() for r in caplog.records if r.name == "collab"]
    assert any(
        line.startswith("request failed method=GET route=/api/rooms/{room} error=AttributeError")
        for line in lines
    ), lines
    assert not any("patient-jane-doe" in line for line in lines)


async def test_an_export_carries_the_headers_and_its_content(room_server):
    status, headers, body = await fetch(
        room_server.url + PATH + "/export?format=markdown", headers=AUTH
    )
    assert status == 200 and b"hello" in body
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_a_dev_token_is_not_stored(server):
    status, headers, _ = await fetch(
        server.url + "/dev/token", method="POST", json={"room": "r", "name": "Ann"}
    )
    assert status == 200
    assert headers["Cache-Control"] == "no-store"


async def test_pages_keep_their_own_caching(server):
    """The web app's pages revalidate (no-cache), they are not no-store
    (tests/integration/test_static_assets.py: the hashed files are immutable)."""
    for path in ("/", "/r/clinic-7/a", "/static/favicon.svg"):
        status, headers, _ = await fetch(server.url + path)
        assert status == 200
        assert headers["Cache-Control"] == "no-cache"
        assert headers["X-Content-Type-Options"] == "nosniff"


# -- CSP connect-src ----------------------------------------------------------------------


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


async def test_the_page_may_connect_to_its_own_origin_only(server):
    for path in ("/", "/r/clinic-7/a", "/static/favicon.svg"):
        _, headers, _ = await fetch(server.url + path)
        assert directives(headers["Content-Security-Policy"])["connect-src"] == ["'self'"], path


async def test_cors_origins_are_added_to_connect_src_but_never_a_wildcard(server_factory):
    srv = await server_factory(cors_origins=("https://platform.example", "http://localhost:3000"))
    _, headers, _ = await fetch(srv.url + "/")
    assert directives(headers["Content-Security-Policy"])["connect-src"] == [
        "'self'",
        "https://platform.example",
        "http://localhost:3000",
    ]
    srv = await server_factory(cors_origins=("*",))
    _, headers, _ = await fetch(srv.url + "/")
    assert directives(headers["Content-Security-Policy"])["connect-src"] == ["'self'"]


# -- /metrics token -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token-0123456789abcd",
        f"Bearer {METRICS_TOKEN}x",
        f"Bearer {METRICS_TOKEN[:-1]}",
        f"Basic {METRICS_TOKEN}",
        METRICS_TOKEN,
        f"Bearer  {METRICS_TOKEN}",
    ],
)
async def test_metrics_with_a_token_refuses_anything_else(server_factory, authorization):
    srv = await server_factory(dev=False, jwt_secret=SECRET, metrics_token=METRICS_TOKEN)
    headers = None if authorization is None else {"Authorization": authorization}
    status, response_headers, body = await fetch(srv.url + "/metrics", headers=headers)
    assert status == 401
    assert response_headers.get("WWW-Authenticate") == "Bearer"
    assert b"collab_" not in body


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_metrics_with_its_token(server_factory, scheme):
    srv = await server_factory(dev=False, jwt_secret=SECRET, metrics_token=METRICS_TOKEN)
    status, headers, body = await fetch(
        srv.url + "/metrics", headers={"Authorization": f"{scheme} {METRICS_TOKEN}"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert b"collab_connections" in body


async def test_metrics_without_a_token_configured_stay_open(token_server):
    status, _, body = await fetch(token_server.url + "/metrics")
    assert status == 200 and b"collab_connections" in body


# -- /healthz -------------------------------------------------------------------------------


@pytest.mark.parametrize("dev", [True, False])
async def test_healthz_says_only_what_a_load_balancer_needs(server_factory, dev):
    """Status and aggregate counts, open to anyone: never a room id, a user,
    an address or a setting beyond the store and whether it is --dev."""
    overrides: dict[str, Any] = {"dev": dev}
    if not dev:
        overrides.update(jwt_secret=SECRET, admin_key=ADMIN_KEY, metrics_token=METRICS_TOKEN)
    srv = await server_factory(**overrides, node_id="node-a")
    auth = {"name": "Jane Doe"} if dev else {"token": mint(ROOM, name="Jane Doe", sub="jane")}
    client = CollabClient(srv.url, ROOM, auth=auth, reconnection=False)
    await client.connect()
    try:
        status, _, raw = await fetch(srv.url + "/healthz")
    finally:
        await client.close()
    assert status == 200
    body = json.loads(raw)
    assert body == {
        "status": "ok",
        "version": __version__,
        "node": "node-a",
        "store": "memory",
        "dev": dev,
        "rooms": 1,
        "connections": 1,
        "storeStatus": "ok",
        "oldestUnsavedSeconds": 0.0,
    }
    for secret in (ROOM, "Jane", "jane", "127.0.0.1", SECRET, ADMIN_KEY, METRICS_TOKEN):
        assert secret.encode() not in raw
