"""Bad input: each gets a typed error to the sender only; nothing is applied,
stored or relayed; the connection, its room and other rooms keep working."""

from __future__ import annotations

import asyncio

import pytest
from pycrdt import Array, Doc, Map

from collab.client import CollabClient, CollabClientError
from crdt.awareness import AwarenessEntry, encode_awareness
from crdt.lib0 import Encoder
from tests.boards import shapes
from tests.unit.test_document import POISON


def a_real_update() -> bytes:
    doc = Doc()
    doc.get("shapes", type=Map)["x"] = {"type": "rect", "x": 1.0}
    return bytes(doc.get_update())


async def wait_error(client: CollabClient, count: int = 1) -> dict:
    await client.wait_for(lambda: len(client.errors) >= count, timeout_s=5)
    return client.errors[count - 1]


async def assert_still_works(sender: CollabClient, peer: CollabClient, key: str) -> None:
    """The sender's connection and room still sync after the refusal."""
    sender.doc.get("shapes", type=Map)[key] = {"type": "rect"}
    await peer.wait_for(lambda: key in shapes(peer), timeout_s=5)


@pytest.fixture
async def trio(server, client_factory):
    """A sender and a peer in one room, and a bystander in another room."""
    sender = await client_factory(server.url, "bad")
    peer = await client_factory(server.url, "bad")
    other = await client_factory(server.url, "elsewhere")
    return sender, peer, other


def gc_struct_at(clock: int) -> bytes:
    enc = Encoder()
    for value in (1, 1, 5, clock):  # one client block, one struct, client 5, start clock
        enc.write_var_uint(value)
    enc.write_uint8(0)  # GC struct
    enc.write_var_uint(1)  # of length 1
    enc.write_var_uint(0)  # empty delete set
    return enc.to_bytes()


BAD_UPDATES = {
    "text on a binary event": ("hello", "invalid_payload"),
    "object on a binary event": ({"a": 1}, "invalid_payload"),
    "truncated update": (a_real_update()[:-5], "malformed_update"),
    "garbage": (b"\xff\xff\xff\xff\x0f\x01", "malformed_update"),
    "trailing bytes": (a_real_update() + b"\x00", "malformed_update"),
    # A well-formed GC struct whose clock range starts at 2**31: past any honest clock.
    "clock overflow": (gc_struct_at(2**31), "malformed_update"),
    # Makes yrs panic halfway when it reaches it (see test_document.py).
    "engine panic": (POISON, "malformed_update"),
}


@pytest.mark.parametrize("name", list(BAD_UPDATES))
async def test_bad_sync_update_is_refused(trio, server, name):
    sender, peer, other = trio
    payload, code = BAD_UPDATES[name]
    before = server.app.registry.rooms["bad"].docs["board"].engine.full_state()
    await sender.emit_raw("sync-update", payload)
    error = await wait_error(sender)
    assert error["code"] == code
    assert error["event"] == "sync-update"
    assert isinstance(error["message"], str) and error["message"]
    assert server.app.registry.rooms["bad"].docs["board"].engine.full_state() == before
    assert server.app.registry.rooms["bad"].docs["board"].pending == []
    assert peer.errors == [] and other.errors == []
    await assert_still_works(sender, peer, f"after-{name}")
    assert shapes(other) == {}


async def test_wrong_argument_count(trio):
    sender, peer, _ = trio
    await sender.emit_raw("sync-update", "a", "b")
    assert (await wait_error(sender))["code"] == "invalid_payload"
    # Two binary arguments are two attachments: past what any collab event
    # uses, refused from the packet header (protocol.md §8).
    await sender.emit_raw("sync-update", b"\x00\x00", b"\x00\x00")
    assert (await wait_error(sender, 2))["code"] == "invalid_packet"
    await assert_still_works(sender, peer, "after-two-args")


async def test_oversized_payload(server_factory, client_factory):
    srv = await server_factory(max_message_bytes=4096)
    sender = await client_factory(srv.url, "big")
    peer = await client_factory(srv.url, "big")
    doc = Doc()
    doc.get("shapes", type=Map)["huge"] = {"type": "text", "text": "x" * 5000}
    await sender.emit_raw("sync-update", bytes(doc.get_update()))
    error = await wait_error(sender)
    assert error["code"] == "message_too_large"
    assert "huge" not in shapes(peer)
    await assert_still_works(sender, peer, "after-big")
    assert "huge" not in shapes(peer)


async def test_sync_update_to_chat_and_meta_refused(server, client_factory):
    for doc_name in ("chat", "meta"):
        writer = await client_factory(server.url, "ro", doc_name)
        reader = await client_factory(server.url, "ro", doc_name)
        doc = Doc()
        doc.get("messages", type=Map)["forged"] = "x"
        await writer.emit_raw("sync-update", bytes(doc.get_update()))
        error = await wait_error(writer)
        assert error["code"] == "read_only_document"
        registry = server.app.registry
        assert registry.rooms["ro"].docs[doc_name].engine.read_map("messages") == {}
        assert reader.errors == []


