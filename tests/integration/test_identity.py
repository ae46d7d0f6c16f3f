"""Signed tokens at the door: refused connects, expiry, roles, awareness identity."""

from __future__ import annotations

import asyncio
import time

import pytest
from pycrdt import Array, Map

from collab.client import CollabClient, CollabClientError
from crdt.awareness import AwarenessEntry, encode_awareness
from tests.boards import shapes
from tests.conftest import mint
from tests.rawsio import RawSocket


async def audit(server, room: str) -> list:
    await server.registry.flush_audit()
    return await server.registry.store.read_audit(room)


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        ({}, "missing_token"),
        ({"name": "Ann"}, "missing_token"),
        ({"token": "garbage"}, "invalid_token"),
        ({"token": mint("room-a", ttl_s=-600)}, "expired_token"),
        ({"token": mint("room-b")}, "wrong_room"),
    ],
)
async def test_refused_connects_get_codes_and_nothing_of_the_room(token_server, auth, code):
    writer = CollabClient(token_server.url, "room-a", auth={"token": mint("room-a")})
    await writer.connect()
    writer.doc.get("shapes", type=Map)["secret"] = {"type": "text", "text": "private"}
    await writer.set_awareness({"cursor": [1, 1]})
    try:
        raw = await RawSocket.open(token_server.url)
        reply = await raw.connect("/yjs|room-a", auth)
        assert reply["connected"] is False
        assert reply["data"]["code"] == code
        # Nothing else arrives for the namespace: no state, awareness or chat.
        with pytest.raises(TimeoutError):
            message = await asyncio.wait_for(raw.ws.receive(), 0.5)
            assert "/yjs|room-a" not in str(message.data), message
        await raw.close()
    finally:
        await writer.close()
    records = await audit(token_server, "room-a")
    assert any(r.action == "connect" and r.outcome == code for r in records)


def _forged_tokens() -> dict[str, str]:
    import base64
    import json

    import jwt

    from tests.conftest import SECRET

    now = int(time.time())
    claims = {"sub": "x", "name": "X", "room": "room-a", "role": "facilitator", "exp": now + 60}

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return {
        "wrongly signed": jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256"),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.",
        "not yet valid": jwt.encode({**claims, "nbf": now + 600}, SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "another-app"}, SECRET, algorithm="HS256"),
        "bad role": jwt.encode({**claims, "role": "admin"}, SECRET, algorithm="HS256"),
    }


@pytest.mark.parametrize("case", list(_forged_tokens()))
async def test_forged_tokens_are_invalid_and_audited(token_server, case):
    raw = await RawSocket.open(token_server.url)
    reply = await raw.connect("/yjs|room-a", {"token": _forged_tokens()[case]})
    await raw.close()
    assert reply["connected"] is False and reply["data"]["code"] == "invalid_token"
    assert token_server.registry.rooms == {}, "a refused connect loads nothing"
    records = await audit(token_server, "room-a")
    assert [(r.action, r.outcome, r.user_id) for r in records] == [
        ("connect", "invalid_token", None)
    ]


async def test_dev_mode_mints_and_accepts_tokens(server, client_factory):
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.url + "/dev/token",
            json={"room": "dev-room", "name": "Dee", "role": "facilitator"},
        ) as r:
            assert r.status == 200
            minted = await r.json()
        async with http.post(server.url + "/dev/token", json={"room": "bad room"}) as r:
            assert r.status == 400
    client = await client_factory(server.url, "dev-room", "chat", auth={"token": minted["token"]})
    await client.send_chat("hi")
    await client.wait_for(lambda: len(client.doc.get("messages", type=Array)) == 1)
    message = client.doc.get("messages", type=Array).to_py()[0]
    assert (message["authorId"], message["role"]) == (minted["sub"], "facilitator")
    with pytest.raises(CollabClientError) as info:
        await client_factory(server.url, "dev-room", auth={"token": "forged"})
    assert info.value.code == "invalid_token", "in --dev a token, when given, is still verified"


async def test_no_dev_token_route_without_dev(token_server):
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(token_server.url + "/dev/token", json={"room": "r", "name": "n"}) as r,
    ):
        assert r.status in (404, 405)


async def test_token_identity_is_what_others_see(token_server, client_factory):
    ann = await client_factory(
        token_server.url, "r", "chat", auth={"token": mint("r", name="Ann", sub="sub-ann")}
    )
    await ann.send_chat("hello")
    await ann.wait_for(lambda: len(ann.doc.get("messages", type=Array)) == 1)
    message = ann.doc.get("messages", type=Array).to_py()[0]
    assert (message["authorId"], message["authorName"], message["role"]) == (
        "sub-ann",
        "Ann",
        "participant",
    )


async def test_prefix_pattern_token(token_server, client_factory):
    client = await client_factory(
        token_server.url, "clinic-7/group-a", auth={"token": mint("clinic-7/*")}
    )
    assert client.synced.is_set()
    with pytest.raises(CollabClientError) as info:
        await client_factory(
            token_server.url, "clinic-8/group-a", auth={"token": mint("clinic-7/*")}
        )
    assert info.value.code == "wrong_room"


