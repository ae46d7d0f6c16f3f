"""The unmodified npm y-socket.io provider (and socket.io-client) against collab.

Each test runs a real collab server in this process on a loopback port and
real JS peers under node (js/peer.mjs, driven over JSON lines by
:mod:`tests.interop.jspeer`). Python peers are :class:`collab.client.CollabClient`.
Every step waits on a condition with a timeout; nothing waits on a sleep.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from pycrdt import Array, Map

from collab.client import CollabClient
from tests.boards import shapes
from tests.prereqs import unavailable
from tests.waiting import let_io_run

if shutil.which("node") is None:
    unavailable("node is not on PATH: the JS interop suite needs Node.js 18+")

pytestmark = pytest.mark.interop


def messages(client: CollabClient) -> list[dict[str, Any]]:
    return client.doc.get("messages", type=Array).to_py() or []


async def synced_pair(server, client_factory, js_peer, room: str, **js_config: Any):
    """A Python client and a JS provider on ``room``'s board, both synced, and
    the Python one seeing the JS one's awareness (so the server relays between
    both connections)."""
    py = await client_factory(server.url, room)
    js = await js_peer(server.url, room, **js_config)
    await js.wait_synced()
    # y-protocols starts every Awareness with the state {} at clock 0, which
    # no peer applies (a remote entry needs a clock above 0 to be new), so the
    # JS peer announces itself with a state of its own (in a field the
    # server's awareness allow-list keeps: protocol.md §3.1).
    await js.request("awareness-field", field="status", value="js")
    await py.wait_for(lambda: py.awareness.get(js.client_id, {}).get("status") == "js")
    return py, js


# -- handshake -----------------------------------------------------------------


async def test_provider_reports_synced_after_the_servers_sync_step_1(server, js_peer):
    opened, handed_over = server.app.front.opened, server.app.front.handed_over
    js = await js_peer(server.url, "handshake", trace=True)
    await js.wait_synced()
    # The provider opens its session on a WebSocket (transports: ["websocket"],
    # its default, and the web app's): collab's own WebSocket server serves it.
    assert server.app.front.opened == opened + 1
    assert server.app.front.handed_over == handed_over
    names = [e.get("name") if e["event"] == "incoming" else e["event"] for e in js.events]
    # The provider sets synced only when it answers the server's sync-step-1.
    assert names.index("connect") < names.index("sync-step-1") < names.index("synced")
    # Then the server sends its full awareness state (protocol.md §4).
    await js.wait_event(
        lambda e: e["event"] == "incoming" and e["name"] == "awareness-update",
        what="the server's awareness-update",
    )
    state = await js.request("dump")
    assert state["connected"] is True
    assert state["synced"] is True
    assert js.find_events("collab:error") == []


async def test_content_written_before_connecting_reaches_the_server(
    server, client_factory, js_peer
):
    """A provider that starts with local content (autoConnect false, edit,
    connect) hands it over in the handshake."""
    js = await js_peer(server.url, "preloaded", autoConnect=False)
    await js.request("set-shape", id="early", shape={"type": "sticky", "text": "before connect"})
    await js.request("connect")
    await js.wait_synced()
    py = await client_factory(server.url, "preloaded")
    await py.wait_for(lambda: "early" in shapes(py))
    assert shapes(py)["early"] == {"type": "sticky", "text": "before connect"}


# -- board sync ------------------------------------------------------------------


async def test_js_and_python_edit_concurrently_and_converge(server, client_factory, js_peer):
    py, js = await synced_pair(server, client_factory, js_peer, "together")
    board = py.doc.get("shapes", type=Map)
    board["shared"] = Map({"type": "rect", "x": 0.0, "y": 0.0})
    await js.wait_until(shapesHave=["shared"])

    count, delete_every = 40, 7
    deleted = {
        f"{p}{i - 1}"
        for p in ("js-", "py-")
        for i in range(count)
        if i % delete_every == delete_every - 1
    }
    expected = {f"{p}{i}" for p in ("js-", "py-") for i in range(count)} - deleted
    expected |= {"shared", "contested"}

    # Both sides write the same key at about the same time.
    board["contested"] = {"type": "text", "text": "python"}
    await js.request("set-shape", id="contested", shape={"type": "text", "text": "js"})

    burst = await js.send(
        "burst",
        prefix="js-",
        count=count,
        deleteEvery=delete_every,
        field={"id": "shared", "key": "color", "value": "js"},
    )
    shared = board["shared"]
    for i in range(count):
        with py.doc.transaction():
            board[f"py-{i}"] = {"type": "pen", "points": [[i, -i]], "z": i}
            if i % delete_every == delete_every - 1:
                del board[f"py-{i - 1}"]
            shared["label"] = f"py{i}"
        await let_io_run()  # between edits
    await js.reply(burst)

    def py_done() -> bool:
        state = shapes(py)
        return set(state) == expected and state["shared"].get("color") == f"js{count - 1}"

    await py.wait_for(py_done)
    js_state = await js.wait_until(shapesEqual=shapes(py))
    assert js_state["shapes"] == shapes(py)
    assert set(js_state["shapes"]) == expected
    # Concurrent edits of different fields of one Y.Map both survive.
    assert js_state["shapes"]["shared"]["label"] == f"py{count - 1}"
    assert js_state["shapes"]["shared"]["color"] == f"js{count - 1}"
    assert js_state["shapes"]["contested"]["text"] in ("python", "js")
    assert js.find_events("collab:error") == []


async def test_late_js_joiner_gets_the_full_state(server, client_factory, js_peer):
    writer = await client_factory(server.url, "late")
    board = writer.doc.get("shapes", type=Map)
    for i in range(60):
        if i % 3 == 0:
            board[f"s{i}"] = Map({"type": "rect", "x": float(i), "w": 10.0, "h": 5.0})
        else:
            board[f"s{i}"] = {"type": "pen", "points": [[i, i], [i + 1, i + 2]], "color": "#123"}
    for i in range(0, 60, 6):
        del board[f"s{i}"]
    # The server holds everything once a second Python client sees it all.
    probe = await client_factory(server.url, "late")
    await probe.wait_for(lambda: shapes(probe) == shapes(writer))
    expected = shapes(writer)
    assert len(expected) == 50
    await writer.close()

    js = await js_peer(server.url, "late")
    synced = await js.wait_synced()
    # The server answers the provider's sync-step-1 before sending its own, so
    # the provider holds the whole board when it reports synced.
    assert synced["value"] is True
    assert synced["shapes"] == len(expected)  # the peer reports a count
    state = await js.wait_until(shapesEqual=expected)
    assert state["shapes"] == expected


# -- awareness -------------------------------------------------------------------


@pytest.mark.parametrize("leave", ["disconnect", "destroy", "kill"])
async def test_js_awareness_reaches_python_and_is_removed(server, client_factory, js_peer, leave):
    room = f"aw-{leave}"
    py, js = await synced_pair(server, client_factory, js_peer, room, auth={"name": "Zoë"})
    # A third member, so removal reaches more than one (the sole-member case
    # has its own test).
    bystander = await client_factory(server.url, room)
    jsid = js.client_id

    # setLocalStateField merges into the state the provider already sent.
    await js.request("awareness-field", field="user", value={"name": "Zoë"})
    await js.request("awareness-field", field="cursor", value={"x": 12.5, "y": -3})
    await py.wait_for(lambda: "cursor" in py.awareness.get(jsid, {}))
    seen = py.awareness[jsid]
    assert seen["status"] == "js"
    assert seen["cursor"] == {"x": 12.5, "y": -3}
    # The server may stamp `user` from the connection's identity (protocol.md
    # §9); the name is the connect name either way.
    assert seen["user"]["name"] == "Zoë"

    # setLocalState replaces the whole state.
    await js.request("awareness", state={"cursor": {"x": 1, "y": 2}, "tool": "pen"})
    await py.wait_for(lambda: py.awareness.get(jsid, {}).get("tool") == "pen")
    assert "status" not in py.awareness[jsid]
    assert py.awareness[jsid]["cursor"] == {"x": 1, "y": 2}

    # And the other way: Python's state reaches the JS provider.
    await py.set_awareness({"cursor": {"x": 7, "y": 8}})
    state = await js.wait_until(awarenessHas=[py.doc.client_id])
    assert state["awareness"][str(py.doc.client_id)]["cursor"] == {"x": 7, "y": 8}
    await bystander.wait_for(lambda: jsid in bystander.awareness)

    if leave == "kill":
        js.proc.kill()  # no DISCONNECT packet: the server sees the socket close
    else:
        await js.request(leave)
    await py.wait_for(lambda: jsid not in py.awareness)
    await bystander.wait_for(lambda: jsid not in bystander.awareness)
    assert py.doc.client_id in bystander.awareness  # only the leaver was removed


async def test_awareness_removal_reaches_the_only_remaining_member(server, client_factory, js_peer):
    """One JS and one Python client: when the JS one leaves, the Python one
    must lose its cursor (protocol.md §3.1 "no ghost cursors")."""
    py, js = await synced_pair(server, client_factory, js_peer, "aw-pair")
    jsid = js.client_id
    await py.set_awareness({"cursor": {"x": 1, "y": 1}})
    await js.wait_until(awarenessHas=[py.doc.client_id])
    await js.request("disconnect")
    # A probe that joins later sees the server's table without the JS client
    # (so the server has processed the leave), then announces itself: the
    # server relays that to py after any removal it sent py at the leave.
    probe = await client_factory(server.url, "aw-pair")
    await probe.wait_for(lambda: py.doc.client_id in probe.awareness)
    assert jsid not in probe.awareness
    await probe.set_awareness({"cursor": {"x": 2, "y": 2}})
    await py.wait_for(lambda: probe.doc.client_id in py.awareness)
    assert jsid not in py.awareness, "ghost cursor: the removal never reached py"


# -- offline edits -----------------------------------------------------------------


@pytest.mark.parametrize("drop_buffer", [False, True], ids=["buffered", "handshake-only"])
async def test_js_offline_edits_reach_python_on_reconnect(
    server, client_factory, js_peer, drop_buffer
):
    """``handshake-only`` forgets the sync-updates socket.io-client buffered
    while offline, so the edit can only travel as the provider's answer to
    the server's sync-step-1 (protocol.md §4)."""
    py, js = await synced_pair(server, client_factory, js_peer, f"offline-{drop_buffer}")
    board = py.doc.get("shapes", type=Map)
    board["keep"] = Map({"type": "rect", "x": 1.0})
    board["doomed"] = {"type": "rect", "x": 2.0}
    await js.wait_until(shapesHave=["keep", "doomed"])

    mark = len(js.events)
    await js.request("disconnect")
    await js.wait_event(lambda e: e["event"] == "disconnect", since=mark)

    await js.request("set-shape", id="offline-1", shape={"type": "sticky", "text": "offline"})
    await js.request("set-field", id="keep", key="color", value="#00f")
    await js.request("delete-shape", id="doomed")
    board["py-while-js-offline"] = {"type": "text", "text": "hi"}
    assert "offline-1" not in shapes(py)

    mark = len(js.events)
    reply = await js.request("connect", dropBuffer=drop_buffer)
    assert reply["buffered"] > 0, "socket.io-client buffers emits while disconnected"
    await js.wait_synced(since=mark)

    def has_offline_edits() -> bool:
        state = shapes(py)
        return (
            "offline-1" in state
            and "doomed" not in state
            and state.get("keep", {}).get("color") == "#00f"
        )

    await py.wait_for(has_offline_edits)
    state = await js.wait_until(shapesEqual=shapes(py))
    assert state["shapes"]["py-while-js-offline"] == {"type": "text", "text": "hi"}
    assert state["shapes"]["offline-1"] == {"type": "sticky", "text": "offline"}
    assert js.find_events("collab:error") == []


