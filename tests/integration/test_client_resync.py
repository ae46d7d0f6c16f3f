"""The Python client after a refused update (issue 14, finding 4).

A refused ``sync-update`` is kept in ``refusals``; where the handshake can
deliver it, the client connects again, and its answer to the server's
``sync-step-1`` carries what the live path refused (protocol.md §4, §8).
It never does so in a loop: a refused handshake answer stops it. The paste
over the per-update limit itself is in tests/faults/test_sizes.py.

A real server in this process (``tests/conftest.py: start_server``).
"""

from __future__ import annotations

from pycrdt import Array, Map

from collab.client import Backoff
from tests.boards import shapes
from tests.waiting import until


def texts(client) -> dict[str, str]:
    return {k: str(v) for k, v in (client.doc.get("texts", type=Map).to_py() or {}).items()}


async def test_updates_refused_for_their_rate_arrive_after_one_resync(
    server_factory, client_factory
):
    srv = await server_factory(update_rate_per_s=5, update_burst=10, max_refusals_per_min=1000)
    sender = await client_factory(srv.url, "rate")
    other = await client_factory(srv.url, "rate")
    board = sender.doc.get("shapes", type=Map)
    for i in range(50):  # 50 updates at once: 10 fit the burst
        board[f"s{i}"] = {"type": "rect", "x": float(i)}
    await other.wait_for(lambda: len(shapes(other)) == 50, timeout_s=15)
    assert {(r.code, r.event) for r in sender.refusals} == {("rate_limited", "sync-update")}
    assert sender.resync_refused is None
    assert 2 <= sender.connects <= 3, sender.connects
    assert shapes(sender) == shapes(other)


async def test_an_update_refused_for_a_full_board_is_kept_without_a_resync(
    server_factory, client_factory
):
    """The handshake would be refused too: the refusal is kept, the client
    stays connected, and nothing is sent again (protocol.md §8.3)."""
    srv = await server_factory(max_board_bytes=64 << 10)
    sender = await client_factory(srv.url, "full")
    other = await client_factory(srv.url, "full")
    notes = sender.doc.get("texts", type=Map)
    i = 0
    while not sender.refusals:  # notes of 9 KB until the board is full
        notes[f"t{i}"] = "z" * 9000
        await until(lambda n=f"t{i}": n in texts(other) or bool(sender.refusals))
        i += 1
    assert [(r.code, r.event) for r in sender.refusals] == [("document_too_large", "sync-update")]
    other.doc.get("shapes", type=Map)["marker"] = {"type": "rect"}
    await sender.wait_for(lambda: "marker" in shapes(sender))
    assert sender.connected and sender.connects == 1
    assert f"t{i - 1}" not in texts(other)


async def test_a_refused_handshake_answer_stops_resyncing(server_factory, client_factory):
    """Over the per-update limit and over the board's: the resync's answer is
    refused too. The client keeps the refusals, stays connected, and does not
    connect again for later refusals."""
    srv = await server_factory(max_message_bytes=64 << 10, max_board_bytes=64 << 10)
    sender = await client_factory(srv.url, "cap", backoff=Backoff(base_s=0.01, max_s=0.05))
    other = await client_factory(srv.url, "cap")
    listing = sender.doc.get("list", type=Array)
    listing.append("x" * 100_000)
    await sender.wait_for(lambda: sender.resync_refused is not None, timeout_s=10)
    first, second = sender.refusals
    assert (first.code, first.event) == ("message_too_large", "sync-update")
    assert second.event == "sync-step-1" and second is sender.resync_refused
    assert second.code in ("message_too_large", "document_too_large")
    assert sender.connects == 2

    listing.append("y" * 100_000)  # refused again: kept, not acted on
    await sender.wait_for(lambda: len(sender.refusals) == 3, timeout_s=10)
    other.doc.get("shapes", type=Map)["marker"] = {"type": "rect"}
    await sender.wait_for(lambda: "marker" in shapes(sender), timeout_s=10)
    assert sender.connected and sender.connects == 2
    assert "x" * 100_000 not in (other.doc.get("list", type=Array).to_py() or [])


async def test_a_refused_update_sent_with_emit_raw_does_not_resync(server_factory, client_factory):
    srv = await server_factory(max_message_bytes=4096)
    sender = await client_factory(srv.url, "raw")
    other = await client_factory(srv.url, "raw")
    await sender.emit_raw("sync-update", b"\x00" * 5000)
    await sender.wait_for(lambda: len(sender.refusals) == 1)
    sender.doc.get("shapes", type=Map)["after"] = {"type": "rect"}
    await other.wait_for(lambda: "after" in shapes(other))
    assert sender.connects == 1
