"""Findings 3 and 4 of issue 12: what a client can make a document hold.

* Size: a document at its limit refuses what would grow it
  (``document_too_large``), tells the room (``room:state`` ``full``), still
  takes deletions, and takes additions again once there is room.
* Updates waiting for dependencies that never arrive (clocks that start
  past what the server has, origins it never saw) are bounded in count and
  bytes (``pending_limit``), and integrate once what they wait for arrives.
"""

from __future__ import annotations

import aiohttp
import pytest
from pycrdt import Doc, Map, Text

from collab.client import CollabClient, CollabClientError
from tests.boards import shapes
from tests.waiting import until

KIB = 1 << 10


def codes(client: CollabClient) -> list[str]:
    return [e["code"] for e in client.errors]


def blob(i: int, size: int) -> bytes:
    """An update adding one shape with ``size`` bytes of text (incompressible)."""
    doc = Doc(client_id=1000 + i)
    doc.get("shapes", type=Map)[f"s{i}"] = {"type": "text", "text": f"{i:08d}" * (size // 8)}
    return bytes(doc.get_update())


async def test_a_full_board_refuses_growth_keeps_deletions_and_recovers(
    server_factory, client_factory
) -> None:
    limit = 256 * KIB
    srv = await server_factory(max_board_bytes=limit)
    writer = await client_factory(srv.url, "full")
    watcher = await client_factory(srv.url, "full")
    bystander = await client_factory(srv.url, "other")
    board = srv.registry.rooms["full"].docs["board"]
    # Fill it: 60 KiB shapes until the server says no.
    sent = 0
    while "document_too_large" not in codes(writer):
        writer.doc.get("shapes", type=Map)[f"s{sent}"] = {"type": "text", "text": "x" * 60 * KIB}
        sent += 1
        await until(
            lambda n=sent: len(shapes(watcher)) == n or "document_too_large" in codes(writer),
            timeout_s=10,
            what="the shape relayed or refused",
        )
        assert sent < 10, "the limit never came"
    accepted = sent - 1
    assert len(shapes(watcher)) == accepted >= 3
    assert len(board.engine.full_state()) <= limit
    assert board.full
    await until(lambda: watcher.room_state.get("full") == ["board"], what="the room told")
    # A joiner downloads what was accepted, no more.
    joiner = await client_factory(srv.url, "full")
    assert len(shapes(joiner)) == accepted
    # Deletions go in while full, and make room again.
    for key in list(shapes(watcher))[:2]:
        del writer.doc.get("shapes", type=Map)[key]
    await until(lambda: len(shapes(watcher)) == accepted - 2, what="deletions relayed")
    await until(lambda: watcher.room_state.get("full") == [], what="the room told it has room")
    writer.doc.get("shapes", type=Map)["small"] = {"type": "rect"}
    await until(lambda: "small" in shapes(watcher), what="an addition accepted again")
    # The other room never noticed.
    bystander.doc.get("shapes", type=Map)["fine"] = {"type": "rect"}
    other = srv.registry.rooms["other"].docs["board"]
    await until(lambda: "fine" in other.engine.read_map("shapes"), what="the other room")
    assert bystander.errors == [] and watcher.errors == []


async def test_forty_megabyte_updates_cannot_grow_a_board_past_its_limit(
    server_factory, client_factory
) -> None:
    """The finding: 40 sync-updates of just under 1 MiB were all accepted."""
    srv = await server_factory(update_bytes_burst=64 << 20)  # the size limit, not the rate
    sender = await client_factory(srv.url, "big")
    for i in range(40):
        await sender.emit_raw("sync-update", blob(i, (1 << 20) - 4 * KIB))
    await sender.wait_for(lambda: len(sender.errors) >= 40 - 16, timeout_s=30)
    assert set(codes(sender)) == {"document_too_large"}
    board = srv.registry.rooms["big"].docs["board"]
    assert len(board.engine.full_state()) <= 16 << 20
    assert sum(len(u) for u in board.pending) <= 16 << 20, "nothing refused is kept to store"


async def test_a_full_chat_refuses_messages(server_factory, client_factory) -> None:
    limit = 64 * KIB
    srv = await server_factory(max_chat_bytes=limit, chat_burst=1000, chat_rate_per_s=1000)
    chat = await client_factory(srv.url, "chatty", "chat")
    with pytest.raises(CollabClientError) as refused:
        for i in range(40):
            await chat.send_chat("y" * 4000, client_message_id=f"m{i}")
    assert refused.value.code == "document_too_large"
    assert i >= 10
    stored = srv.registry.rooms["chatty"].docs["chat"]
    assert len(stored.engine.full_state()) <= limit + 5000
    assert len(stored.engine.read_array("messages")) == i


def chain(count: int) -> list[bytes]:
    """``count`` updates of one client, each after the one before."""
    doc = Doc(client_id=4242)
    text = doc.get("notes", type=Text)
    updates = []
    for i in range(count):
        before = doc.get_state()
        text += f"line {i} " + "z" * 100
        updates.append(bytes(doc.get_update(before)))
    return updates


async def test_updates_past_a_gap_are_bounded_and_integrate_later(
    server_factory, client_factory
) -> None:
    srv = await server_factory(max_pending_updates=10, max_pending_bytes=1 << 20)
    sender = await client_factory(srv.url, "gaps")
    peer = await client_factory(srv.url, "gaps")
    board = srv.registry.rooms["gaps"].docs["board"]
    updates = chain(30)
    for update in updates[1:]:  # never the first: every one waits for it
        await sender.emit_raw("sync-update", update)
    await sender.wait_for(lambda: len(sender.errors) >= 19, timeout_s=10)
    assert set(codes(sender)) == {"pending_limit"}
    assert board.waiting_count == 10
    assert 0 < board.waiting_bytes <= 10 * 200
    # Visible to operators, where the encoded size does not show them.
    async with aiohttp.ClientSession() as http:
        key = srv.app.security.dev_admin_key
        answer = await http.get(
            f"{srv.url}/api/rooms/gaps", headers={"Authorization": f"Bearer {key}"}
        )
        info = await answer.json()
    assert info["pendingBytes"]["board"] == board.waiting_bytes
    # What they wait for arrives: they integrate, and the count goes back to 0.
    await sender.emit_raw("sync-update", updates[0])
    await until(lambda: board.waiting_count == 0, what="waiting updates integrated")
    assert board.waiting_bytes == 0
    replica = Doc()
    replica.apply_update(board.engine.full_state())
    text = str(replica.get("notes", type=Text))
    assert text.startswith("line 0 ") and "line 10 " in text, "the 10 that waited are in"
    # The refused ones are what the sender resends on reconnect; the peer
    # sees what the server holds.
    assert peer.errors == []


async def test_updates_with_missing_origins_are_bounded(server_factory, client_factory) -> None:
    srv = await server_factory(max_pending_updates=5)
    sender = await client_factory(srv.url, "origins")
    board = srv.registry.rooms["origins"].docs["board"]
    base = Doc(client_id=7)
    base.get("notes", type=Text).insert(0, "hello")
    for i in range(8):
        # Another client inserts after text the server never saw: its
        # clocks start at 0, but its origin is missing.
        other = Doc(client_id=100 + i)
        other.apply_update(base.get_update())
        sv = other.get_state()
        other.get("notes", type=Text).insert(3, "!")
        await sender.emit_raw("sync-update", bytes(other.get_update(sv)))
    await sender.wait_for(lambda: len(sender.errors) >= 3, timeout_s=10)
    assert set(codes(sender)) == {"pending_limit"}
    assert board.waiting_count == 5
    await sender.emit_raw("sync-update", bytes(base.get_update()))
    await until(lambda: board.waiting_count == 0, what="origins arrived")


async def test_deletions_of_unknown_items_are_bounded_too(server_factory, client_factory) -> None:
    """A delete-only update naming items the server never saw waits in the
    engine's pending delete set: it counts against the same bound."""
    from crdt.lib0 import Encoder

    srv = await server_factory(max_pending_updates=4)
    sender = await client_factory(srv.url, "deletes")
    board = srv.registry.rooms["deletes"].docs["board"]

    def delete_only(client: int) -> bytes:
        enc = Encoder()
        enc.write_var_uint(0)  # no structs
        enc.write_var_uint(1)  # one client in the delete set
        enc.write_var_uint(client)
        enc.write_var_uint(1)  # one range
        enc.write_var_uint(0)  # from clock 0
        enc.write_var_uint(5)  # 5 long
        return enc.to_bytes()

    for i in range(10):
        await sender.emit_raw("sync-update", delete_only(5000 + i))
    await sender.wait_for(lambda: len(sender.errors) >= 6, timeout_s=10)
    assert set(codes(sender)) == {"pending_limit"}
    assert board.waiting_count == 4