# -- chat --------------------------------------------------------------------------


async def test_chat_send_from_socket_io_client(server, client_factory, js_peer):
    reader = await client_factory(server.url, "chatty", "chat", auth={"name": "Reader"})
    js = await js_peer(server.url, "chatty/chat", auth={"name": "Zoë"})
    await js.wait_synced()

    sent = await js.request(
        "chat-send", payload={"text": "hello from JS", "clientMessageId": "js-msg-1"}
    )
    ack = sent["ack"]
    assert ack["ok"] is True
    assert ack["duplicate"] is False
    assert isinstance(ack["id"], str) and len(ack["id"]) == 20
    assert isinstance(ack["ts"], int | float) and ack["ts"] > 1_600_000_000_000

    state = await js.wait_until(messagesCount=1)
    [message] = state["messages"]
    assert message["id"] == ack["id"]
    assert message["ts"] == ack["ts"]
    assert message["text"] == "hello from JS"
    assert message["authorName"] == "Zoë"
    assert message["role"] == "participant"
    assert message["clientMessageId"] == "js-msg-1"
    assert message["redacted"] is False
    await reader.wait_for(lambda: len(messages(reader)) == 1)
    assert messages(reader) == state["messages"]

    resent = await js.request(
        "chat-send", payload={"text": "hello from JS", "clientMessageId": "js-msg-1"}
    )
    assert resent["ack"]["ok"] is True
    assert resent["ack"]["id"] == ack["id"]
    assert resent["ack"]["duplicate"] is True

    # A later message proves the resend appended nothing in between.
    second = await js.request("chat-send", payload={"text": "second", "clientMessageId": "js-2"})
    assert second["ack"]["duplicate"] is False
    state = await js.wait_until(messagesCount=2)
    await reader.wait_for(lambda: len(messages(reader)) == 2)
    for view in (state["messages"], messages(reader)):
        assert [m["id"] for m in view] == [ack["id"], second["ack"]["id"]]
        assert [m["text"] for m in view] == ["hello from JS", "second"]

    empty = await js.request("chat-send", payload={"text": "   ", "clientMessageId": "js-3"})
    assert empty["ack"]["ok"] is False
    assert empty["ack"]["error"]["code"] == "invalid_chat_message"
    assert js.find_events("collab:error") == []


