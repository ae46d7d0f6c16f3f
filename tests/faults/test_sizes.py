"""Sizes that fit together (issue 14, findings 4 and 5).

* A paste over the per-update limit is refused with a typed error, and the
  sender's later edits still reach everyone: the Python client resyncs, and
  the handshake's answer, which may be as large as the document cap,
  carries what the live path refused (protocol.md §8.1).
* A board the server accepted can be given back to it whole after the
  server lost it (a memory-store restart): the clients' answers to the new
  server's ``sync-step-1`` are within the frame limit.

Real servers on loopback ports; the restart test runs ``collab serve``
processes. Each test waits on conditions with deadlines.
"""

from __future__ import annotations

from pathlib import Path

from pycrdt import Array, Map

from collab.client import CollabClient
from tests.procs import CollabNode, free_port
from tests.waiting import until

#: 1.1 MB and 1.25 MB of text: over the 1 MiB update limit, the second also
#: over the frame limit of the code before issue 14 (1 MiB + 64 KiB).
PASTE_1_1_MB = 1_100_000
PASTE_1_25_MB = 1_250_000


def items(client: CollabClient) -> list[str]:
    return [str(v) for v in client.doc.get("list", type=Array).to_py() or []]


def codes(client: CollabClient) -> list[str]:
    return [str(e.get("code")) for e in client.errors]


async def paste_then_edit(server, client_factory, size: int) -> None:
    room = f"paste-{size}"
    sender = await client_factory(server.url, room)
    other = await client_factory(server.url, room)
    connects_before = sender.connects
    listing = sender.doc.get("list", type=Array)
    listing.append("x" * size)
    await sender.wait_for(lambda: "message_too_large" in codes(sender), timeout_s=10)
    # Edits that depend on the refused paste (same client, later clocks).
    for i in range(5):
        listing.append(f"edit-{i}")
    expected = ["x" * size, *(f"edit-{i}" for i in range(5))]
    await other.wait_for(lambda: items(other) == expected, timeout_s=15)
    # The sender knows what happened, resynced once, and converged.
    assert sender.refusals and sender.refusals[0].code == "message_too_large"
    assert sender.connects - connects_before <= 2, sender.connects
    assert items(sender) == expected
    # A joiner gets it all from the server.
    joiner = await client_factory(server.url, room)
    assert items(joiner) == expected


async def test_a_paste_over_the_update_limit_is_refused_and_its_sender_catches_up(
    server, client_factory
):
    await paste_then_edit(server, client_factory, PASTE_1_1_MB)


async def test_a_paste_over_the_old_frame_limit_gets_a_code_not_a_reconnect_loop(
    server, client_factory
):
    await paste_then_edit(server, client_factory, PASTE_1_25_MB)


# -- restoring a board the server lost ------------------------------------------------


def shape(i: int) -> dict[str, object]:
    # About 6.7 KB a shape: 200 of them make a board of 1.34 MB. Each point
    # is a float64 (9 bytes encoded): Yjs writes a whole number as a varint
    # and a float32-exact one in 4 bytes, so none may be either.
    return {"type": "pen", "points": [i + k + 0.1 for k in range(740)], "z": i}


async def test_a_board_the_server_lost_is_given_back_whole(tmp_path: Path):
    port = free_port()
    args = ("--store", "memory", "--dev", "--log-level", "info")
    node = CollabNode(tmp_path, *args, node_id="first", port=port)
    await node.start()
    a = CollabClient(node.url, "restore", auth={"name": "Ann"})
    b = CollabClient(node.url, "restore", auth={"name": "Bob"})
    try:
        await a.connect()
        await b.connect()
        board = a.doc.get("shapes", type=Map)
        for i in range(200):
            board[f"s{i}"] = shape(i)  # 200 small updates
        await b.wait_for(lambda: len(b.doc.get("shapes", type=Map)) == 200, timeout_s=15)
        size = len(a.doc.get_update())
        assert 1_300_000 < size < 1_400_000, size

        await node.stop()  # the memory store is gone
        await until(lambda: not a.connected and not b.connected, what="both clients offline")
        fresh = CollabNode(tmp_path, *args, node_id="second", port=port)
        await fresh.start()
        try:
            await a.wait_synced(timeout_s=20)
            await b.wait_synced(timeout_s=20)
            joiner = CollabClient(fresh.url, "restore", auth={"name": "Cy"})
            try:
                await joiner.connect()
                await joiner.wait_for(
                    lambda: len(joiner.doc.get("shapes", type=Map)) == 200, timeout_s=15
                )
                assert joiner.doc.get("shapes", type=Map).to_py() == board.to_py()
            finally:
                await joiner.close()
            # Each client connected once more, not in a loop.
            assert a.connects <= 3 and b.connects <= 3, (a.connects, b.connects)
            assert "message_too_large" not in codes(a) + codes(b)
        finally:
            await fresh.stop()
    finally:
        await a.close(drain_timeout_s=1)
        await b.close(drain_timeout_s=1)
