"""Token lifetime on a real server (issue 13, finding 5): iat required, the
maximum lifetime at connect, and one leeway at connect, mid-session and for
exports."""

from __future__ import annotations

import time

import aiohttp
import jwt
import pytest

from collab.client import CollabClient
from crdt.types import RoomId
from rooms.store import RoomInfo
from tests.conftest import ADMIN_KEY, SECRET
from tests.rawsio import RawSocket
from tests.waiting import until

MAX_TTL = 600


def token(**claims: object) -> str:
    base: dict[str, object] = {"sub": "u1", "name": "Ann", "room": "r", "role": "facilitator"}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


@pytest.fixture
async def srv(server_factory):
    return await server_factory(
        dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, jwt_max_ttl_s=MAX_TTL, jwt_leeway_s=30
    )


async def connect(url: str, tok: str) -> dict:
    raw = await RawSocket.open(url)
    try:
        return await raw.connect("/yjs|r", {"token": tok})
    finally:
        await raw.close()


async def export_status(url: str, tok: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/api/rooms/r/export", headers={"Authorization": f"Bearer {tok}"}) as r,
    ):
        return r.status


async def test_a_token_without_iat_is_refused(srv):
    reply = await connect(srv.url, token(exp=int(time.time()) + 60))
    assert reply["connected"] is False
    assert reply["data"]["code"] == "invalid_token"
    assert "iat" in reply["data"]["message"]


async def test_lifetime_at_the_maximum_and_one_past(srv):
    now = int(time.time())
    assert (await connect(srv.url, token(iat=now, exp=now + MAX_TTL)))["connected"] is True
    reply = await connect(srv.url, token(iat=now, exp=now + MAX_TTL + 1))
    assert reply["connected"] is False and reply["data"]["code"] == "invalid_token"
    assert "lifetime" in reply["data"]["message"]


async def test_a_hundred_year_token_is_refused(srv):
    now = int(time.time())
    reply = await connect(srv.url, token(iat=now, exp=now + 100 * 365 * 86400))
    assert reply["connected"] is False and reply["data"]["code"] == "invalid_token"


async def test_a_future_iat_is_reported_as_iat(srv):
    now = int(time.time())
    reply = await connect(srv.url, token(iat=now + 300, exp=now + 500))
    assert reply["data"]["code"] == "invalid_token"
    assert "iat" in reply["data"]["message"] and "nbf" not in reply["data"]["message"]


async def test_one_leeway_at_connect_and_for_exports(srv):
    """A token 10 s past exp is within the 30 s leeway: accepted at connect
    and for an export alike; 40 s past it is refused by both."""
    now = int(time.time())
    await srv.registry.store.save_room_info(RoomInfo(RoomId("r")))
    within = token(iat=now - 300, exp=now - 10)
    assert (await connect(srv.url, within))["connected"] is True
    assert await export_status(srv.url, within) == 200
    past = token(iat=now - 300, exp=now - 40)
    reply = await connect(srv.url, past)
    assert reply["connected"] is False and reply["data"]["code"] == "expired_token"
    assert await export_status(srv.url, past) == 401


async def test_expiry_mid_session_waits_for_the_leeway(server_factory, client_factory):
    leeway = 2
    srv = await server_factory(
        dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, jwt_leeway_s=leeway
    )
    exp = int(time.time()) + 1
    client = CollabClient(
        srv.url, "r", auth={"token": token(iat=exp - 60, exp=exp)}, reconnection=False
    )
    await client.connect()
    try:
        await until(lambda: not client.connected, timeout_s=10, what="the expiry disconnect")
        closed_at = time.time()
    finally:
        await client.close()
    assert [e["code"] for e in client.errors] == ["expired_token"]
    # Closed once exp + leeway passed (the timer's own slack aside), not at exp.
    assert closed_at >= exp + leeway - 0.05
    assert closed_at < exp + leeway + 3
