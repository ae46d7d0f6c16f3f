"""Finding 1 of issue 12: text the engine cannot hold, and engine failures
in server writes. Every such input gets a typed refusal before the engine
sees it; a write that fails midway leaves the document exactly as it was;
nothing acknowledged is lost, for members connected then or after a reload."""

from __future__ import annotations

import logging

import pytest
from pycrdt import Array, Doc

from collab.client import CollabClient, CollabClientError
from crdt.engine import engine_factory
from crdt.errors import InvalidPayload
from crdt.schemas import CHAT_ROOT
from crdt.types import DocName, RoomId
from rooms.document import Document
from rooms.errors import InternalError
from rooms.limits import Limits
from tests.conftest import SECRET, mint
from tests.waiting import until

MARKER = "SECRETMARKER"

#: Texts a chat message may not hold, and why.
HOSTILE_TEXTS = {
    "lone high surrogate": f"{MARKER}a\ud800b",
    "lone low surrogate": f"{MARKER}\udc00",
    "NUL": f"{MARKER}\x00",
    "escape (C0)": f"{MARKER}\x1b[2J",
    "carriage return": f"{MARKER}\r forged line",
    "C1 control": f"{MARKER}\x85",
    "DEL": f"{MARKER}\x7f",
}

#: Display names a token may not carry.
HOSTILE_NAMES = {
    "lone surrogate": "Ann\ud800",
    "newline": "Ann\nfacilitator",
    "bidi override": "Ann\u202egnilliK",
    "bidi isolate": "\u2066Ann",
    "zero width": "An\u200bn",
    "C1 control": "Ann\x9b",
}


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the server's loggers wrote, tracebacks included (the Python
    clients in this process log their own faults; those are not the server's)."""
    handler = logging.Formatter()
    return "\n".join(
        handler.format(record)
        for record in caplog.records
        if record.name.startswith(("collab", "aiohttp", "engineio", "socketio.server"))
    )


def chat_texts(doc: Doc) -> list[object]:
    return [m.get("text") for m in doc.get(CHAT_ROOT, type=Array).to_py()]


@pytest.fixture
async def sqlite_server(server_factory, data_dir):
    """A token server on SQLite that unloads empty rooms at once."""
    return await server_factory(
        dev=False, jwt_secret=SECRET, store="sqlite", data_dir=data_dir, unload_after_s=0
    )


async def chat_client(url: str, room: str, name: str, role: str = "participant") -> CollabClient:
    client = CollabClient(url, room, "chat", auth={"token": mint(room, role, name=name)})
    await client.connect()
    return client


