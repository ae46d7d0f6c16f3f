"""Issue 13, finding 7: redaction keeps its promise on one node.

After ``mod:redact`` the text was still in the document's in-memory recovery
copy (the checkpoint and the updates since); a board shape could not be
redacted at all; a shape a facilitator deleted stayed on disk until 500
updates triggered a compaction. Now a redaction (of a message or a shape)
leaves no copy in memory or in the SQLite files, and what a facilitator
deletes leaves the disk at the next flush.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pycrdt import Map

from collab.client import CollabClientError
from rooms.document import Document
from tests.conftest import ADMIN_KEY, SECRET, mint
from tests.waiting import until

MARKER = "PRIVATE-DISCLOSURE-7313"


def in_memory(doc: Document) -> bool:
    """Whether any copy the document keeps in memory holds the marker."""
    copies = [doc.engine.full_state(), doc._checkpoint, *doc._since, *doc.pending]
    return any(MARKER.encode() in bytes(copy) for copy in copies)


def on_disk(data: Path) -> list[str]:
    """The files under ``data`` that hold the marker."""
    return [f.name for f in data.rglob("*") if f.is_file() and MARKER.encode() in f.read_bytes()]


@pytest.fixture
async def room(server_factory, client_factory, tmp_path):
    data = tmp_path / "data"
    srv = await server_factory(
        dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, store="sqlite", data_dir=data
    )
    fac_token = mint("g", role="facilitator", name="F", sub="fac")
    par_token = mint("g", name="P", sub="par")
    fac = await client_factory(srv.url, "g", auth={"token": fac_token})
    fac_chat = await client_factory(srv.url, "g", "chat", auth={"token": fac_token})
    par = await client_factory(srv.url, "g", auth={"token": par_token})
    par_chat = await client_factory(srv.url, "g", "chat", auth={"token": par_token})
    return srv, data, fac, fac_chat, par, par_chat


async def test_a_redacted_message_leaves_no_copy_in_memory(room) -> None:
    srv, data, _, fac_chat, _, par_chat = room
    ack = await par_chat.send_chat(MARKER)
    chat = srv.registry.rooms["g"].docs["chat"]
    assert in_memory(chat), "the recovery copy holds the message before"
    await fac_chat.call("mod:redact", {"messageId": ack["id"]})
    assert not in_memory(chat)
    assert on_disk(data) == []
    # The copy kept for idempotent resends forgets the text too.
    resent = await par_chat.send_chat(MARKER, client_message_id="resend-me")
    chat_log = srv.registry.chat("g")
    again = await par_chat.send_chat("x", client_message_id="resend-me")
    assert again["id"] == resent["id"]
    await fac_chat.call("mod:redact", {"messageId": resent["id"]})
    assert all(MARKER not in m.text for m in chat_log._by_client_id.values())
    assert not in_memory(chat)


async def test_a_facilitator_redacts_a_shape_everywhere(room, client_factory) -> None:
    srv, data, fac, _, par, _ = room
    par.doc.get("shapes", type=Map)["note"] = {"type": "sticky", "text": MARKER}
    par.doc.get("shapes", type=Map)["other"] = {"type": "rect"}
    board = srv.registry.rooms["g"].docs["board"]
    await until(lambda: "other" in board.engine.read_map("shapes"), what="shapes stored")
    await srv.registry.flush_all()
    assert on_disk(data), "the text is on disk before"
    # A participant may not.
    with pytest.raises(CollabClientError) as refused:
        await par.call("mod:redact-shape", {"shapeId": "note"})
    assert refused.value.code == "permission_denied"
    ack = await fac.call("mod:redact-shape", {"shapeId": "note"})
    assert ack["ok"]
    for client in (fac, par):
        await client.wait_for(lambda c=client: "note" not in c.doc.get("shapes", type=Map))
    assert "other" in board.engine.read_map("shapes")
    assert not in_memory(board)
    assert on_disk(data) == []
    late = await client_factory(srv.url, "g", auth={"token": mint("g", sub="late")})
    assert MARKER.encode() not in bytes(late.doc.get_update())
    with pytest.raises(CollabClientError) as missing:
        await fac.call("mod:redact-shape", {"shapeId": "note"})
    assert missing.value.code == "not_found"
    with pytest.raises(CollabClientError) as bad:
        await fac.call("mod:redact-shape", {"shapeId": "other", "doc": "chat"})
    assert bad.value.code == "invalid_payload"
    await srv.registry.flush_audit()
    records = await srv.registry.store.read_audit("g")
    assert any(r.action == "redact" and r.detail == 'board shape "note"' for r in records)


async def test_what_a_facilitator_deletes_leaves_the_disk_at_the_next_flush(room) -> None:
    srv, data, fac, _, par, _ = room
    par.doc.get("shapes", type=Map)["note"] = {"type": "sticky", "text": MARKER}
    board = srv.registry.rooms["g"].docs["board"]
    await until(lambda: "note" in board.engine.read_map("shapes"), what="the note stored")
    await srv.registry.flush_all()
    assert on_disk(data)
    await fac.wait_for(lambda: "note" in fac.doc.get("shapes", type=Map))
    del fac.doc.get("shapes", type=Map)["note"]  # an ordinary delete, by a facilitator
    await until(lambda: "note" not in board.engine.read_map("shapes"), what="the delete applied")
    await srv.registry.flush_all()  # the next flush, not 500 updates later
    assert on_disk(data) == []
    assert not in_memory(board)


async def test_a_participants_delete_leaves_the_recovery_copy_at_the_next_flush(room) -> None:
    srv, _, _, _, par, _ = room
    par.doc.get("shapes", type=Map)["note"] = {"type": "sticky", "text": MARKER}
    board = srv.registry.rooms["g"].docs["board"]
    await until(lambda: "note" in board.engine.read_map("shapes"), what="the note stored")
    del par.doc.get("shapes", type=Map)["note"]
    await until(lambda: "note" not in board.engine.read_map("shapes"), what="the delete applied")
    await srv.registry.flush_all()
    assert not in_memory(board)
