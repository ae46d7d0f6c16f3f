"""The private line to the facilitators (protocol.md §6.8), on one real
server with the SQLite store: who may read and write a thread, the group
chat never holding it, idempotent resends, typed refusals, redaction that
leaves neither memory nor disk holding the text, a restart keeping the
thread, the audit record of every read, export and deletion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Array

from collab.client import CollabClient, CollabClientError
from collab.client_private import PrivateLine, thread_doc, thread_messages
from rooms import private_line
from tests.conftest import ADMIN_KEY, SECRET, mint
from tests.waiting import until

ROOM = "clinic9-private"
MARKER = "PRIVATE-LINE-4471"


def who(sub: str, role: str = "participant") -> dict[str, str]:
    return {"token": mint(ROOM, role=role, name=sub.title(), sub=sub)}


def chat_messages(client: CollabClient) -> list[dict[str, Any]]:
    return client.doc.get("messages", type=Array).to_py() or []


def on_disk(data: Path) -> list[str]:
    return [f.name for f in data.rglob("*") if f.is_file() and MARKER.encode() in f.read_bytes()]


async def start(server_factory, data: Path):
    return await server_factory(
        dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, store="sqlite", data_dir=data
    )


@pytest.fixture
async def srv(server_factory, tmp_path):
    return await start(server_factory, tmp_path / "data")


async def refused(client_factory, url: str, doc: str, auth: dict[str, str]) -> str:
    with pytest.raises(CollabClientError) as info:
        await client_factory(url, ROOM, doc, auth=auth, reconnection=False)
    return info.value.code


async def test_a_participant_and_the_facilitators_share_a_thread_nobody_else_reads(
    srv, client_factory
) -> None:
    ann_board = await client_factory(srv.url, ROOM, auth=who("ann"))
    fac_board = await client_factory(srv.url, ROOM, auth=who("kim", "facilitator"))
    group = await client_factory(srv.url, ROOM, "chat", auth=who("bob"))
    notices = PrivateLine(fac_board).notices()
    anns = PrivateLine(ann_board).notices()
    bobs_notices = PrivateLine(group).notices()

    ack = await PrivateLine(ann_board).send("Can I share something privately?")
    doc = ack["doc"]
    assert doc == thread_doc(ROOM, "ann") and doc.startswith("private:")
    assert "ann" not in doc  # a pseudonym: the user id stays out of names and logs
    await fac_board.wait_for(lambda: len(notices) == 1)
    assert notices[0] == {
        "doc": doc,
        "userId": "ann",
        "id": ack["id"],
        "ts": ack["ts"],
        "role": "participant",
    }

    # The participant and any facilitator read it; the author is stamped.
    ann = await client_factory(srv.url, ROOM, doc, auth=who("ann"))
    kim = await client_factory(srv.url, ROOM, doc, auth=who("kim", "facilitator"))
    for client in (ann, kim):
        await client.wait_for(lambda c=client: len(thread_messages(c)) == 1)
    first = thread_messages(kim)[0]
    assert first["authorId"] == "ann" and first["role"] == "participant"
    assert first["threadOf"] == "ann" and first["text"] == "Can I share something privately?"

    # Another participant and an observer are refused, typed; so is a removed user.
    assert await refused(client_factory, srv.url, doc, who("bob")) == "private_line_forbidden"
    obs = who("eve", "observer")
    assert await refused(client_factory, srv.url, doc, obs) == "private_line_forbidden"

    # The facilitator answers by naming the participant.
    reply = await PrivateLine(kim).send("Of course. I am listening.", to="ann")
    assert reply["doc"] == doc
    await ann.wait_for(lambda: len(thread_messages(ann)) == 2)
    assert thread_messages(ann)[1]["role"] == "facilitator"
    # The participant is told of the answer on their other connections; nobody else is.
    await ann_board.wait_for(lambda: [n["id"] for n in anns] == [ack["id"], reply["id"]])
    assert anns[1]["role"] == "facilitator" and anns[1]["userId"] == "ann"
    await fac_board.wait_for(lambda: len(notices) == 2)

    # The group chat never holds any of it.
    await group.send_chat("hello all")
    await group.wait_for(lambda: len(chat_messages(group)) == 1)
    assert bobs_notices == []
    assert [m["text"] for m in chat_messages(group)] == ["hello all"]
    chat = srv.registry.rooms[ROOM].docs["chat"]
    assert b"privately" not in bytes(chat.engine.full_state())

    # The thread document is the server's: a client's update is refused.
    with pytest.raises(CollabClientError):
        ann.doc.get("messages", type=Array).append("forged")
        await ann.wait_for(lambda: bool(ann.refusals))
        raise CollabClientError(ann.refusals[0].code, "")
    assert ann.refusals[0].code == "read_only_document"

    # The facilitators' list: ids, counts and times, no text.
    listed = await PrivateLine(fac_board).threads()
    assert listed["own"] is None
    assert [(t["doc"], t["userId"], t["messages"]) for t in listed["threads"]] == [(doc, "ann", 2)]
    assert "privately" not in str(listed)
    mine = await PrivateLine(ann_board).threads()
    assert mine["own"] == doc and [t["doc"] for t in mine["threads"]] == [doc]
    bobs = await PrivateLine(group).threads()
    assert bobs["own"] == thread_doc(ROOM, "bob") and bobs["threads"] == []


async def test_sending_is_idempotent_typed_and_by_role(srv, client_factory) -> None:
    ann = await client_factory(srv.url, ROOM, auth=who("ann"))
    kim = await client_factory(srv.url, ROOM, auth=who("kim", "facilitator"))
    eve = await client_factory(srv.url, ROOM, auth=who("eve", "observer"))
    line, fac = PrivateLine(ann), PrivateLine(kim)

    first = await line.send("once", client_message_id="cm-1")
    again = await line.send("once", client_message_id="cm-1")
    assert again["id"] == first["id"] and again["duplicate"] is True
    assert first["duplicate"] is False
    doc = srv.registry.rooms[ROOM].docs[first["doc"]]
    assert len(doc.engine.read_array("messages")) == 1
    # The same client message id in the group chat is another message.
    group = await ann.send_chat("group", client_message_id="cm-1")
    assert group["id"] != first["id"]

    async def code(sender: PrivateLine, *args: Any, **kwargs: Any) -> str:
        with pytest.raises(CollabClientError) as info:
            await sender.send(*args, **kwargs)
        return info.value.code

    assert await code(PrivateLine(eve), "hi") == "permission_denied"
    assert await code(line, "hi", to="bob") == "private_line_forbidden"
    assert await code(fac, "hi") == "invalid_payload"  # a facilitator names the participant
    assert await code(fac, "hi", to="kim") == "invalid_payload"
    assert await code(fac, "hi", to="a b") == "invalid_payload"
    assert await code(line, "") == "invalid_chat_message"
    assert await code(line, "x" * 100_000) == "invalid_chat_message"
    assert await code(line, "hi", client_message_id="bad id!") == "invalid_chat_message"
    with pytest.raises(CollabClientError) as extra:
        await ann.call("private:send", {"text": "hi", "clientMessageId": "c", "x": 1})
    assert extra.value.code == "invalid_payload"
    with pytest.raises(CollabClientError) as shape:
        await ann.call("private:send", ["hi"])
    assert shape.value.code == "invalid_payload"
    with pytest.raises(CollabClientError) as threads:
        await eve.call("private:threads", {})
    assert threads.value.code == "private_line_forbidden"
    # A muted participant can still write to the facilitators.
    await kim.call("mod:mute", {"userId": "ann"})
    assert (await line.send("still here"))["duplicate"] is False
    # After the end nothing is written.
    await kim.call("mod:end", {})
    assert await code(line, "late") == "session_ended"
    assert await code(fac, "late", to="ann") == "session_ended"


async def test_an_observer_override_and_a_removal_close_the_thread(srv, client_factory) -> None:
    kim = await client_factory(srv.url, ROOM, auth=who("kim", "facilitator"))
    ann_board = await client_factory(srv.url, ROOM, auth=who("ann"))
    doc = (await PrivateLine(ann_board).send("hello"))["doc"]
    ann = await client_factory(srv.url, ROOM, doc, auth=who("ann"), reconnection=False)
    errors = ann.listen("collab:error")
    await kim.call("mod:role", {"userId": "ann", "role": "observer"})
    await ann.wait_for(lambda: any(e.get("code") == "private_line_forbidden" for e in errors))
    await until(lambda: not ann.connected, what="the observer's thread closed")
    assert await refused(client_factory, srv.url, doc, who("ann")) == "private_line_forbidden"
    await kim.call("mod:role", {"userId": "ann", "role": None})
    await kim.call("mod:remove", {"userId": "ann"})
    assert await refused(client_factory, srv.url, doc, who("ann")) == "removed"


async def test_redaction_and_own_delete_purge_the_thread(srv, client_factory, tmp_path) -> None:
    data = tmp_path / "data"
    ann = await client_factory(srv.url, ROOM, auth=who("ann"))
    kim = await client_factory(srv.url, ROOM, auth=who("kim", "facilitator"))
    bob = await client_factory(srv.url, ROOM, auth=who("bob"))
    ack = await PrivateLine(ann).send(MARKER)
    doc = ack["doc"]
    thread = await client_factory(srv.url, ROOM, doc, auth=who("kim", "facilitator"))
    await thread.wait_for(lambda: len(thread_messages(thread)) == 1)
    assert on_disk(data)
    with pytest.raises(CollabClientError) as denied:
        await PrivateLine(ann).redact(doc, ack["id"])
    assert denied.value.code == "permission_denied"
    with pytest.raises(CollabClientError) as bad:
        await PrivateLine(kim).redact("board:x", ack["id"])
    assert bad.value.code == "invalid_payload"
    await PrivateLine(kim).redact(doc, ack["id"])
    await thread.wait_for(lambda: thread_messages(thread)[0]["redacted"] is True)
    assert thread_messages(thread)[0]["text"] == ""
    assert on_disk(data) == []
    # A participant deletes their own message from their thread; another's thread is refused.
    own = await PrivateLine(ann).send("oops")
    with pytest.raises(CollabClientError) as other:
        await bob.call("chat:delete", {"messageId": own["id"], "doc": doc})
    assert other.value.code == "private_line_forbidden"
    await ann.call("chat:delete", {"messageId": own["id"], "doc": doc})
    await thread.wait_for(lambda: thread_messages(thread)[-1].get("deleted") is True)
    await srv.registry.flush_audit()
    records = await srv.registry.store.read_audit(ROOM)
    assert any(r.action == "redact" and r.detail == f"{ack['id']} doc={doc}" for r in records)


async def test_the_thread_survives_a_reconnect_and_a_restart_and_reads_are_audited(
    server_factory, client_factory, tmp_path
) -> None:
    data = tmp_path / "data"
    first = await start(server_factory, data)
    ann = await client_factory(first.url, ROOM, auth=who("ann"))
    ack = await PrivateLine(ann).send("before the restart")
    doc = ack["doc"]
    thread = await client_factory(first.url, ROOM, doc, auth=who("ann"))
    await thread.wait_for(lambda: len(thread_messages(thread)) == 1)
    await first.registry.flush_audit()
    await first.stop()

    second = await start(server_factory, data)
    kim = await client_factory(second.url, ROOM, doc, auth=who("kim", "facilitator"))
    await kim.wait_for(lambda: len(thread_messages(kim)) == 1)
    assert thread_messages(kim)[0]["text"] == "before the restart"
    # Idempotent across the restart too.
    ann2 = await client_factory(second.url, ROOM, auth=who("ann"))
    again = await PrivateLine(ann2).send("before the restart", client_message_id="x")
    resent = await PrivateLine(ann2).send("before the restart", client_message_id="x")
    assert resent["id"] == again["id"]
    await kim.wait_for(lambda: len(thread_messages(kim)) == 2)
    await second.registry.flush_audit()
    reads = [
        (r.user_id, r.role, r.detail)
        for r in await second.registry.store.read_audit(ROOM)
        if r.action == "private_read"
    ]
    assert ("ann", "participant", f"{doc} of=ann") in reads
    assert ("kim", "facilitator", f"{doc} of=ann") in reads


async def test_export_holds_the_threads_and_deletion_removes_them(
    srv, client_factory, tmp_path
) -> None:
    data = tmp_path / "data"
    ann = await client_factory(srv.url, ROOM, auth=who("ann"))
    kim = await client_factory(srv.url, ROOM, auth=who("kim", "facilitator"))
    await ann.send_chat("group hello")
    ack = await PrivateLine(ann).send(MARKER)
    await PrivateLine(kim).send("answer", to="ann")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        url = f"{srv.url}/api/rooms/{ROOM}/export"
        async with http.get(url, params={"format": "json"}) as resp:
            assert resp.status == 200, await resp.text()
            exported = await resp.json()
        threads = exported["private"]
        assert [(t["doc"], t["userId"]) for t in threads] == [(ack["doc"], "ann")]
        assert [m["text"] for m in threads[0]["messages"]] == [MARKER, "answer"]
        assert all(MARKER not in m["text"] for m in exported["chat"])
        async with http.get(url, params={"format": "markdown"}) as resp:
            assert resp.status == 200
            markdown = await resp.text()
        assert "Private thread" in markdown and MARKER in markdown
        assert markdown.index("Private thread") > markdown.index("group hello")

        await srv.registry.flush_all()
        assert on_disk(data)
        async with http.delete(f"{srv.url}/api/rooms/{ROOM}") as resp:
            assert resp.status in (200, 204), await resp.text()
    await until(lambda: not on_disk(data), what="the thread deleted with the room")
    assert ack["doc"] not in await srv.registry.store.list_documents(ROOM)


async def test_retention_purges_the_threads_with_the_room(srv, client_factory, tmp_path) -> None:
    data = tmp_path / "data"
    ann = await client_factory(srv.url, ROOM, auth=who("ann"))
    ack = await PrivateLine(ann).send(MARKER)
    await ann.close()
    registry = srv.registry
    await until(lambda: ROOM not in registry.rooms or not registry.rooms[ROOM].in_use)
    await registry.flush_all()
    assert on_disk(data)
    real = registry.clock_ms
    registry.clock_ms = lambda: real() + 400 * 86_400_000.0
    try:
        assert ROOM in await registry.purge_expired()
    finally:
        registry.clock_ms = real
    assert ack["doc"] not in await registry.store.list_documents(ROOM)
    assert (await registry.store.load(ROOM, ack["doc"])).updates == ()
    await until(lambda: not on_disk(data), what="the thread purged from the disk")


async def test_a_room_holds_a_bounded_number_of_threads(srv, client_factory, monkeypatch) -> None:
    # A facilitator may name any well-formed user id: each new one is a
    # document of the room, so their number is capped (protocol.md §8.1).
    monkeypatch.setattr(private_line, "MAX_PRIVATE_THREADS", 2)
    kim = PrivateLine(await client_factory(srv.url, ROOM, auth=who("kim", "facilitator")))
    ann = PrivateLine(await client_factory(srv.url, ROOM, auth=who("ann")))
    await ann.send("mine")
    await kim.send("to bob", to="bob")
    with pytest.raises(CollabClientError) as full:
        await kim.send("to a stranger", to="stranger-1")
    assert full.value.code == "private_thread_limit"
    # The threads the room holds still take messages, from either side.
    await kim.send("to ann again", to="ann")
    await ann.send("still mine")
    assert sum(1 for name in srv.registry.rooms[ROOM].docs if name.startswith("private:")) == 2