async def test_local_write_to_chat_is_not_relayed(server, client_factory):
    """A client that edits its chat replica locally gets an error; peers never see it."""
    writer = await client_factory(server.url, "ro2", "chat")
    reader = await client_factory(server.url, "ro2", "chat")
    writer.doc.get("notes", type=Map)["forged"] = "x"
    assert (await wait_error(writer))["code"] == "read_only_document"
    await writer.send_chat("a real message")
    # The chat message sent after the forged write arrives; the forged write never does.
    await reader.wait_for(lambda: len(reader.doc.get("messages", type=Array)) == 1)
    assert reader.doc.get("notes", type=Map).to_py() in ({}, None)
    assert server.app.registry.rooms["ro2"].docs["chat"].engine.read_map("notes") == {}


async def test_awareness_for_foreign_client_id(trio):
    sender, peer, _ = trio
    await peer.set_awareness({"cursor": [1, 2]})
    await sender.wait_for(lambda: peer.doc.client_id in sender.awareness)
    forged = encode_awareness([AwarenessEntry(peer.doc.client_id, 99, '{"cursor":[9,9]}')])
    await sender.emit_raw("awareness-update", forged)
    error = await wait_error(sender)
    assert error["code"] == "awareness_client_not_owned"
    await sender.set_awareness({"cursor": [5, 5]})
    await peer.wait_for(lambda: sender.doc.client_id in peer.awareness)
    assert sender.awareness[peer.doc.client_id]["cursor"] == [1, 2]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x05\x01", "malformed_awareness"),
        (encode_awareness([AwarenessEntry(1, 1, "[1,2]")]), "malformed_awareness"),
        ("text", "invalid_payload"),
    ],
)
async def test_malformed_awareness(trio, payload, code):
    sender, peer, _ = trio
    await sender.emit_raw("awareness-update", payload)
    assert (await wait_error(sender))["code"] == code
    await assert_still_works(sender, peer, f"after-awareness-{code}")


@pytest.mark.parametrize(
    "namespace_room",
    ["bad room", "a//b", "x" * 200, "ü", "room/meta/x", "chat", "../etc"],
)
async def test_invalid_room_name_refused(server, namespace_room):
    client = CollabClient(server.url, "placeholder", auth={"name": "x"}, reconnection=False)
    client.namespace = "/yjs|" + namespace_room
    client._sio.handlers[client.namespace] = client._sio.handlers.pop("/yjs|placeholder")
    with pytest.raises(CollabClientError) as info:
        await client.connect(timeout_s=5)
    assert info.value.code == "invalid_name"
    assert server.app.registry.rooms == {}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"text": 42, "clientMessageId": "m1"}, "invalid_chat_message"),
        ({"text": "", "clientMessageId": "m1"}, "invalid_chat_message"),
        ({"text": "   ", "clientMessageId": "m1"}, "invalid_chat_message"),
        ({"text": "x" * 4001, "clientMessageId": "m1"}, "invalid_chat_message"),
        ({"text": "hi", "clientMessageId": "has space"}, "invalid_chat_message"),
        ({"text": "hi"}, "invalid_chat_message"),
        ("just a string", "invalid_payload"),
    ],
)
async def test_bad_chat_send(server, client_factory, payload, code):
    sender = await client_factory(server.url, "chatty", "chat")
    reader = await client_factory(server.url, "chatty", "chat")
    with pytest.raises(CollabClientError) as info:
        await sender.call("chat:send", payload)
    assert info.value.code == code
    assert server.app.registry.chat("chatty").messages() == []
    ack = await sender.send_chat("still works")
    assert ack["ok"] is True
    await reader.wait_for(lambda: len(reader.doc.get("messages", type=Array)) == 1)


async def test_unknown_event(trio):
    sender, peer, _ = trio
    with pytest.raises(CollabClientError) as info:
        await sender.call("no-such-event", {"x": 1})
    assert info.value.code == "unknown_event"
    await assert_still_works(sender, peer, "after-unknown")


async def test_bad_state_vector_answers_empty_update(trio):
    sender, peer, _ = trio
    answer = await sender._sio.call(
        "sync-step-1", b"\xff\xff", namespace=sender.namespace, timeout=5
    )
    assert answer == b"\x00\x00"
    assert (await wait_error(sender))["code"] == "malformed_update"
    await assert_still_works(sender, peer, "after-bad-sv")


async def test_flood_of_bad_input_keeps_server_up(server_factory, client_factory):
    # Refusals past --max-refusals-per-min close the connection
    # (tests/hostile/test_rates.py); here every one is answered.
    server = await server_factory(max_refusals_per_min=1000)
    sender = await client_factory(server.url, "bad")
    peer = await client_factory(server.url, "bad")
    other = await client_factory(server.url, "elsewhere")
    await asyncio.gather(*(sender.emit_raw("sync-update", b"\x01\x02\x03") for _ in range(200)))
    await sender.wait_for(lambda: len(sender.errors) == 200, timeout_s=10)
    await assert_still_works(sender, peer, "after-flood")
    await assert_still_works(other, other, "other-room")