@pytest.mark.parametrize("kind", list(HOSTILE_TEXTS))
async def test_hostile_chat_text_is_refused_and_nothing_is_lost(
    sqlite_server, kind, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    url = sqlite_server.url
    ann = await chat_client(url, "group", "Ann")
    ben = await chat_client(url, "group", "Ben")
    try:
        first = await ann.send_chat("before")
        with pytest.raises(CollabClientError) as refused:
            await ann.send_chat(HOSTILE_TEXTS[kind])
        assert refused.value.code == "invalid_chat_message"
        assert MARKER not in refused.value.message
        # The sender's connection goes on, and so do the others'.
        second = await ann.send_chat("after")
        third = await ben.send_chat("from ben")
        assert first["ok"] and second["ok"] and third["ok"]
        want = ["before", "after", "from ben"]
        await ben.wait_for(lambda: chat_texts(ben.doc) == want, timeout_s=5)
        await ann.wait_for(lambda: chat_texts(ann.doc) == want, timeout_s=5)
    finally:
        await ann.close()
        await ben.close()
    # Unloaded, reloaded from the store: every acknowledged message is there.
    registry = sqlite_server.registry
    await until(lambda: "group" not in registry.rooms, timeout_s=10, what="room unloaded")
    late = await chat_client(url, "group", "Cy")
    try:
        assert chat_texts(late.doc) == want
    finally:
        await late.close()
    logged = server_log(caplog)
    assert MARKER not in logged
    assert "Traceback" not in logged


@pytest.mark.parametrize("kind", list(HOSTILE_NAMES))
async def test_token_name_with_hostile_characters_is_refused(token_server, kind) -> None:
    token = mint("group", name=HOSTILE_NAMES[kind], sub="u-hostile")
    client = CollabClient(token_server.url, "group", "chat", auth={"token": token})
    with pytest.raises(CollabClientError) as refused:
        await client.connect()
    assert refused.value.code == "invalid_token"
    assert "name" in refused.value.message


@pytest.mark.parametrize("kind", ["lone surrogate", "bidi override", "newline"])
async def test_open_identity_name_with_hostile_characters_is_refused(server, kind) -> None:
    client = CollabClient(server.url, "group", auth={"name": HOSTILE_NAMES[kind]})
    with pytest.raises(CollabClientError) as refused:
        await client.connect()
    assert refused.value.code == "invalid_payload"


async def test_newline_and_tab_are_kept_in_chat(server, client_factory) -> None:
    chat = await client_factory(server.url, "group", "chat")
    await chat.send_chat("line one\n\tline two")
    await chat.wait_for(lambda: chat_texts(chat.doc) == ["line one\n\tline two"], timeout_s=5)


def test_a_server_write_that_fails_midway_changes_nothing() -> None:
    """yrs has no rollback: a transaction that fails after writing part of a
    change commits that part. The document rebuilds itself as it was."""
    doc = Document(RoomId("r"), DocName("chat"), engine_factory("pycrdt")(), Limits())
    doc.write(lambda engine: engine.append_map(CHAT_ROOT, {"id": "1", "text": "kept"}))
    before_state, before_pending = doc.engine.full_state(), list(doc.pending)

    def half_then_fail(engine):
        engine.append_map(CHAT_ROOT, {"id": "2"})  # written, committed
        engine.set_item_fields(CHAT_ROOT, 0, {"text": object()})  # the engine refuses this

    with pytest.raises(InternalError):
        doc.write(half_then_fail)
    assert doc.engine.read_array(CHAT_ROOT) == [{"id": "1", "text": "kept"}]
    assert doc.engine.full_state() == before_state
    assert doc.pending == before_pending
    # The replica keeps working, and its updates apply cleanly elsewhere.
    doc.write(lambda engine: engine.append_map(CHAT_ROOT, {"id": "3", "text": "next"}))
    replica = Doc()
    for update in doc.pending:
        replica.apply_update(update)
    assert [m["id"] for m in replica.get(CHAT_ROOT, type=Array).to_py()] == ["1", "3"]


@pytest.mark.parametrize("engine", ["pycrdt", "ypy"])
def test_a_lone_surrogate_never_reaches_the_engine(engine) -> None:
    doc = Document(RoomId("r"), DocName("meta"), engine_factory(engine)(), Limits())
    before = doc.engine.full_state()
    with pytest.raises(InvalidPayload, match="lone surrogate"):
        doc.write(lambda e: e.set_map_fields("meta", {"title": "a\ud800b"}))
    with pytest.raises(InvalidPayload, match="lone surrogate"):
        doc.write(lambda e: e.set_map_fields("meta", {"\udfff": {"nested": ["\ud800"]}}))
    assert doc.engine.full_state() == before
    assert doc.pending == []


async def test_a_title_with_a_lone_surrogate_is_refused(token_server) -> None:
    import aiohttp

    from tests.conftest import ADMIN_KEY

    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{token_server.url}/api/rooms",
            data='{"id": "titled", "title": "a\\ud800b"}',
            headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
        )
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_payload"
        # the server goes on
        response = await http.post(
            f"{token_server.url}/api/rooms",
            json={"id": "titled", "title": "Tuesday group"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert response.status == 201


class EnginePanicLike(BaseException):
    """Stands in for pyo3's PanicException: a BaseException, not an Exception."""


async def test_an_unexpected_failure_in_a_handler_is_contained(server, caplog) -> None:
    async def broken(*args: object) -> None:
        raise EnginePanicLike(f"{MARKER} in a message")

    handler = server.app.sync._contained("sync-update\nforged", broken)
    ack = await handler("/yjs|r", "sid")
    assert ack == {"ok": False, "error": {"code": "internal_error", "message": "internal error"}}
    logged = server_log(caplog)
    assert "EnginePanicLike" in logged
    assert MARKER not in logged and "\nforged" not in logged