async def test_expiry_mid_session_disconnects_and_new_token_works(server_factory, client_factory):
    from tests.conftest import ADMIN_KEY, SECRET

    srv = await server_factory(dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, jwt_leeway_s=0)
    client = await client_factory(
        srv.url, "r", auth={"token": mint("r", ttl_s=2)}, reconnection=False
    )
    started = time.monotonic()
    await client.wait_for(
        lambda: any(e["code"] == "expired_token" for e in client.errors), timeout_s=8
    )
    await client.wait_for(lambda: not client.connected, timeout_s=5)
    assert time.monotonic() - started < 6
    assert [e["event"] for e in client.errors if e["code"] == "expired_token"] == ["disconnect"]
    fresh = await client_factory(srv.url, "r", auth={"token": mint("r", ttl_s=600)})
    assert fresh.synced.is_set()


async def test_observer_is_read_only_but_present(token_server, client_factory):
    writer = await client_factory(token_server.url, "r", auth={"token": mint("r", name="P")})
    observer = await client_factory(
        token_server.url, "r", auth={"token": mint("r", role="observer", name="Obs", sub="obs")}
    )
    observer.doc.get("shapes", type=Map)["nope"] = {"type": "rect"}
    await observer.wait_for(lambda: len(observer.errors) == 1)
    assert observer.errors[0]["code"] == "permission_denied"
    with pytest.raises(CollabClientError) as info:
        await observer.send_chat("hi")
    assert info.value.code == "permission_denied"
    await observer.set_awareness({"cursor": [3, 4]})
    await writer.wait_for(lambda: observer.doc.client_id in writer.awareness)
    assert writer.awareness[observer.doc.client_id]["user"] == {
        "id": "obs",
        "name": "Obs",
        "role": "observer",
    }
    assert "nope" not in shapes(writer)
    records = await audit(token_server, "r")
    refused = [r for r in records if r.action == "refused"]
    assert {r.outcome for r in refused} == {"permission_denied"}
    assert all(r.user_id == "obs" for r in refused)


async def test_awareness_user_is_stamped_by_the_server(token_server, client_factory):
    mallory = await client_factory(
        token_server.url, "r", auth={"token": mint("r", name="Mallory", sub="m")}
    )
    peer = await client_factory(token_server.url, "r", auth={"token": mint("r", name="P")})
    await mallory.set_awareness(
        {
            "user": {"id": "facilitator-1", "name": "Dr. Smith", "role": "facilitator"},
            "cursor": [1, 2],
        }
    )
    await peer.wait_for(lambda: mallory.doc.client_id in peer.awareness)
    state = peer.awareness[mallory.doc.client_id]
    assert state["user"] == {"id": "m", "name": "Mallory", "role": "participant"}
    assert state["cursor"] == [1, 2]


async def test_an_observers_extra_awareness_field_never_reaches_a_participant(
    token_server, client_factory
):
    """protocol.md §3.1: fields off ``--awareness-fields`` are dropped before
    the state is kept or relayed, whoever sends them (observers too)."""
    marker = "PHI-MARKER-3f1c"
    participant = await client_factory(
        token_server.url, "r", auth={"token": mint("r", name="Pat", sub="p")}
    )
    observer = await client_factory(
        token_server.url, "r", auth={"token": mint("r", role="observer", name="Obs", sub="o")}
    )
    await observer.set_awareness(
        {"cursor": [3, 4], "tool": "pen", "diagnosis": marker, "notes": {"text": marker}}
    )
    await participant.wait_for(lambda: observer.doc.client_id in participant.awareness)
    expected = {
        "user": {"id": "o", "name": "Obs", "role": "observer"},
        "cursor": [3, 4],
        "tool": "pen",
    }
    assert participant.awareness[observer.doc.client_id] == expected
    late = await client_factory(token_server.url, "r", auth={"token": mint("r", sub="late")})
    await late.wait_for(lambda: observer.doc.client_id in late.awareness)
    assert late.awareness[observer.doc.client_id] == expected, "nor is it kept for joiners"


@pytest.mark.parametrize(
    ("fields", "kept"),
    [(("cursor",), {"cursor"}), (("*",), {"cursor", "tool", "custom"})],
)
async def test_the_awareness_allow_list_is_a_setting(server_factory, client_factory, fields, kept):
    srv = await server_factory(awareness_fields=fields)
    a = await client_factory(srv.url, "r", auth={"name": "Ann"})
    b = await client_factory(srv.url, "r", auth={"name": "Bob"})
    await a.set_awareness({"cursor": [1, 1], "tool": "pen", "custom": 1})
    await b.wait_for(lambda: a.doc.client_id in b.awareness)
    assert set(b.awareness[a.doc.client_id]) == {"user", *kept}


async def test_awareness_for_another_users_client_id_is_refused(token_server, client_factory):
    a = await client_factory(token_server.url, "r", auth={"token": mint("r", sub="a")})
    b = await client_factory(token_server.url, "r", auth={"token": mint("r", sub="b")})
    await a.set_awareness({"cursor": [0, 0]})
    await b.wait_for(lambda: a.doc.client_id in b.awareness)
    # A removal of another's client id is ignored (y-socket.io sends such
    # echoes), a newer state for it is refused; events are handled in order.
    await b.emit_raw(
        "awareness-update", encode_awareness([AwarenessEntry(a.doc.client_id, 50, None)])
    )
    await b.emit_raw(
        "awareness-update",
        encode_awareness([AwarenessEntry(a.doc.client_id, 51, '{"cursor":[9,9]}')]),
    )
    await b.wait_for(lambda: len(b.errors) == 1)
    assert b.errors[0]["code"] == "awareness_client_not_owned"
    assert a.doc.client_id in b.awareness  # the forged removal did nothing