async def test_js_sync_update_on_chat_is_refused(server, client_factory, js_peer):
    py = await client_factory(server.url, "ro", "chat", auth={"name": "Ann"})
    await py.send_chat("before", client_message_id="m-before")
    await py.wait_for(lambda: len(messages(py)) == 1)

    js = await js_peer(server.url, "ro/chat", auth={"name": "Mallory"})
    await js.wait_synced()
    await js.wait_until(messagesCount=1)

    # A local write to the chat doc: the provider sends it as sync-update.
    forged = {"id": "forged", "authorName": "Admin", "text": "forged", "ts": 0}
    await js.request("push-message", message=forged)
    error = await js.wait_event(lambda e: e["event"] == "collab:error", what="collab:error")
    assert error["payload"]["code"] == "read_only_document"
    assert error["payload"]["event"] == "sync-update"

    # Messages accepted afterwards arrive in order; the forged one never does.
    await py.send_chat("after", client_message_id="m-after")
    await py.wait_for(lambda: len(messages(py)) == 2)
    assert [m["text"] for m in messages(py)] == ["before", "after"]

    # The refusing server cannot undo the JS peer's local write: its doc has
    # diverged (forged + the two real messages).
    state = await js.wait_until(messagesCount=3)
    assert "forged" in [m["text"] for m in state["messages"]]

    # A reconnect answers the server's sync-step-1 with the forged item too;
    # the server ignores that answer on a read-only document.
    mark = len(js.events)
    await js.request("disconnect")
    await js.wait_event(lambda e: e["event"] == "disconnect", since=mark)
    await js.request("connect")
    await js.wait_synced(since=mark)
    await py.send_chat("after reconnect", client_message_id="m-after-2")
    await js.wait_until(messagesCount=4)

    fresh_py = await client_factory(server.url, "ro", "chat")
    fresh_js = await js_peer(server.url, "ro/chat")
    await fresh_js.wait_synced()
    fresh_state = await fresh_js.wait_until(messagesCount=3)
    expected = ["before", "after", "after reconnect"]
    assert [m["text"] for m in messages(fresh_py)] == expected
    assert [m["text"] for m in fresh_state["messages"]] == expected
    assert fresh_js.find_events("collab:error") == []


# -- refused connects ----------------------------------------------------------------


@pytest.mark.parametrize(
    "room",
    ["bad room!", "chat", "a//b", "x" * 129, "r/board:", "r/../s"],
    ids=["punctuation", "reserved", "empty-segment", "too-long", "empty-board-name", "dotdot"],
)
async def test_invalid_room_name_gets_connect_error(server, js_peer, room):
    js = await js_peer(server.url, room)
    error = await js.wait_event(lambda e: e["event"] == "connect_error", what="connect_error")
    assert error["data"]["code"] == "invalid_name", error
    assert isinstance(error["data"]["message"], str) and error["message"]
    state = await js.request("dump")
    # A namespace refusal is final: socket.io-client does not retry it.
    assert state["connected"] is False and state["active"] is False
    assert js.find_events("connect") == [] and js.find_events("synced") == []
