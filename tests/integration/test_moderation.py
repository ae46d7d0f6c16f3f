"""Facilitator controls: lock, mute, remove, redact, end; enforced on the server."""

from __future__ import annotations

import pytest
from pycrdt import Array, Map

from collab.client import CollabClient, CollabClientError
from tests.boards import shapes
from tests.conftest import ADMIN_KEY, SECRET, mint


def messages(client: CollabClient) -> list[dict]:
    return client.doc.get("messages", type=Array).to_py() or []


async def audit(server, room: str) -> list:
    await server.registry.flush_audit()
    return await server.registry.store.read_audit(room)


@pytest.fixture
async def session(token_server, client_factory):
    """A facilitator and a participant on the board, chat and meta of one room."""

    async def join(name: str, role: str, doc: str = "board") -> CollabClient:
        token = mint("group", role=role, name=name, sub=name.lower())
        return await client_factory(token_server.url, "group", doc, auth={"token": token})

    fac, par = await join("Fac", "facilitator"), await join("Par", "participant")
    par_chat, fac_meta = (
        await join("Par", "participant", "chat"),
        await join("Fac", "facilitator", "meta"),
    )
    return token_server, fac, par, par_chat, fac_meta


async def test_participant_cannot_moderate(session):
    server, _, par, _, _ = session
    for event, payload in [
        ("mod:lock", {"locked": True}),
        ("mod:end", {}),
        ("mod:mute", {"userId": "fac"}),
        ("mod:remove", {"userId": "fac"}),
    ]:
        with pytest.raises(CollabClientError) as info:
            await par.call(event, payload)
        assert info.value.code == "permission_denied"
    assert server.registry.rooms["group"].policy.snapshot().locked is False
    records = await audit(server, "group")
    assert [r.outcome for r in records if r.action == "lock"] == ["permission_denied"]


async def test_lock_blocks_participants_not_facilitators(session):
    server, fac, par, _, fac_meta = session
    ack = await fac.call("mod:lock", {"locked": True})
    assert ack["state"]["locked"] is True
    await fac_meta.wait_for(
        lambda: (fac_meta.doc.get("meta", type=Map).to_py() or {}).get("locked")
    )
    par.doc.get("shapes", type=Map)["p1"] = {"type": "rect"}
    await par.wait_for(lambda: any(e["code"] == "board_locked" for e in par.errors))
    fac.doc.get("shapes", type=Map)["f1"] = {"type": "ellipse"}
    await par.wait_for(lambda: "f1" in shapes(par))
    assert "p1" not in shapes(fac)
    await fac.call("mod:lock", {"locked": False})
    par.doc.get("shapes", type=Map)["p2"] = {"type": "rect"}
    await fac.wait_for(lambda: "p2" in shapes(fac))
    records = await audit(server, "group")
    assert [(r.action, r.detail) for r in records if r.action == "lock"] == [
        ("lock", "locked=true"),
        ("lock", "locked=false"),
    ]
    assert any(r.action == "refused" and r.outcome == "board_locked" for r in records)


async def test_mute_and_unmute(session):
    _, fac, _par, par_chat, _ = session
    await fac.call("mod:mute", {"userId": "par", "muted": True})
    with pytest.raises(CollabClientError) as info:
        await par_chat.send_chat("can I speak?")
    assert info.value.code == "muted"
    await fac.send_chat("facilitators may always speak")
    await fac.call("mod:mute", {"userId": "par", "muted": False})
    await par_chat.send_chat("thanks")
    await par_chat.wait_for(lambda: len(messages(par_chat)) == 2)
    assert [m["text"] for m in messages(par_chat)] == ["facilitators may always speak", "thanks"]
    records = await audit(session[0], "group")
    assert [(r.action, r.user_id, r.outcome) for r in records if r.outcome == "muted"] == [
        ("refused", "par", "muted")
    ]


