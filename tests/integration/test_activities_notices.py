"""Session notices and deleting one's own chat message (protocol.md §6.6).

The notice is one line in meta (``meta.notice``) set by a facilitator
(``mod:notice``) or the platform (``POST /api/rooms``, ``PUT
/api/rooms/{room}/notice``), checked like a title, audited with its size
only. An author deletes their own message within ``--chat-delete-window-s``
(``chat:delete``): the text leaves the document state and the disk as a
redaction's does; another user's message or a late deletion is refused
with a typed error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from pycrdt import Array, Map

from collab.client import CollabClient, CollabClientError
from collab.openapi import OPENAPI
from tests.conftest import ADMIN_KEY, SECRET, mint

ROOM = "clinic-7/notices"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
NOTICE = "This chat is kept for 30 days and may be exported by your facilitator."
MARKER = "PRIVATE-SHARED-TOO-SOON-5521"


def token(sub: str, role: str = "participant") -> dict[str, str]:
    return {"token": mint(ROOM, role=role, name=sub.title(), sub=sub)}


def notice(client: CollabClient) -> Any:
    return client.doc.get("meta", type=Map).to_py().get("notice")


def messages(client: CollabClient) -> list[dict[str, Any]]:
    return client.doc.get("messages", type=Array).to_py() or []


def check(schema: str, body: Any) -> None:
    ref = {"$ref": f"#/components/schemas/{schema}", "components": OPENAPI["components"]}
    jsonschema.validate(body, ref, cls=jsonschema.Draft202012Validator)


async def refused(client: CollabClient, event: str, payload: Any) -> str:
    with pytest.raises(CollabClientError) as info:
        await client.call(event, payload)
    return info.value.code


async def audit(server: Any, action: str) -> list[Any]:
    await server.registry.flush_audit()
    return [r for r in await server.registry.store.read_audit(ROOM) if r.action == action]


def on_disk(data: Path, marker: str) -> list[str]:
    return [f.name for f in data.rglob("*") if f.is_file() and marker.encode() in f.read_bytes()]


# -- notices -----------------------------------------------------------------------


async def test_a_facilitator_sets_the_notice_everyone_sees(token_server, client_factory):
    url = token_server.url
    fac = await client_factory(url, ROOM, auth=token("kim", "facilitator"))
    par = await client_factory(url, ROOM, "meta", auth=token("ann"))
    ack = await fac.set_notice(f"  {NOTICE}  ")
    assert ack["ok"] is True and "state" in ack
    await par.wait_for(lambda: notice(par) == NOTICE)  # its ends trimmed
    # A later joiner finds it.
    late = await client_factory(url, ROOM, "meta", auth=token("bob"))
    assert notice(late) == NOTICE
    # The limit is 500 characters; the 501st is refused.
    await fac.set_notice("n" * 500)
    await par.wait_for(lambda: notice(par) == "n" * 500)
    assert await refused(fac, "mod:notice", {"text": "n" * 501}) == "invalid_payload"
    # Only facilitators; only one line of plain text; only {text}.
    assert await refused(par, "mod:notice", {"text": "hi"}) == "permission_denied"
    for payload in (
        {"text": "two\nlines"},
        {"text": "tab\there"},
        {"text": "bidi \u202e trick"},
        {"text": "zero\u200bwidth"},
        {"text": 5},
        {},
        {"text": "x", "by": "kim"},
        "text",
    ):
        assert await refused(fac, "mod:notice", payload) == "invalid_payload", payload
    # '' clears it.
    await fac.set_notice("")
    await par.wait_for(lambda: notice(par) == "")
    # Audited with its size, never its words.
    records = await audit(token_server, "notice")
    ok = [r.detail for r in records if r.outcome == "ok"]
    assert ok == [f"notice chars={len(NOTICE)}", "notice chars=500", "notice cleared"]
    assert ("ann", "permission_denied") in [(r.user_id, r.outcome) for r in records]
    assert all("kept" not in r.detail for r in records)


async def test_the_platform_sets_the_notice_through_the_admin_api(
    server_factory, client_factory, tmp_path
):
    data = tmp_path / "data"
    options = {
        "dev": False,
        "jwt_secret": SECRET,
        "admin_key": ADMIN_KEY,
        "store": "sqlite",
        "data_dir": data,
    }
    srv = await server_factory(**options)
    async with aiohttp.ClientSession() as http:

        async def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
            kwargs.setdefault("headers", AUTH)
            async with http.request(method, srv.url + path, **kwargs) as r:
                return r.status, await r.json()

        status, body = await call("POST", "/api/rooms", json={"id": ROOM, "notice": NOTICE})
        assert status == 201, body
        path = "/api/rooms/clinic-7%2Fnotices/notice"
        par = await client_factory(srv.url, ROOM, "meta", auth=token("ann"))
        assert notice(par) == NOTICE
        status, body = await call("PUT", path, json={"text": "Recorded for supervision."})
        assert status == 200, body
        check("Notice", body)
        assert body == {"room": ROOM, "notice": "Recorded for supervision."}
        await par.wait_for(lambda: notice(par) == "Recorded for supervision.")
        # Refusals: a bad notice, an unknown field, no room, no key.
        for payload in ({"text": "a\nb"}, {"text": "x" * 501}, {"note": "x"}, {}, {"text": 1}):
            status, body = await call("PUT", path, json=payload)
            assert status == 400 and body["error"]["code"] == "invalid_payload", payload
            check("Error", body)
        status, body = await call("PUT", "/api/rooms/nowhere/notice", json={"text": "x"})
        assert status == 404 and body["error"]["code"] == "not_found"
        status, body = await call("PUT", path, json={"text": "x"}, headers={})
        assert status == 401 and body["error"]["code"] == "unauthorized"
        status, body = await call("POST", "/api/rooms", json={"id": "c/x", "notice": "a\nb"})
        assert status == 400 and body["error"]["code"] == "invalid_payload"
        status, _ = await call("GET", "/api/rooms/c%2Fx")
        assert status == 404, "a refused notice creates no room"
    records = await audit(srv, "notice")
    assert [(r.user_id, r.role, r.outcome, r.detail) for r in records if r.outcome == "ok"] == [
        ("admin", "admin", "ok", f"notice chars={len(NOTICE)}"),
        ("admin", "admin", "ok", "notice chars=25"),
    ]
    await par.close()
    await srv.stop()

    # The notice is meta's: a restart keeps it.
    srv2 = await server_factory(**options)
    again = await client_factory(srv2.url, ROOM, "meta", auth=token("bob"))
    assert notice(again) == "Recorded for supervision."


# -- deleting one's own message ------------------------------------------------------


@pytest.fixture
async def chat_room(server_factory, client_factory, tmp_path):
    data = tmp_path / "data"
    srv = await server_factory(
        dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, store="sqlite", data_dir=data
    )
    ann = await client_factory(srv.url, ROOM, "chat", auth=token("ann"))
    bob = await client_factory(srv.url, ROOM, "chat", auth=token("bob"))
    fac = await client_factory(srv.url, ROOM, "chat", auth=token("kim", "facilitator"))
    return srv, data, ann, bob, fac


async def test_an_author_deletes_their_own_message_everywhere(chat_room, client_factory):
    srv, data, ann, bob, fac = chat_room
    sent = await ann.send_chat(MARKER, client_message_id="oops-1")
    await ann.send_chat("an ordinary message")
    await srv.registry.flush_all()
    assert on_disk(data, MARKER), "the text is on disk before"

    ack = await ann.delete_chat(sent["id"])
    assert ack == {"ok": True, "id": sent["id"]}
    for client in (ann, bob, fac):
        await client.wait_for(lambda c=client: messages(c)[0].get("deleted") is True)
        first = messages(client)[0]
        assert first["text"] == "" and first["redacted"] is False and first["id"] == sent["id"]
    # Gone from the document state, memory's copies and the disk.
    late = await client_factory(srv.url, ROOM, "chat", auth=token("eve", "observer"))
    assert MARKER.encode() not in bytes(late.doc.get_update())
    assert [m["text"] for m in messages(late)] == ["", "an ordinary message"]
    chat = srv.registry.rooms[ROOM].docs["chat"]
    assert MARKER.encode() not in bytes(chat.engine.full_state())
    assert all(MARKER.encode() not in bytes(u) for u in (chat._checkpoint, *chat._since))
    await srv.registry.flush_all()
    assert on_disk(data, MARKER) == []
    # A retry is answered, nothing more written; a resend with the same
    # clientMessageId does not bring the text back.
    assert (await ann.delete_chat(sent["id"]))["id"] == sent["id"]
    resent = await ann.send_chat(MARKER, client_message_id="oops-1")
    assert resent["duplicate"] is True and resent["id"] == sent["id"]
    assert messages(ann)[0]["text"] == ""
    # Audited with the message id, never the text.
    records = await audit(srv, "delete_message")
    assert [(r.user_id, r.outcome, r.detail) for r in records] == [
        ("ann", "ok", sent["id"]),
        ("ann", "ok", f"{sent['id']} already"),
    ]


async def test_only_ones_own_message_and_only_within_the_window(chat_room, client_factory):
    srv, _, ann, bob, fac = chat_room
    sent = await ann.send_chat("mine")
    facs = await fac.send_chat("the facilitator's")
    # Another user's message, even for a facilitator (who redacts instead).
    assert await refused(bob, "chat:delete", {"messageId": sent["id"]}) == "permission_denied"
    assert await refused(fac, "chat:delete", {"messageId": sent["id"]}) == "permission_denied"
    assert await refused(ann, "chat:delete", {"messageId": facs["id"]}) == "permission_denied"
    # An observer has no message to delete.
    obs = await client_factory(srv.url, ROOM, "chat", auth=token("eve", "observer"))
    assert await refused(obs, "chat:delete", {"messageId": sent["id"]}) == "permission_denied"
    # Bad input, and an unknown message.
    for payload in ({"messageId": "not hex!"}, {"messageId": 12}, {}, {"id": sent["id"]}, "x"):
        assert await refused(ann, "chat:delete", payload) == "invalid_payload", payload
    unknown = {"messageId": "0123456789abcdef0000"}
    assert await refused(ann, "chat:delete", unknown) == "not_found"
    # Past the window (the server's clock moved on ten minutes).
    registry = srv.registry
    real = registry.clock_ms
    registry.clock_ms = lambda: real() + 600_000.0
    try:
        code = await refused(ann, "chat:delete", {"messageId": sent["id"]})
    finally:
        registry.clock_ms = real
    assert code == "delete_window_expired"
    # Within it again: done; a facilitator's own message too, after the end.
    await ann.delete_chat(sent["id"])
    await fac.call("mod:end", {})
    await fac.delete_chat(facs["id"])
    await bob.wait_for(lambda: all(m.get("deleted") for m in messages(bob)))
    assert [m["text"] for m in messages(bob)] == ["", ""]
    outcomes = [(r.user_id, r.outcome) for r in await audit(srv, "delete_message")]
    assert ("bob", "permission_denied") in outcomes
    assert ("ann", "delete_window_expired") in outcomes
    assert outcomes.count(("ann", "ok")) == 1 and outcomes.count(("kim", "ok")) == 1


async def test_a_window_of_zero_turns_deleting_off(server_factory, client_factory):
    srv = await server_factory(dev=False, jwt_secret=SECRET, chat_delete_window_s=0)
    ann = await client_factory(srv.url, ROOM, "chat", auth=token("ann"))
    sent = await ann.send_chat("cannot take this back")
    assert await refused(ann, "chat:delete", {"messageId": sent["id"]}) == ("delete_window_expired")
    assert messages(ann)[0]["text"] == "cannot take this back"
