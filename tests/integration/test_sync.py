"""Document sync between real clients through a real server on loopback."""

from __future__ import annotations

import asyncio
import random

from pycrdt import Array, Doc, Map, Text

from collab.client import CollabClient
from tests.boards import shapes
from tests.waiting import let_io_run


async def test_two_clients_converge(server, client_factory):
    a = await client_factory(server.url, "r1")
    b = await client_factory(server.url, "r1")
    a.doc.get("shapes", type=Map)["s1"] = {"type": "rect", "x": 1.0, "y": 2.0}
    await b.wait_for(lambda: "s1" in shapes(b))
    b.doc.get("shapes", type=Map)["s2"] = {"type": "ellipse", "x": 3.0, "y": 4.0}
    await a.wait_for(lambda: "s2" in shapes(a))
    assert shapes(a) == shapes(b)
    assert set(shapes(a)) == {"s1", "s2"}


async def test_five_concurrent_editors_converge(server, client_factory):
    clients = [await client_factory(server.url, "busy") for _ in range(5)]
    rng = random.Random(7)

    async def edit(index: int, client: CollabClient) -> None:
        board = client.doc.get("shapes", type=Map)
        text = client.doc.get("notes", type=Text)
        log = client.doc.get("log", type=Array)
        for step in range(40):
            with client.doc.transaction():
                board[f"c{index}-{step}"] = {"type": "pen", "points": [[step, index]]}
                text.insert(rng.randint(0, len(text)), f"{index}")
                log.append(index)
                if step % 7 == 3:
                    del board[f"c{index}-{step - 1}"]
            if step % 5 == 0:
                await let_io_run()

    await asyncio.gather(*(edit(i, c) for i, c in enumerate(clients)))
    expected_shapes = 5 * (40 - len([s for s in range(40) if s % 7 == 3]))
    for client in clients:
        await client.wait_for(
            lambda c=client: (
                len(c.doc.get("log", type=Array)) == 200 and len(shapes(c)) == expected_shapes
            ),
            timeout_s=20,
        )
    states = {str(c.doc.get("notes", type=Text)) for c in clients}
    assert len(states) == 1, "text diverged"
    boards = [shapes(c) for c in clients]
    assert all(b == boards[0] for b in boards)
    logs = [list(c.doc.get("log", type=Array)) for c in clients]
    assert all(lg == logs[0] for lg in logs)


async def test_late_joiner_gets_full_state(server, client_factory):
    a = await client_factory(server.url, "late")
    board = a.doc.get("shapes", type=Map)
    for i in range(50):
        board[f"s{i}"] = {"type": "rect", "x": float(i)}
    # The server has everything once a second client sees the last shape.
    probe = await client_factory(server.url, "late")
    await probe.wait_for(lambda: len(shapes(probe)) == 50)
    await a.close()
    late = await client_factory(server.url, "late")
    assert len(shapes(late)) == 50, "full state must arrive with the initial sync"
    assert shapes(late) == shapes(probe)


async def test_rooms_are_isolated(server, client_factory):
    a = await client_factory(server.url, "room-a")
    b = await client_factory(server.url, "room-b")
    a2 = await client_factory(server.url, "room-a")
    a.doc.get("shapes", type=Map)["only-a"] = {"type": "rect"}
    await a2.wait_for(lambda: "only-a" in shapes(a2))
    assert shapes(b) == {}


async def test_offline_edits_sync_on_reconnect(server, client_factory):
    a = await client_factory(server.url, "offline")
    b = await client_factory(server.url, "offline")
    await a._sio.disconnect()  # simulate going offline; the Doc stays
    a.doc.get("shapes", type=Map)["while-offline"] = {"type": "sticky", "text": "later"}
    reconnected = CollabClient(server.url, "offline", doc=a.doc, auth={"name": "a"})
    await reconnected.connect()
    try:
        await b.wait_for(lambda: "while-offline" in shapes(b))
    finally:
        await reconnected.close()


async def test_awareness_relayed_and_removed_on_disconnect(server, client_factory):
    a = await client_factory(server.url, "aw")
    b = await client_factory(server.url, "aw")
    await a.set_awareness({"cursor": {"x": 1, "y": 2}})
    await b.wait_for(lambda: a.doc.client_id in b.awareness)
    assert b.awareness[a.doc.client_id]["cursor"] == {"x": 1, "y": 2}
    c = await client_factory(server.url, "aw")
    await c.wait_for(lambda: a.doc.client_id in c.awareness)  # full state on connect
    await a.close()
    await b.wait_for(lambda: a.doc.client_id not in b.awareness)
    await c.wait_for(lambda: a.doc.client_id not in c.awareness)


async def test_update_sent_just_before_disconnect_is_kept(server, client_factory):
    """Events are handled in arrival order: a DISCONNECT right after an update
    must not overtake it (python-socketio's task-per-event would)."""
    from pycrdt import Doc

    from tests.rawsio import RawSocket

    namespace = "/yjs|quick-exit"
    for i in range(20):
        raw = await RawSocket.open(server.url)
        assert (await raw.connect(namespace))["connected"]
        doc = Doc()
        doc.get("shapes", type=Map)[f"last-{i}"] = {"type": "rect"}
        # Header frame, attachment frame and DISCONNECT back to back.
        await raw.send_binary_event(namespace, "sync-update", bytes(doc.get_update()))
        await raw.disconnect_namespace(namespace)
        await raw.close()
    probe = await client_factory(server.url, "quick-exit")
    assert set(shapes(probe)) == {f"last-{i}" for i in range(20)}


