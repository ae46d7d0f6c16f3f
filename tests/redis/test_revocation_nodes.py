"""Revocations and role overrides across real nodes sharing one real
redis-server (issue 13): a revocation made on node A closes the user's
sockets on node B within about a second, and B refuses them afterwards; a
role set through A applies to the user's live socket on B."""

from __future__ import annotations

import time

import aiohttp
import pytest
from pycrdt import Map

from collab.client import CollabClient, CollabClientError
from tests.boards import shapes
from tests.conftest import ADMIN_KEY, mint

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def two(redis_server, node_factory):
    a = await node_factory(redis_server.url, "A")
    b = await node_factory(redis_server.url, "B")
    return a, b


async def test_a_revocation_on_one_node_closes_sockets_on_another(two, clients):
    a, b = two
    ann = {"token": mint("r", role="facilitator", name="Ann", sub="ann")}
    board_b = await clients(b.url, "r", auth=ann, reconnection=False)
    chat_b = await clients(b.url, "r", "chat", auth=ann, reconnection=False)
    bob_b = await clients(b.url, "r", auth={"token": mint("r", name="Bob", sub="bob")})
    async with aiohttp.ClientSession() as http:
        async with http.post(
            a.url + "/api/revocations",
            json={"sub": "ann", "until": time.time() * 1000 + 600_000},
            headers=AUTH,
        ) as r:
            assert r.status == 201, await r.text()
        revoked_at = time.monotonic()
        for client in (board_b, chat_b):
            await client.wait_for(lambda c=client: not c.connected, timeout_s=5)
        closed_after = time.monotonic() - revoked_at
        assert closed_after < 1.5, f"closed {closed_after:.2f} s after the revocation"
        for client in (board_b, chat_b):
            assert [(e["code"], e["event"]) for e in client.errors] == [("revoked", "disconnect")]
        assert bob_b.connected
        # Later connects on B are refused, and so are exports through B.
        with pytest.raises(CollabClientError) as info:
            await CollabClient(b.url, "r", auth=ann, reconnection=False).connect()
        assert info.value.code == "revoked"
        async with http.get(
            b.url + "/api/rooms/r/export", headers={"Authorization": f"Bearer {ann['token']}"}
        ) as r:
            assert r.status in (403, 404)  # 404 if no node stored the room yet
            if r.status == 403:
                assert (await r.json())["error"]["code"] == "revoked"
        # The revocation is listed on B as well, with who made it.
        async with http.get(b.url + "/api/revocations", headers=AUTH) as r:
            (listed,) = (await r.json())["revocations"]
        assert (listed["sub"], listed["by"]) == ("ann", "admin")


async def test_a_role_set_through_one_node_applies_on_another(two, clients):
    a, b = two
    pat_b = await clients(b.url, "roles", auth={"token": mint("roles", name="Pat", sub="pat")})
    peer_a = await clients(a.url, "roles")
    pat_b.doc.get("shapes", type=Map)["before"] = {"type": "rect"}
    await peer_a.wait_for(lambda: "before" in shapes(peer_a), timeout_s=10)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            a.url + "/api/rooms/roles/roles",
            json={"userId": "pat", "role": "observer"},
            headers=AUTH,
        ) as r,
    ):
        assert r.status == 200, await r.text()
    await pat_b.wait_for(lambda: pat_b.room_state.get("roles") == {"pat": "observer"}, timeout_s=5)
    pat_b.doc.get("shapes", type=Map)["after"] = {"type": "rect"}
    await pat_b.wait_for(lambda: any(e["code"] == "permission_denied" for e in pat_b.errors))
    await pat_b.set_awareness({"cursor": [1, 1]})
    await peer_a.wait_for(lambda: pat_b.doc.client_id in peer_a.awareness, timeout_s=10)
    assert peer_a.awareness[pat_b.doc.client_id]["user"]["role"] == "observer"
    assert "after" not in shapes(peer_a)
