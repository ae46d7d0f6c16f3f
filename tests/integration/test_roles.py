"""Live role changes (issue 13): ``mod:role`` and ``POST /api/rooms/{room}/roles``
turn a participant into an observer and back, on their live connections
and on later connects; facilitator is never granted, nor overridden."""

from __future__ import annotations

import aiohttp
import pytest
from pycrdt import Map

from collab.client import CollabClient, CollabClientError
from tests.boards import shapes
from tests.conftest import SECRET, mint
from tests.integration.test_admin_api import check

OPS_KEY = "ops-key-for-tests-0123456789"


@pytest.fixture
async def srv(server_factory):
    return await server_factory(dev=False, jwt_secret=SECRET, admin_key=f"ops={OPS_KEY}")


async def connect(url: str, token: str, doc: str = "board") -> CollabClient:
    client = CollabClient(url, "r", doc, auth={"token": token}, reconnection=False)
    await client.connect()
    return client


@pytest.fixture
async def room(srv):
    """A facilitator, a participant (pat) on the board and in chat, and a peer."""
    made = [
        await connect(srv.url, mint("r", role="facilitator", name="Fay", sub="fay")),
        await connect(srv.url, mint("r", name="Pat", sub="pat")),
        await connect(srv.url, mint("r", name="Pat", sub="pat"), "chat"),
        await connect(srv.url, mint("r", name="Peer", sub="peer")),
    ]
    yield made
    for client in made:
        await client.close()


async def wrote(pat: CollabClient, peer: CollabClient, key: str) -> None:
    pat.doc.get("shapes", type=Map)[key] = {"type": "rect"}
    await peer.wait_for(lambda: key in shapes(peer))


async def refused_write(pat: CollabClient, key: str) -> None:
    before = len(pat.errors)
    pat.doc.get("shapes", type=Map)[key] = {"type": "rect"}
    await pat.wait_for(lambda: len(pat.errors) > before)
    assert pat.errors[-1]["code"] == "permission_denied"


async def test_a_facilitator_makes_a_participant_an_observer_and_back(srv, room):
    fay, pat, pat_chat, peer = room
    await wrote(pat, peer, "before")
    ack = await fay.call("mod:role", {"userId": "pat", "role": "observer"})
    assert ack["state"]["roles"] == {"pat": "observer"}
    await pat.wait_for(lambda: pat.room_state.get("roles") == {"pat": "observer"})
    # Their live connections: writes and chat refused, awareness stamped observer.
    await refused_write(pat, "during")
    with pytest.raises(CollabClientError) as info:
        await pat_chat.send_chat("hello")
    assert info.value.code == "permission_denied"
    await pat.set_awareness({"cursor": [1, 2]})
    await peer.wait_for(lambda: pat.doc.client_id in peer.awareness)
    assert peer.awareness[pat.doc.client_id]["user"] == {
        "id": "pat",
        "name": "Pat",
        "role": "observer",
    }
    assert "during" not in shapes(peer)
    # Their later connects too (the override is in the room's meta).
    late = await connect(srv.url, mint("r", name="Pat", sub="pat"))
    try:
        await refused_write(late, "late")
    finally:
        await late.close()
    # And back: role null returns to the token's role.
    await fay.call("mod:role", {"userId": "pat", "role": None})
    await pat.wait_for(lambda: pat.room_state.get("roles") == {})
    await wrote(pat, peer, "after")
    await pat.set_awareness({"cursor": [3, 4]})
    await peer.wait_for(lambda: peer.awareness[pat.doc.client_id]["user"]["role"] == "participant")
    await srv.registry.flush_audit()
    records = [r for r in await srv.registry.store.read_audit("r") if r.action == "role"]
    assert [(r.user_id, r.role, r.detail) for r in records] == [
        ("fay", "facilitator", "pat role=observer"),
        ("fay", "facilitator", "pat role=token"),
    ]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"userId": "pat", "role": "facilitator"}, "invalid_payload"),
        ({"userId": "pat", "role": "admin"}, "invalid_payload"),
        ({"userId": "pat"}, "invalid_payload"),
        ({"userId": "bad id", "role": "observer"}, "invalid_payload"),
        ({"userId": "pat", "role": "observer", "why": "x"}, "invalid_payload"),
    ],
)
async def test_bad_role_changes(room, payload, code):
    fay, pat, _, peer = room
    with pytest.raises(CollabClientError) as info:
        await fay.call("mod:role", payload)
    assert info.value.code == code
    await wrote(pat, peer, "still-a-participant")


async def test_only_facilitators_change_roles_and_never_a_facilitators(srv, room):
    fay, pat, _, peer = room
    with pytest.raises(CollabClientError) as info:
        await pat.call("mod:role", {"userId": "peer", "role": "observer"})
    assert info.value.code == "permission_denied"
    # An override of a facilitator's user id is kept but does not apply to
    # a facilitator's token: one facilitator cannot demote another.
    await fay.call("mod:role", {"userId": "fay", "role": "observer"})
    await wrote(fay, peer, "fay-still-draws")
    await fay.call("mod:lock", {"locked": True})  # and still moderates


async def test_the_admin_api_sets_roles(srv, room):
    _, pat, _, peer = room
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {OPS_KEY}"}
        async with http.post(
            f"{srv.url}/api/rooms/r/roles",
            json={"userId": "pat", "role": "observer"},
            headers=headers,
        ) as r:
            assert r.status == 200
            body = await r.json()
        check("RoleSet", body)
        assert body["role"] == "observer" and body["state"]["roles"] == {"pat": "observer"}
        await refused_write(pat, "admin-made-observer")
        async with http.post(
            f"{srv.url}/api/rooms/r/roles",
            json={"userId": "pat", "role": "facilitator"},
            headers=headers,
        ) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "invalid_payload"
        async with http.get(f"{srv.url}/api/rooms/r", headers=headers) as r:
            info = await r.json()
        assert {(u["userId"], u["role"]) for u in info["online"]} >= {("pat", "observer")}
        async with http.post(
            f"{srv.url}/api/rooms/nope/roles",
            json={"userId": "pat", "role": None},
            headers=headers,
        ) as r:
            assert r.status == 404
    await srv.registry.flush_audit()
    records = [r for r in await srv.registry.store.read_audit("r") if r.action == "role"]
    assert [(r.user_id, r.role, r.outcome, r.detail) for r in records] == [
        ("ops", "admin", "ok", "pat role=observer"),
        ("ops", "admin", "invalid_payload", "admin"),
    ]
    assert "admin-made-observer" not in shapes(peer)
