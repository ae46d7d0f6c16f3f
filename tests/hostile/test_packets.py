"""Finding 2 of issue 12: binary attachments after CONNECT.

A Socket.IO header may announce any number of binary attachments, and
python-socketio buffers every frame that follows until it has them all;
its placeholders index the attachments as they come. collab's events carry
one binary argument, so anything else is refused from the header
(``invalid_packet``), before a single frame is buffered, by any token holder,
observers included; a client that keeps at it is disconnected."""

from __future__ import annotations

import contextlib
import json

import pytest
from pycrdt import Map

from tests.boards import DrawingDoc, shapes
from tests.conftest import SECRET, mint
from tests.hostile.resources import open_fds, rss_bytes
from tests.rawsio import RawSocket
from tests.waiting import until

NS = "/yjs|R"


async def errors_until(raw: RawSocket, count: int) -> list[dict]:
    """The next ``count`` collab:error payloads the raw socket receives."""
    found: list[dict] = []
    prefix = f'42{NS},["collab:error",'
    while len(found) < count:
        msg = await raw.ws.receive(timeout=10)
        if isinstance(msg.data, str) and msg.data.startswith(prefix):
            found.append(json.loads(msg.data[len(f"42{NS},") :])[1])
    return found


@pytest.fixture
async def board_room(server_factory, client_factory):
    """A token server; a participant watching room R's board."""
    srv = await server_factory(dev=False, jwt_secret=SECRET)
    watcher = await client_factory(srv.url, "R", auth={"token": mint("R", sub="u-watch")})
    return srv, watcher


async def raw_member(url: str, role: str = "participant") -> RawSocket:
    raw = await RawSocket.open(url)
    auth = {"token": mint("R", role, name="Hostile", sub="u-hostile")}
    assert (await raw.connect(NS, auth))["connected"]
    return raw


def update_bytes() -> bytes:
    return DrawingDoc().put("bad", {"type": "rect"})


BAD_HEADERS = {
    "a million attachments": '451000000-{ns},["sync-update",{{"_placeholder":true,"num":0}}]',
    "placeholder -1": '451-{ns},["sync-update",{{"_placeholder":true,"num":-1}}]',
    "placeholder past the end": '451-{ns},["sync-update",{{"_placeholder":true,"num":1}}]',
    "placeholder as a string": '451-{ns},["sync-update",{{"_placeholder":true,"num":"0"}}]',
    "placeholder as a float": '451-{ns},["sync-update",{{"_placeholder":true,"num":0.0}}]',
    "placeholder as a bool": '451-{ns},["sync-update",{{"_placeholder":true,"num":false}}]',
    "no attachment, a placeholder": '450-{ns},["sync-update",{{"_placeholder":true,"num":0}}]',
    "two attachments": (
        '452-{ns},["sync-update",{{"_placeholder":true,"num":0}},{{"_placeholder":true,"num":1}}]'
    ),
    "attachments on a text event": '421-{ns},["sync-update","x"]',
}


@pytest.mark.parametrize("role", ["participant", "observer"])
@pytest.mark.parametrize("kind", list(BAD_HEADERS))
async def test_a_bad_attachment_header_is_refused_before_anything_is_buffered(
    board_room, kind, role
) -> None:
    srv, watcher = board_room
    raw = await raw_member(srv.url, role)
    board = srv.registry.rooms["R"].docs["board"]
    before = board.engine.full_state()
    try:
        await raw.ws.send_str(BAD_HEADERS[kind].format(ns=NS))
        (error,) = await errors_until(raw, 1)
        assert error["code"] == "invalid_packet"
        assert not srv.app.sio._binary_packet, "nothing is waiting for attachments"
        # The frames that follow are attachments nobody announced: refused,
        # never applied, never buffered.
        for _ in range(3):
            await raw.ws.send_bytes(update_bytes())
        assert [e["code"] for e in await errors_until(raw, 3)] == ["invalid_packet"] * 3
        assert not srv.app.sio._binary_packet
        assert board.engine.full_state() == before
        # An honest event on the same connection still works (participants).
        if role == "participant":
            await raw.send_binary_event(NS, "sync-update", DrawingDoc().put("ok", {"type": "r"}))
            await watcher.wait_for(lambda: "ok" in shapes(watcher))
    finally:
        await raw.close()


async def test_a_client_that_keeps_sending_bad_packets_is_disconnected(
    server_factory, client_factory
) -> None:
    """The finding: 100 × 1 MiB frames after a million-attachment header were
    all kept (RSS 115 → 218 MB). Now each is refused, and the refusals run out."""
    srv = await server_factory(dev=False, jwt_secret=SECRET, max_refusals_per_min=20)
    other = await client_factory(srv.url, "S", auth={"token": mint("S", sub="u-other")})
    fds, rss = open_fds(), rss_bytes()
    raw = await raw_member(srv.url, "observer")
    try:
        await raw.ws.send_str(BAD_HEADERS["a million attachments"].format(ns=NS))
        frame = b"\x00" * (1 << 20)
        sent = 0
        with contextlib.suppress(ConnectionError):  # the server hung up on us
            for sent in range(1, 101):  # noqa: B007 - counted for the assertion
                await raw.ws.send_bytes(frame)
        await raw.until_closed()
        assert sent < 100, "the server closed the connection before the 100th frame"
        await until(lambda: len(srv.app.sessions.sessions) == 1, what="only the bystander left")
        assert not srv.app.sio._binary_packet
        # Nothing was kept: buffering the frames would have cost 20+ MiB.
        assert rss_bytes() - rss < 16 << 20
        # The other room never noticed.
        other.doc.get("shapes", type=Map)["fine"] = {"type": "rect"}
        stored = srv.registry.rooms["S"].docs["board"]
        await until(lambda: "fine" in stored.engine.read_map("shapes"), what="other room")
    finally:
        await raw.close()
    await until(lambda: open_fds() <= fds, what="descriptors back to their baseline")
