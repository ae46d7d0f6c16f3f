"""Revocation on one server (issue 13, finding 5): by token (jti) or by user
(sub), in one room or all, until a time; live connections close with
``revoked``, later connects and exports are refused; every revocation is
audited with the admin key's name; expired ones apply to nothing and are
purged."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from collab.client import CollabClient, CollabClientError
from tests.conftest import SECRET, mint
from tests.integration.test_admin_api import check
from tests.waiting import until

OPS_KEY = "ops-key-for-tests-0123456789"
KEYS = f"ops={OPS_KEY}"


class Admin:
    def __init__(self, base: str, http: aiohttp.ClientSession, key: str = OPS_KEY) -> None:
        self.base, self.http, self.key = base, http, key

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as r:
            ctype = r.headers.get("Content-Type", "")
            return r.status, await (r.json() if ctype.startswith("application/json") else r.text())

    async def revoke(self, **body: Any) -> dict[str, Any]:
        body.setdefault("until", time.time() * 1000 + 3_600_000)
        status, answer = await self.call("POST", "/api/revocations", json=body)
        assert status == 201, answer
        check("Revocation", answer)
        return answer


@pytest.fixture
async def srv(server_factory):
    return await server_factory(dev=False, jwt_secret=SECRET, admin_key=KEYS)


@pytest.fixture
async def admin(srv):
    async with aiohttp.ClientSession() as http:
        yield Admin(srv.url, http)


async def export_status(url: str, room: str, token: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{url}/api/rooms/{room}/export", headers={"Authorization": f"Bearer {token}"}
        ) as r,
    ):
        return r.status, await r.json()


async def connect(url: str, room: str, token: str, doc: str = "board") -> CollabClient:
    client = CollabClient(url, room, doc, auth={"token": token}, reconnection=False)
    await client.connect()
    return client


async def refused_code(url: str, room: str, token: str) -> str:
    with pytest.raises(CollabClientError) as info:
        await connect(url, room, token)
    return info.value.code


async def test_revoking_a_user_closes_their_sockets_and_refuses_later_connects_and_exports(
    srv, admin
):
    await admin.call("POST", "/api/rooms", json={"id": "r1"})
    await admin.call("POST", "/api/rooms", json={"id": "r2"})
    ann = mint("r1", role="facilitator", name="Ann", sub="ann")
    board = await connect(srv.url, "r1", ann)
    chat = await connect(srv.url, "r1", ann, "chat")
    other_room = await connect(srv.url, "r2", mint("r2", role="facilitator", sub="ann"))
    bob = await connect(srv.url, "r1", mint("r1", name="Bob", sub="bob"))
    try:
        assert (await export_status(srv.url, "r1", ann))[0] == 200
        revocation = await admin.revoke(sub="ann")
        assert revocation["by"] == "ops" and revocation["sub"] == "ann"
        for client in (board, chat, other_room):
            await client.wait_for(lambda c=client: not c.connected, timeout_s=5)
            assert [(e["code"], e["event"]) for e in client.errors] == [("revoked", "disconnect")]
        assert bob.connected, "another user stays"
        # A fresh token of the same user, issued after the revocation, is refused too.
        assert await refused_code(srv.url, "r1", mint("r1", sub="ann")) == "revoked"
        assert await refused_code(srv.url, "r2", mint("r2", sub="ann")) == "revoked"
        status, body = await export_status(srv.url, "r1", ann)
        assert (status, body["error"]["code"]) == (403, "revoked")
    finally:
        for client in (board, chat, other_room, bob):
            await client.close()
    await srv.registry.flush_audit()
    revokes = [r for r in await srv.registry.store.read_audit(None) if r.action == "revoke"]
    assert [(r.user_id, r.role, r.outcome) for r in revokes] == [("ops", "admin", "ok")]
    assert f"id={revocation['id']} sub=ann until=" in revokes[0].detail
    exports = [r for r in await srv.registry.store.read_audit("r1") if r.action == "export"]
    assert [(r.user_id, r.role, r.outcome) for r in exports] == [
        ("ann", "facilitator", "ok"),
        ("ann", "facilitator", "revoked"),
    ]


async def test_revoking_one_token_by_jti_leaves_the_users_other_tokens(srv, admin):
    leaked = mint("r", sub="ann", token_id="leaked-1")
    fresh = mint("r", sub="ann", token_id="fresh-2")
    on_leaked = await connect(srv.url, "r", leaked)
    on_fresh = await connect(srv.url, "r", fresh)
    try:
        await admin.revoke(jti="leaked-1")
        await on_leaked.wait_for(lambda: not on_leaked.connected, timeout_s=5)
        assert on_leaked.errors[-1]["code"] == "revoked"
        assert await refused_code(srv.url, "r", leaked) == "revoked"
        assert on_fresh.connected
        again = await connect(srv.url, "r", fresh)
        await again.close()
    finally:
        await on_leaked.close()
        await on_fresh.close()


async def test_a_revocation_for_one_room_leaves_the_others(srv, admin):
    wide = mint("clinic-7/*", sub="ann")
    in_a = await connect(srv.url, "clinic-7/a", wide)
    in_b = await connect(srv.url, "clinic-7/b", wide)
    try:
        revocation = await admin.revoke(sub="ann", room="clinic-7/a")
        assert revocation["room"] == "clinic-7/a"
        await in_a.wait_for(lambda: not in_a.connected, timeout_s=5)
        assert await refused_code(srv.url, "clinic-7/a", wide) == "revoked"
        assert in_b.connected
        again = await connect(srv.url, "clinic-7/b", wide)
        await again.close()
    finally:
        await in_a.close()
        await in_b.close()


async def test_list_lift_and_expiry(srv, admin):
    token = mint("r", sub="ann")
    short = await admin.revoke(sub="ann", until=time.time() * 1000 + 400)
    long = await admin.revoke(sub="zed")
    status, listing = await admin.call("GET", "/api/revocations")
    assert status == 200
    check("RevocationList", listing)
    assert {r["id"] for r in listing["revocations"]} == {short["id"], long["id"]}
    assert await refused_code(srv.url, "r", token) == "revoked"
    # Once its time is over a revocation applies to nothing (and leaves the list).
    revocations = srv.app.sync.revocations

    async def lapsed() -> bool:
        return revocations.match(sub="ann", jti=None, room="r") is None

    await until(lapsed, what="the short revocation's end")
    client = await connect(srv.url, "r", token)
    await client.close()
    _, listing = await admin.call("GET", "/api/revocations")
    assert [r["id"] for r in listing["revocations"]] == [long["id"]]
    # ... and a purge deletes it from the store.
    assert await revocations.purge() == 1
    _, stored = await srv.registry.store.load_revocations()
    assert [r.id for r in stored] == [long["id"]]
    # Lifting one early lets the user back at once.
    zed = mint("r", sub="zed")
    assert await refused_code(srv.url, "r", zed) == "revoked"
    status, body = await admin.call("DELETE", f"/api/revocations/{long['id']}")
    assert (status, body) == (200, {"deleted": long["id"]})
    client = await connect(srv.url, "r", zed)
    await client.close()
    status, body = await admin.call("DELETE", f"/api/revocations/{long['id']}")
    assert status == 404 and body["error"]["code"] == "not_found"
    await srv.registry.flush_audit()
    records = await srv.registry.store.read_audit(None)
    changes = [r for r in records if r.action in ("revoke", "unrevoke")]
    assert [(r.action, r.user_id, r.outcome) for r in changes] == [
        ("revoke", "ops", "ok"),
        ("revoke", "ops", "ok"),
        ("unrevoke", "ops", "ok"),
        ("unrevoke", "ops", "not_found"),
    ]
    reads = [r for r in records if r.action == "admin_read"]
    assert [(r.user_id, r.role, r.detail) for r in reads] == [
        ("ops", "admin", "revocations count=2"),
        ("ops", "admin", "revocations count=1"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"until": 1},
        {"sub": "ann"},
        {"sub": "ann", "jti": "x", "until": 9e12},
        {"sub": "has space", "until": 9e12},
        {"jti": "", "until": 9e12},
        {"sub": "ann", "until": "tomorrow"},
        {"sub": "ann", "until": 1000},
        {"sub": "ann", "until": 9e15},
        {"sub": "ann", "until": 9e12, "room": "bad room"},
        {"sub": "ann", "until": 9e12, "reason": "x"},
    ],
)
async def test_bad_revocations(srv, admin, body):
    if body.get("until") == 9e12:
        body = {**body, "until": time.time() * 1000 + 60_000}
    status, answer = await admin.call("POST", "/api/revocations", json=body)
    assert status == 400, answer
    assert answer["error"]["code"] in ("invalid_payload", "invalid_name")
    assert (await srv.registry.store.load_revocations())[1] == []


async def test_revocations_survive_a_restart(server_factory, data_dir):
    settings = {
        "dev": False,
        "jwt_secret": SECRET,
        "admin_key": KEYS,
        "store": "sqlite",
        "data_dir": data_dir,
    }
    first = await server_factory(**settings)
    async with aiohttp.ClientSession() as http:
        await Admin(first.url, http).revoke(sub="ann")
    await first.stop()
    second = await server_factory(**settings)
    assert await refused_code(second.url, "r", mint("r", sub="ann")) == "revoked"
