"""Exports and admin accountability (issue 13, finding 6): a removed
facilitator cannot export, prefix tokens cannot export, every export and
every admin read is audited with who, admin keys are named, and a key file
rotates keys without a restart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collab.app import create_app
from collab.config import settings_from
from tests.conftest import SECRET, mint

ALICE = "alice-key-for-tests-0123456789"
BOB = "bob-key-for-tests-01234567890"


async def call(url: str, method: str, path: str, key: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url + path, headers={"Authorization": f"Bearer {key}"}, **kwargs) as r,
    ):
        ctype = r.headers.get("Content-Type", "")
        return r.status, await (r.json() if ctype.startswith("application/json") else r.text())


async def audit(srv, room: str | None) -> list:
    await srv.registry.flush_audit()
    return await srv.registry.store.read_audit(room)


@pytest.fixture
async def srv(server_factory):
    return await server_factory(dev=False, jwt_secret=SECRET, admin_key=f"alice={ALICE},bob={BOB}")


async def test_a_removed_facilitator_cannot_export(srv, client_factory):
    await call(srv.url, "POST", "/api/rooms", ALICE, json={"id": "r"})
    lead = await client_factory(
        srv.url, "r", auth={"token": mint("r", role="facilitator", name="Lead", sub="lead")}
    )
    co = mint("r", role="facilitator", name="Co", sub="co", token_id="co-token")
    assert (await call(srv.url, "GET", "/api/rooms/r/export", co))[0] == 200
    await lead.call("mod:remove", {"userId": "co", "removed": True})
    status, body = await call(srv.url, "GET", "/api/rooms/r/export", co)
    assert (status, body["error"]["code"]) == (403, "removed")
    # Readmitted, they may again.
    await lead.call("mod:remove", {"userId": "co", "removed": False})
    assert (await call(srv.url, "GET", "/api/rooms/r/export?format=markdown", co))[0] == 200
    exports = [r for r in await audit(srv, "r") if r.action == "export"]
    assert [(r.user_id, r.role, r.outcome, r.detail) for r in exports] == [
        ("co", "facilitator", "ok", 'json via=token jti="co-token"'),
        ("co", "facilitator", "removed", "via=token"),
        ("co", "facilitator", "ok", 'markdown via=token jti="co-token"'),
    ]


async def test_prefix_tokens_may_not_export(srv):
    await call(srv.url, "POST", "/api/rooms", ALICE, json={"id": "clinic-7/a"})
    wide = mint("clinic-7/*", role="facilitator", sub="f")
    status, body = await call(srv.url, "GET", "/api/rooms/clinic-7%2Fa/export", wide)
    assert (status, body["error"]["code"]) == (403, "permission_denied")
    assert "prefix" in body["error"]["message"]
    exact = mint("clinic-7/a", role="facilitator", sub="f")
    assert (await call(srv.url, "GET", "/api/rooms/clinic-7%2Fa/export", exact))[0] == 200


async def test_named_keys_and_audited_reads(srv, client_factory):
    status, _ = await call(srv.url, "POST", "/api/rooms", ALICE, json={"id": "r"})
    assert status == 201
    await client_factory(srv.url, "r", auth={"token": mint("r", sub="pat")})
    assert (await call(srv.url, "GET", "/api/rooms", BOB))[0] == 200
    status, info = await call(srv.url, "GET", "/api/rooms/r", BOB)
    assert status == 200 and [u["userId"] for u in info["online"]] == ["pat"]
    status, _ = await call(srv.url, "GET", "/api/rooms/r/audit?limit=50", ALICE)
    assert status == 200
    assert (await call(srv.url, "GET", "/api/rooms/r/export", BOB))[0] == 200
    assert (await call(srv.url, "GET", "/api/rooms/nope", ALICE))[0] == 404
    records = await audit(srv, "r")
    admin = [
        (r.action.value, r.user_id, r.detail)
        for r in records
        if r.role == "admin"  # the admins' records, not the connection's
    ]
    assert admin == [
        ("create", "alice", "admin"),
        ("admin_read", "bob", "room"),
        ("admin_read", "alice", "audit limit=50"),
        ("export", "bob", "json via=admin-key"),
    ]
    server_wide = [(r.action.value, r.user_id, r.detail) for r in await audit(srv, None)]
    assert ("admin_read", "bob", "rooms count=1") in server_wide
    nope = [r for r in await audit(srv, "nope")]
    assert [(r.action.value, r.user_id, r.outcome) for r in nope] == [
        ("admin_read", "alice", "not_found")
    ]


def write_keys(path: Path, text: str) -> None:
    """Replace the key file as an operator's tooling would: write, then rename."""
    staged = path.with_suffix(".new")
    staged.write_text(text)
    os.replace(staged, path)


async def test_a_key_file_rotates_keys_without_a_restart(server_factory, tmp_path):
    keys = tmp_path / "admin-keys"
    write_keys(keys, f"# rotated by ops\nalice={ALICE}\n\n")
    srv = await server_factory(dev=False, jwt_secret=SECRET, admin_key_file=keys)
    assert (await call(srv.url, "GET", "/api/rooms", ALICE))[0] == 200
    assert (await call(srv.url, "GET", "/api/rooms", BOB))[0] == 401
    write_keys(keys, f"alice={ALICE}\nbob={BOB}\n")  # add bob
    assert (await call(srv.url, "GET", "/api/rooms", BOB))[0] == 200
    write_keys(keys, f"bob={BOB}\n")  # retire alice's key
    assert (await call(srv.url, "GET", "/api/rooms", ALICE))[0] == 401
    assert (await call(srv.url, "GET", "/api/rooms", BOB))[0] == 200
    write_keys(keys, "bob=short\n")  # a bad line is skipped (logged), never a key
    assert (await call(srv.url, "GET", "/api/rooms", BOB))[0] == 401
    keys.unlink()  # an unreadable file grants nothing
    assert (await call(srv.url, "GET", "/api/rooms", BOB))[0] == 401
    write_keys(keys, f"bob={BOB}\n")
    assert (await call(srv.url, "GET", "/api/rooms", BOB))[0] == 200
    reads = [r for r in await audit(srv, None) if r.action == "admin_read"]
    assert [r.user_id for r in reads] == ["alice", "bob", "bob", "bob"]


def test_a_bad_key_file_stops_the_server_at_start(tmp_path):
    keys = tmp_path / "admin-keys"
    keys.write_text(f"alice={ALICE}\nbob=short\n")
    settings = settings_from(None, {}, jwt_secret=SECRET, admin_key_file=keys, store="memory")
    with pytest.raises(ValueError, match="line 2") as info:
        create_app(settings)
    assert ALICE not in str(info.value) and "short" not in str(info.value)
    with pytest.raises(ValueError, match="cannot read"):
        create_app(settings_from(None, {}, jwt_secret=SECRET, admin_key_file=tmp_path / "none"))