async def test_remove_disconnects_everywhere_and_blocks_the_token(session, client_factory):
    server, fac, par, par_chat, _ = session
    ack = await fac.call("mod:remove", {"userId": "par"})
    assert ack["state"]["removed"] == ["par"]
    for conn in (par, par_chat):
        await conn.wait_for(lambda c=conn: not c.connected, timeout_s=5)
        assert any(e["code"] == "removed" and e["event"] == "disconnect" for e in conn.errors)
    token = mint("group", name="Par", sub="par")
    with pytest.raises(CollabClientError) as info:
        await client_factory(server.url, "group", auth={"token": token}, reconnection=False)
    assert info.value.code == "removed"
    records = await audit(server, "group")
    assert any(
        r.action == "connect" and r.user_id == "par" and r.outcome == "removed" for r in records
    )
    with pytest.raises(CollabClientError):
        await fac.call("mod:remove", {"userId": "fac"})  # not yourself
    await fac.call("mod:remove", {"userId": "par", "removed": False})
    back = await client_factory(server.url, "group", auth={"token": token})
    assert back.synced.is_set()


async def test_redaction_removes_the_text_from_state_and_disk(
    server_factory, client_factory, tmp_path
):
    data = tmp_path / "data"
    srv = await server_factory(
        dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, store="sqlite", data_dir=data
    )
    fac = await client_factory(
        srv.url, "g", "chat", auth={"token": mint("g", role="facilitator", name="F", sub="f")}
    )
    par = await client_factory(srv.url, "g", "chat", auth={"token": mint("g", name="P", sub="p")})
    secret = "MY-SECRET-DISCLOSURE-4242"
    ack = await par.send_chat(secret)
    await par.send_chat("an ordinary message")
    await srv.registry.flush_all()  # the secret is on disk now
    assert any(secret.encode() in f.read_bytes() for f in data.iterdir() if f.is_file())

    await fac.call("mod:redact", {"messageId": ack["id"]})
    for client in (fac, par):
        await client.wait_for(lambda c=client: messages(c)[0]["redacted"] is True)
        assert messages(client)[0]["text"] == ""
    fresh = await client_factory(srv.url, "g", "chat", auth={"token": mint("g", sub="late")})
    assert secret.encode() not in bytes(fresh.doc.get_update())
    assert [m["text"] for m in messages(fresh)] == ["", "an ordinary message"]
    await srv.registry.flush_all()
    for f in data.iterdir():
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f"{f.name} still holds the text"
    with pytest.raises(CollabClientError) as info:
        await fac.call("mod:redact", {"messageId": "0123456789abcdef0000"})
    assert info.value.code == "not_found"


async def test_end_session_makes_the_room_read_only(session):
    server, fac, par, par_chat, _ = session
    await fac.call("mod:end", {})
    await par.wait_for(lambda: par.room_state.get("ended") is True)
    par.doc.get("shapes", type=Map)["late"] = {"type": "rect"}
    fac.doc.get("shapes", type=Map)["late-fac"] = {"type": "rect"}
    await par.wait_for(lambda: any(e["code"] == "session_ended" for e in par.errors))
    await fac.wait_for(lambda: any(e["code"] == "session_ended" for e in fac.errors))
    with pytest.raises(CollabClientError) as info:
        await par_chat.send_chat("after the end")
    assert info.value.code == "session_ended"
    board = server.registry.rooms["group"].docs["board"].engine.read_map("shapes")
    assert "late" not in board and "late-fac" not in board


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("mod:lock", {"locked": "yes"}),
        ("mod:mute", {"userId": 5}),
        ("mod:mute", {}),
        ("mod:lock", {"locked": True, "extra": 1}),
        ("mod:redact", {"messageId": "<script>"}),
        ("mod:end", "now"),
    ],
)
async def test_bad_moderation_payloads(session, event, payload):
    server, fac, *_ = session
    with pytest.raises(CollabClientError) as info:
        await fac.call(event, payload)
    assert info.value.code == "invalid_payload"
    assert server.registry.rooms["group"].policy.snapshot().as_json() == {
        "title": "",
        "locked": False,
        "ended": False,
        "muted": [],
        "removed": [],
    }