async def test_ypy_engine_serves_the_same_protocol(server_factory, client_factory):
    """The server on the y-py engine syncs boards and chat like the default."""
    srv = await server_factory(engine="ypy")
    a = await client_factory(srv.url, "ypy-room")
    b = await client_factory(srv.url, "ypy-room")
    a.doc.get("shapes", type=Map)["s1"] = {"type": "rect", "x": 1.0}
    await b.wait_for(lambda: "s1" in shapes(b))
    chat = await client_factory(srv.url, "ypy-room", "chat")
    ack = await a.send_chat("hello from y-py")
    await chat.wait_for(lambda: len(chat.doc.get("messages", type=Array)) == 1)
    assert chat.doc.get("messages", type=Array).to_py()[0]["id"] == ack["id"]
    late = await client_factory(srv.url, "ypy-room")
    assert shapes(late) == shapes(a)


async def test_awareness_removal_reaches_the_last_remaining_member(server, client_factory):
    a = await client_factory(server.url, "pair")
    b = await client_factory(server.url, "pair")
    await a.set_awareness({"cursor": [1, 1]})
    await b.wait_for(lambda: a.doc.client_id in b.awareness)
    await a.close()
    await b.wait_for(lambda: a.doc.client_id not in b.awareness)


async def test_server_step_follows_the_answer_to_the_clients_step(server, client_factory):
    """When the client is told to answer the server's sync-step-1, it already
    holds the document (the y-socket.io provider reports synced then)."""
    from tests.rawsio import RawSocket

    writer = await client_factory(server.url, "order")
    for i in range(30):
        writer.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect"}
    probe = await client_factory(server.url, "order")
    await probe.wait_for(lambda: len(shapes(probe)) == 30)
    raw = await RawSocket.open(server.url)
    assert (await raw.connect("/yjs|order"))["connected"]
    await raw.ws.send_str('451-/yjs|order,0["sync-step-1",{"_placeholder":true,"num":0}]')
    await raw.ws.send_bytes(b"\x00")
    order = []
    while len(order) < 2:
        text = (await raw.ws.receive()).data
        if isinstance(text, str) and text.startswith("461-/yjs|order,0"):
            order.append("ack")
        elif isinstance(text, str) and '"sync-step-1"' in text:
            order.append("server-step-1")
    await raw.close()
    assert order == ["ack", "server-step-1"]


async def test_a_client_that_waits_for_the_server_s_step_gets_it_after_the_wait(
    server, client_factory
):
    """A client that sends no sync-step-1 of its own gets the server's (then
    the awareness and the room's state) once the server stops waiting for
    it; answering it brings the document; a second sync-step-1 of the
    client's is answered and starts no second server step."""
    from tests.rawsio import RawSocket

    writer = await client_factory(server.url, "patient")
    writer.doc.get("shapes", type=Map)["s"] = {"type": "rect"}
    probe = await client_factory(server.url, "patient")
    await probe.wait_for(lambda: len(shapes(probe)) == 1)
    raw = await RawSocket.open(server.url)
    try:
        assert (await raw.connect("/yjs|patient"))["connected"]
        step = await raw.next_text("451-/yjs|patient,")  # the wait is 1 s
        assert '"sync-step-1"' in step, step
        ack = step[len("451-/yjs|patient,") : step.index("[")]
        assert (await raw.ws.receive()).data != b"\x00", "the server's state vector"
        await raw.next_text(lambda t: '"awareness-update"' in t)
        await raw.next_text(lambda t: '"room:state"' in t)
        await raw.ws.send_str(f'461-/yjs|patient,{ack}[{{"_placeholder":true,"num":0}}]')
        await raw.ws.send_bytes(b"\x00\x00")
        await raw.ws.send_str('451-/yjs|patient,7["sync-step-1",{"_placeholder":true,"num":0}]')
        await raw.ws.send_bytes(b"\x00")
        answered = await raw.next_text("461-/yjs|patient,7")
        assert answered
        update = (await raw.ws.receive()).data
        doc = Doc()
        doc.apply_update(update)
        assert "s" in doc.get("shapes", type=Map)
        # Another step of the client's, answered with nothing the server's
        # second step (there is none) came before.
        await raw.ws.send_str('451-/yjs|patient,8["sync-step-1",{"_placeholder":true,"num":0}]')
        await raw.ws.send_bytes(b"\x00")
        after = await raw.next_text(lambda t: '"sync-step-1"' in t or t.startswith("461-"))
        assert after.startswith("461-/yjs|patient,8"), "a second server step"
    finally:
        await raw.close()


async def test_a_state_larger_than_4_mib_reaches_a_late_joiner(server, client_factory):
    """The answer to sync-step-1 carries the whole document in one frame."""
    writer = await client_factory(server.url, "big")
    watcher = await client_factory(server.url, "big")  # gets them one by one
    shapes = writer.doc.get("shapes", type=Map)
    for i in range(6):  # 6 updates of ~0.8 MB: each under the 1 MiB message limit
        shapes[f"note{i}"] = {"type": "text", "text": str(i) * 800_000}
    await watcher.wait_for(lambda: len(watcher.doc.get("shapes", type=Map)) == 6, timeout_s=20)
    late = await client_factory(server.url, "big", reconnection=False)
    await late.wait_for(lambda: len(late.doc.get("shapes", type=Map)) == 6, timeout_s=20)
    assert late.connected
