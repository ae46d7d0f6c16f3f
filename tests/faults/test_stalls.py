"""Heavy but valid updates, and whole boards given back (issue 14, findings 4 to 6).

* An update of more structs than ``max_update_structs`` is refused with
  ``message_too_large`` (counted as ``update_structs``), changes nothing,
  and its sender's session goes on; one at the limit is applied.
* The answer to the server's ``sync-step-1`` may be as large as the
  document: a board of more than ``max_message_bytes`` and more structs
  than ``max_update_structs`` is applied whole (in parts, each relayed),
  and a fresh joiner gets all of it. Past the document's limit it is
  refused with a code; from a connection that may not write, ignored.
* Other rooms are served while it is applied: their updates are relayed
  between its parts.

Behaviour only: how long other rooms wait is measured by ``python -m bench
stalls`` (BENCHMARKS.md). Real servers on loopback ports (the in-process
fixtures of tests/conftest.py) and raw Socket.IO clients over WebSockets,
so each test says exactly what goes on the wire.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pycrdt import Doc, Map

from bench.stalls import heavy_updates, shared_board
from crdt.updates import check_update
from rooms.limits import Limits
from tests.conftest import SECRET, mint
from tests.rawsio import RawSocket
from tests.waiting import until

EMPTY = b"\x00\x00"


@dataclass
class Member:
    """A raw Socket.IO client on one WebSocket, possibly in several
    namespaces, recording what it receives in order: each binary event
    and binary ack as (namespace, event, payload), each ``collab:error``
    as (namespace, "collab:error", payload). It answers the server's
    ``sync-step-1`` with ``answers[namespace]`` (an empty update if none)."""

    raw: RawSocket
    answers: dict[str, bytes] = field(default_factory=dict)
    received: list[tuple[str, str, Any]] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    _acks: dict[tuple[str, int], asyncio.Future[bytes]] = field(default_factory=dict)
    _next_ack: int = 1
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, url: str, *namespaces: str, token: str | None = None, **answers: bytes):
        """Connect to each namespace (``answers`` by namespace, keyed
        without the leading ``/yjs|``)."""
        member = cls(
            await RawSocket.open(url, max_msg_size=64 << 20),
            {f"/yjs|{room}": answer for room, answer in answers.items()},
        )
        for namespace in namespaces:
            reply = await member.raw.connect(namespace, {"token": token} if token else None)
            assert reply["connected"], reply
        member._reader = asyncio.get_running_loop().create_task(member._read())
        return member

    async def _read(self) -> None:
        ws = self.raw.ws
        pending: tuple[str, str, int | None] | None = None
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY and pending is not None:
                namespace, event, ack = pending
                pending = None
                if event == "sync-step-1" and ack is not None:  # the server's step: answer it
                    answer = self.answers.get(namespace, EMPTY)
                    await ws.send_str(f'461-{namespace},{ack}[{{"_placeholder":true,"num":0}}]')
                    await ws.send_bytes(answer)
                    self.answered.add(namespace)
                elif event == "ack" and (namespace, ack) in self._acks:
                    self._acks.pop((namespace, ack)).set_result(msg.data)
                else:
                    self.received.append((namespace, event, msg.data))
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            text: str = msg.data
            if text == "2":
                await ws.send_str("3")
            elif text.startswith(("451-", "461-")):
                namespace, _, rest = text[4:].partition(",")
                digits = len(rest) - len(rest.lstrip("0123456789"))
                ack = int(rest[:digits]) if digits else None
                event = json.loads(rest[digits:])[0] if text[1] == "5" else "ack"
                pending = (namespace, event, ack)
            elif text.startswith("42/"):
                namespace, _, rest = text[2:].partition(",")
                event, payload = json.loads(rest)[:2]
                if event == "collab:error":
                    self.received.append((namespace, event, payload))

    async def send(self, namespace: str, event: str, payload: bytes) -> None:
        await self.raw.send_binary_event(namespace, event, payload)

    async def document(self, namespace: str) -> bytes:
        """The whole document as the server has it once it handled what this
        member sent before (a sync-step-1 with an empty state vector)."""
        ack = self._next_ack
        self._next_ack += 1
        future = self._acks[(namespace, ack)] = asyncio.get_running_loop().create_future()
        await self.raw.ws.send_str(
            f'451-{namespace},{ack}["sync-step-1",{{"_placeholder":true,"num":0}}]'
        )
        await self.raw.ws.send_bytes(b"\x00")
        return await asyncio.wait_for(future, 60)

    def errors(self, namespace: str) -> list[dict[str, Any]]:
        return [p for ns, event, p in self.received if ns == namespace and event == "collab:error"]

    def updates(self, namespace: str) -> list[bytes]:
        return [p for ns, event, p in self.received if ns == namespace and event == "sync-update"]

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.raw.close()


def board_of(update: bytes) -> dict[str, Any]:
    doc: Doc = Doc()
    doc.apply_update(update)
    return doc.get("shapes", type=Map).to_py() or {}


def items_of(update: bytes) -> dict[str, Any]:
    doc: Doc = Doc()
    doc.apply_update(update)
    return doc.get("items", type=Map).to_py() or {}


def refusals(srv: Any, limit: str) -> float:
    text = srv.app.metrics.render().decode()
    line = f'collab_limit_refusals_total{{limit="{limit}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


#: The default struct limit (--max-update-structs).
STRUCTS = Limits().max_update_structs


# -- the struct limit --------------------------------------------------------------


async def test_an_update_past_the_struct_limit_is_refused_and_its_sender_goes_on(server):
    """Issue 14's heavy update (42,000 map entries, 966 KB): within the
    message limit, past the struct limit (5,000 by default)."""
    ns = "/yjs|heavy"
    sender = await Member.join(server.url, ns)
    watcher = await Member.join(server.url, ns)
    try:
        (heavy,) = heavy_updates(1, items=42_000)
        assert len(heavy) < 1 << 20 and check_update(heavy).struct_count == 42_000
        await sender.send(ns, "sync-update", heavy)
        await until(lambda: sender.errors(ns), what="the refusal")
        (error,) = sender.errors(ns)
        assert (error["code"], error["event"]) == ("message_too_large", "sync-update")
        assert "42000 structs" in error["message"]
        assert refusals(server, "update_structs") == 1
        assert items_of(await sender.document(ns)) == {}  # nothing applied
        # The session goes on: its next update is applied and relayed.
        (small,) = heavy_updates(1, items=3, seed=5)
        await sender.send(ns, "sync-update", small)
        await until(lambda: watcher.updates(ns) == [small], what="the next update relayed")
        assert len(items_of(await sender.document(ns))) == 3
    finally:
        await sender.close()
        await watcher.close()


async def test_an_update_at_the_struct_limit_is_applied_and_one_past_it_refused(server_factory):
    srv = await server_factory(max_update_structs=1000)
    ns = "/yjs|limit"
    sender = await Member.join(srv.url, ns)
    watcher = await Member.join(srv.url, ns)
    try:
        at, past = heavy_updates(1, items=1000)[0], heavy_updates(1, items=1001, seed=7)[0]
        await sender.send(ns, "sync-update", at)
        await until(lambda: watcher.updates(ns) == [at], what="the update at the limit relayed")
        await sender.send(ns, "sync-update", past)
        await until(lambda: sender.errors(ns), what="the refusal")
        assert [e["code"] for e in sender.errors(ns)] == ["message_too_large"]
        assert len(items_of(await sender.document(ns))) == 1000
        assert watcher.updates(ns) == [at]
    finally:
        await sender.close()
        await watcher.close()


# -- whole boards given back ----------------------------------------------------------


async def test_a_board_larger_than_an_update_is_given_back_whole(server_factory):
    """A client's answer to the server's sync-step-1 holding a board of
    1.4 MB and 58,000 structs drawn by five clients (as after the server
    lost it): past both per-update limits and past the update-bytes burst
    (1 MiB here; an answer costs a full burst at most), applied whole; the
    members get it in parts; a joiner gets all of it."""
    server = await server_factory(update_bytes_burst=1 << 20)
    board = shared_board(8_000)
    summary = check_update(board)
    assert len(board) > 1 << 20 and summary.struct_count > 2 * STRUCTS
    ns = "/yjs|restore"
    watcher = await Member.join(server.url, ns)
    giver = await Member.join(server.url, ns, restore=board)
    try:
        await until(lambda: ns in giver.answered, what="the answer sent")
        joined = await giver.document(ns)  # handled after the answer
        assert board_of(joined) == board_of(board)
        assert giver.errors(ns) == []
        # The watcher got it in parts of at most the struct limit each.
        await until(lambda: len(watcher.updates(ns)) >= 3, what="the parts relayed")
        parts = watcher.updates(ns)
        assert all(check_update(part).struct_count <= STRUCTS for part in parts)
        assert board_of(_merged(parts)) == board_of(board)
        # A joiner, afterwards, gets all of it from the server.
        joiner = await Member.join(server.url, ns)
        try:
            assert board_of(await joiner.document(ns)) == board_of(board)
        finally:
            await joiner.close()
    finally:
        await watcher.close()
        await giver.close()


def _merged(updates: list[bytes]) -> bytes:
    doc: Doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return bytes(doc.get_update())


async def test_other_rooms_are_served_between_the_parts_of_an_answer(server_factory):
    """Small limits, so a board of 1,500 shapes is answered in about 20
    parts. One WebSocket watches the answer's room and a probe room, where
    another client draws all along: its updates arrive between the parts
    (frames on one socket arrive in the order the server sent them)."""
    srv = await server_factory(
        max_update_structs=500,
        max_message_bytes=64 << 10,
        update_rate_per_s=10_000,  # the drawer's pace is not under test
        update_burst=10_000,
    )
    board = shared_board(1_500)
    assert check_update(board).struct_count > 10 * 500
    answer_ns, probe_ns = "/yjs|answer", "/yjs|probe"
    observer = await Member.join(srv.url, answer_ns, probe_ns)
    drawer = await Member.join(srv.url, probe_ns)
    strokes = heavy_updates(50, items=1, seed=9)
    drawing = asyncio.get_running_loop().create_task(_draw(drawer, probe_ns, strokes))
    giver = await Member.join(srv.url, answer_ns, answer=board)
    try:
        await until(lambda: answer_ns in giver.answered, what="the answer sent")
        assert board_of(await giver.document(answer_ns)) == board_of(board)
        await until(
            lambda: board_of(_merged(observer.updates(answer_ns))) == board_of(board),
            what="every part relayed",
        )
        order = [ns for ns, event, _ in observer.received if event == "sync-update"]
        first, last = order.index(answer_ns), len(order) - 1 - order[::-1].index(answer_ns)
        assert order.count(answer_ns) >= 10
        assert probe_ns in order[first:last], "no probe update between the parts"
    finally:
        drawing.cancel()
        for member in (observer, drawer, giver):
            await member.close()


async def _draw(member: Member, namespace: str, updates: list[bytes]) -> None:
    """Send ``updates`` over and over (a repeat is relayed too) until cancelled."""
    for update in itertools.cycle(updates):
        await member.send(namespace, "sync-update", update)
        await asyncio.sleep(0.001)


async def test_an_answer_past_the_document_limit_is_refused_with_a_code(server_factory):
    """Past the board's limit (and the message limit): message_too_large;
    within the message limit but past what the board has room for:
    document_too_large. Nothing is applied either way."""
    srv = await server_factory(max_message_bytes=16 << 10, max_board_bytes=64 << 10)
    board = shared_board(800)
    assert 64 << 10 < len(board) < 1 << 20  # within every frame limit
    half = shared_board(200, seed=8)
    assert 16 << 10 < len(half) < 64 << 10
    for room, answer, code in (("past", board, "message_too_large"), ("room", half, None)):
        ns = f"/yjs|{room}"
        giver = await Member.join(srv.url, ns, **{room: answer})
        try:
            await until(lambda g=giver, n=ns: n in g.answered, what="the answer sent")
            document = await giver.document(ns)
            if code is None:  # fits: applied
                assert board_of(document) == board_of(answer) and giver.errors(ns) == []
                continue
            (error,) = giver.errors(ns)
            assert (error["code"], error["event"]) == (code, "sync-step-1")
            assert board_of(document) == {}
        finally:
            await giver.close()


async def test_an_observers_answer_is_ignored_however_large(server_factory):
    srv = await server_factory(dev=False, jwt_secret=SECRET)
    board = shared_board(8_000)
    ns = "/yjs|watched"
    observer = await Member.join(
        srv.url, ns, token=mint("watched", "observer", sub="u-obs"), watched=board
    )
    try:
        await until(lambda: ns in observer.answered, what="the answer sent")
        assert board_of(await observer.document(ns)) == {}
        assert observer.errors(ns) == []
    finally:
        await observer.close()
