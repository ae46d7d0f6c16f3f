"""Several ``collab serve`` processes sharing rooms through one real redis-server."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from pycrdt import Array, Map

from collab.client import CollabClient, CollabClientError
from crdt.awareness import AwarenessEntry, encode_awareness
from rooms.envelope import Envelope, EnvelopeKind
from tests.boards import shapes
from tests.conftest import ADMIN_KEY, mint
from tests.redis.conftest import healthz, metrics
from tests.waiting import let_io_run, until

pytestmark = pytest.mark.slow


def messages(client: CollabClient) -> list[dict]:
    return client.doc.get("messages", type=Array).to_py() or []


@pytest.fixture
async def two(redis_server, node_factory):
    a = await node_factory(redis_server.url, "A")
    b = await node_factory(redis_server.url, "B")
    return redis_server, a, b


async def test_concurrent_edits_converge_across_nodes(two, clients):
    _, a, b = two
    on_a = [await clients(a.url, "room") for _ in range(2)]
    on_b = [await clients(b.url, "room") for _ in range(2)]
    everyone = on_a + on_b

    async def edit(i: int, client: CollabClient) -> None:
        board = client.doc.get("shapes", type=Map)
        for step in range(30):
            board[f"c{i}-{step}"] = {"type": "pen", "points": [[i, step]]}
            if step % 10 == 9:
                del board[f"c{i}-{step - 1}"]
                await let_io_run()

    await asyncio.gather(*(edit(i, c) for i, c in enumerate(everyone)))
    expected = {f"c{i}-{step}" for i in range(4) for step in range(30) if step % 10 != 8}
    for client in everyone:
        await client.wait_for(lambda c=client: set(shapes(c)) == expected, timeout_s=20)
    assert all(shapes(c) == shapes(everyone[0]) for c in everyone)


async def test_late_joiner_on_a_third_node(two, node_factory, clients):
    redis, a, b = two
    writer = await clients(a.url, "late")
    for i in range(40):
        writer.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect", "x": float(i)}
    probe = await clients(b.url, "late")
    await probe.wait_for(lambda: len(shapes(probe)) == 40, timeout_s=10)
    c = await node_factory(redis.url, "C")
    late = await clients(c.url, "late")
    assert shapes(late) == shapes(writer)


async def test_chat_order_and_no_duplicates_across_nodes(two, clients):
    _, a, b = two
    token_a = {"token": mint("talk", name="Ann", sub="ann")}
    ann_a = await clients(a.url, "talk", "chat", auth=token_a)
    ann_b = await clients(b.url, "talk", "chat", auth=token_a)  # the same user, failed over
    bob_b = await clients(b.url, "talk", "chat", auth={"token": mint("talk", name="Bob", sub="b")})
    acks = []
    for i in range(6):
        sender = ann_a if i % 2 == 0 else bob_b
        acks.append(await sender.send_chat(f"m{i}", client_message_id=f"id-{i}"))
    # Ann retries message 0 on the other node (its ack was lost in the failover).
    await ann_b.wait_for(lambda: len(messages(ann_b)) == 6, timeout_s=10)
    retry = await ann_b.send_chat("m0", client_message_id="id-0")
    assert retry["duplicate"] is True and retry["id"] == acks[0]["id"]
    for client in (ann_a, ann_b, bob_b):
        await client.wait_for(lambda c=client: len(messages(c)) == 6, timeout_s=10)
        assert [m["text"] for m in messages(client)] == [f"m{i}" for i in range(6)]
        assert [m["id"] for m in messages(client)] == [x["id"] for x in acks]


async def test_awareness_across_nodes_and_removal(two, clients):
    _, a, b = two
    on_a = await clients(a.url, "aw", auth={"token": mint("aw", name="Ann", sub="ann")})
    on_b = await clients(b.url, "aw")
    await on_a.set_awareness({"cursor": [4, 2]})
    await on_b.wait_for(lambda: on_a.doc.client_id in on_b.awareness, timeout_s=10)
    assert on_b.awareness[on_a.doc.client_id]["user"]["name"] == "Ann"
    late_b = await clients(b.url, "aw")
    await late_b.wait_for(lambda: on_a.doc.client_id in late_b.awareness, timeout_s=10)
    await on_a.close()
    await on_b.wait_for(lambda: on_a.doc.client_id not in on_b.awareness, timeout_s=10)
    await late_b.wait_for(lambda: on_a.doc.client_id not in late_b.awareness, timeout_s=10)


async def test_echoes_of_another_nodes_clients_claim_nothing(two, clients):
    """The y-socket.io provider sends back every state relayed to it: Bob's echo
    of Ann's state (Ann on node A) must not make Bob its owner on node B, or Ann
    would vanish for node B when Bob leaves."""
    _, a, b = two
    on_a = await clients(a.url, "echo", auth={"token": mint("echo", name="Ann", sub="ann")})
    bob = await clients(b.url, "echo", auth={"token": mint("echo", name="Bob", sub="bob")})
    other = await clients(b.url, "echo", auth={"token": mint("echo", name="Cy", sub="cy")})
    await on_a.set_awareness({"cursor": [4, 2]})
    ann = on_a.doc.client_id
    await bob.wait_for(lambda: ann in bob.awareness, timeout_s=10)
    await other.wait_for(lambda: ann in other.awareness, timeout_s=10)
    state = orjson.dumps(bob.awareness[ann]).decode()
    echo = encode_awareness([AwarenessEntry(ann, on_a._awareness_clock, state)])
    await bob.emit_raw("awareness-update", echo)
    await bob.set_awareness({"cursor": [1, 1]})
    await other.wait_for(lambda: bob.doc.client_id in other.awareness, timeout_s=10)
    assert bob.errors == []
    await bob.close()  # the removal of Bob's clients, one update
    await other.wait_for(lambda: bob.doc.client_id not in other.awareness, timeout_s=10)
    assert ann in other.awareness


async def test_moderation_across_nodes(two, clients):
    _, a, b = two
    fac = await clients(
        a.url, "mod", auth={"token": mint("mod", role="facilitator", name="F", sub="fac")}
    )
    par = await clients(b.url, "mod", auth={"token": mint("mod", name="P", sub="par")})
    par_chat = await clients(b.url, "mod", "chat", auth={"token": mint("mod", name="P", sub="par")})
    await fac.call("mod:lock", {"locked": True})
    await par.wait_for(lambda: par.room_state.get("locked") is True, timeout_s=10)
    par.doc.get("shapes", type=Map)["nope"] = {"type": "rect"}
    await par.wait_for(lambda: any(e["code"] == "board_locked" for e in par.errors), timeout_s=10)
    await fac.call("mod:remove", {"userId": "par"})
    for conn in (par, par_chat):
        await conn.wait_for(lambda c=conn: not c.connected, timeout_s=10)
        assert any(e["code"] == "removed" for e in conn.errors)
    with pytest.raises(CollabClientError) as info:
        await clients(
            b.url, "mod", auth={"token": mint("mod", name="P", sub="par")}, reconnection=False
        )
    assert info.value.code == "removed"
    assert "nope" not in shapes(fac)


async def test_subscriptions_follow_local_members(two, node_factory, clients):
    """Traffic in room X reaches no node without members in X."""
    redis, a, b = two
    c = await node_factory(redis.url, "C")
    x_a = await clients(a.url, "X")
    x_b = await clients(b.url, "X")
    y_c = await clients(c.url, "Y")
    rc = redis.client()
    try:
        channel = "collab:{X}:doc:board:ch"
        numsub = dict(await rc.pubsub_numsub(channel, "collab:{Y}:doc:board:ch"))
        assert numsub[channel.encode()] == 2  # nodes A and B, not C
        before = await metrics(c.url)
        for i in range(50):
            x_a.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect"}
        await x_b.wait_for(lambda: len(shapes(x_b)) == 50, timeout_s=10)
        y_c.doc.get("shapes", type=Map)["y"] = {"type": "rect"}  # C is busy with its own room
        # A marker on C's own channel, published after X's 50 envelopes went
        # through Redis: had C been subscribed to X, they would reach it first.
        await rc.publish("collab:node:C", b"marker, not an envelope")
        await until(
            lambda: _counter_at_least(
                c.url,
                "collab_envelopes_dropped_total",
                before["collab_envelopes_dropped_total"] + 1,
            ),
            timeout_s=10,
        )
        after = await metrics(c.url)
        # C hears the marker and the echoes of its own room Y's publishes (an
        # update, awareness), whenever they land; X's 50 would make it 51 or more.
        heard = after["collab_envelopes_received_total"] - before["collab_envelopes_received_total"]
        assert 1 <= heard < 1 + 50
        assert (await metrics(b.url))["collab_envelopes_applied_total"] >= 50
        # When its last local member leaves, the node unsubscribes right away
        # (the room stays loaded for its grace period, but hears nothing).
        await x_b.close()
        await until(lambda: _numsub(rc, channel, 1), timeout_s=5)
        assert (await healthz(b.url))["rooms"] == 1, "room X is still loaded on B"
        received = (await metrics(b.url))["collab_envelopes_received_total"]
        seen_by_a = (await metrics(a.url))["collab_envelopes_received_total"]
        for i in range(20):
            x_a.doc.get("shapes", type=Map)[f"t{i}"] = {"type": "rect"}
        # A, still subscribed, hears its own 20 publishes: they went out.
        await until(
            lambda: _counter_at_least(a.url, "collab_envelopes_received_total", seen_by_a + 20),
            timeout_s=10,
        )
        # A marker on B's own channel, after them on the same connection:
        # had B been subscribed to X, X's envelopes would have reached it first.
        dropped = (await metrics(b.url))["collab_envelopes_dropped_total"]
        await rc.publish("collab:node:B", b"marker, not an envelope")
        await until(
            lambda: _counter_at_least(b.url, "collab_envelopes_dropped_total", dropped + 1),
            timeout_s=10,
        )
        assert (await metrics(b.url))["collab_envelopes_received_total"] == received + 1
        # A member joining B again gets a caught-up replica.
        back = await clients(b.url, "X")
        assert len(shapes(back)) == 70
    finally:
        await rc.aclose()


async def _counter_at_least(url: str, name: str, count: float) -> bool:
    return (await metrics(url))[name] >= count


async def _numsub(rc, channel: str, expected: int) -> bool:
    return dict(await rc.pubsub_numsub(channel))[channel.encode()] == expected


async def test_malformed_envelopes_are_dropped(two, clients):
    redis, a, b = two
    on_a = await clients(a.url, "bad")
    on_b = await clients(b.url, "bad")
    rc = redis.client()
    channel = "collab:{bad}:doc:board:ch"
    try:
        for junk in (
            b"\xff\x00garbage",
            Envelope(
                EnvelopeKind.UPDATE, "evil", "bad", "board", 1, "1-0", b"\x01\x02"
            ).serialize()[:-3],
            b"\x98\x07\x01\xa1x\xa3bad\xa5board\x01\xc0\xc4\x00",
        ):
            await rc.publish(channel, junk)
        before = (await metrics(b.url))["collab_envelopes_dropped_total"]
        assert before >= 2
    finally:
        await rc.aclose()
    on_a.doc.get("shapes", type=Map)["still"] = {"type": "rect"}
    await on_b.wait_for(lambda: "still" in shapes(on_b), timeout_s=10)
    assert (await healthz(b.url))["status"] == "ok"


async def test_unreachable_redis_fails_fast(tmp_path):
    from tests.procs import CollabNode, free_port

    node = CollabNode(
        tmp_path,
        "--dev",
        "--store",
        "redis",
        "--redis-url",
        f"redis://127.0.0.1:{free_port()}/0",
        node_id="lonely",
    )
    with pytest.raises(RuntimeError, match="did not start"):
        await node.start()
    assert await asyncio.wait_for(node.proc.wait(), 20) == 1
    assert "cannot reach Redis" in node.log()


async def test_redis_restart_mid_session_loses_nothing(two, clients, node_factory):
    redis, a, b = two
    on_a = await clients(a.url, "phoenix")
    on_b = await clients(b.url, "phoenix")
    chat_a = await clients(a.url, "phoenix", "chat")
    for i in range(10):
        on_a.doc.get("shapes", type=Map)[f"before-{i}"] = {"type": "rect"}
    await chat_a.send_chat("said before the restart")
    await on_b.wait_for(lambda: len(shapes(on_b)) == 10, timeout_s=10)

    await redis.stop()  # gone, and it keeps nothing (no persistence)
    await until(lambda: _status(a.url, "degraded"), timeout_s=10)
    on_a.doc.get("shapes", type=Map)["during"] = {"type": "ellipse"}  # node A keeps serving
    await redis.start()  # same port, empty
    await until(lambda: _status(a.url, "ok"), timeout_s=20)
    await until(lambda: _status(b.url, "ok"), timeout_s=20)

    on_b.doc.get("shapes", type=Map)["after"] = {"type": "rect"}
    expected = {f"before-{i}" for i in range(10)} | {"during", "after"}
    for client in (on_a, on_b):
        await client.wait_for(lambda c=client: set(shapes(c)) == expected, timeout_s=20)
    # Everything is in Redis again: a node that starts now (no memory of the room) has it all.
    c = await node_factory(redis.url, "C")
    fresh = await clients(c.url, "phoenix")
    assert set(shapes(fresh)) == expected
    fresh_chat = await clients(c.url, "phoenix", "chat")
    assert [m["text"] for m in messages(fresh_chat)] == ["said before the restart"]
    assert (await metrics(a.url))["collab_envelopes_reseeds_total"] >= 1


async def _status(url: str, expected: str) -> bool:
    try:
        return (await healthz(url))["status"] == expected
    except OSError:
        return False


async def test_node_sigkill_clients_move_and_nothing_is_lost(two, clients):
    _, a, b = two
    on_a = await clients(a.url, "crash", reconnection=False)
    on_b = await clients(b.url, "crash")
    for i in range(20):
        on_a.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect"}
    await on_b.wait_for(lambda: len(shapes(on_b)) == 20, timeout_s=10)
    await a.kill()
    await on_a.wait_for(lambda: not on_a.connected, timeout_s=10)
    on_a.doc.get("shapes", type=Map)["offline"] = {"type": "sticky"}
    # The load balancer sends the client to node B: same Doc, new connection.
    moved = await clients(b.url, "crash", doc=on_a.doc)
    await on_b.wait_for(lambda: "offline" in shapes(on_b), timeout_s=10)
    assert set(shapes(moved)) == {f"s{i}" for i in range(20)} | {"offline"}


async def test_slow_subscriber_does_not_block_others(redis_server, node_factory, clients, tmp_path):
    """A stalled node (SIGSTOP) must not slow the others; when it comes back,
    dropped by Redis meanwhile, it reconnects and catches up."""
    rc = redis_server.client()
    await rc.config_set("client-output-buffer-limit", "pubsub 64kb 32kb 1")
    await rc.aclose()
    a = await node_factory(redis_server.url, "A")
    b = await node_factory(redis_server.url, "B")
    s = await node_factory(redis_server.url, "S")
    on_a, on_b = await clients(a.url, "busy"), await clients(b.url, "busy")
    on_s = await clients(s.url, "busy", reconnection=True)
    s.pause()
    try:
        payload = "x" * 4000  # 1.6 MB in all: far past the 64 kB pub/sub limit
        for i in range(400):
            on_a.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "text", "text": payload}
            if i % 20 == 0:
                await let_io_run()
        # The others are not held up by the stalled node.
        await on_b.wait_for(lambda: len(shapes(on_b)) == 400, timeout_s=15)
        # Redis drops a subscriber past the output buffer limit, unless the
        # kernel's socket buffers (up to 4 MB here) held it all: make sure.
        rc = redis_server.client()
        for client in await rc.client_list():
            if client["name"] == "collab:sub:S":
                await rc.client_kill_filter(_id=client["id"])
        await rc.aclose()
    finally:
        s.resume()
    await on_s.wait_for(lambda: len(shapes(on_s)) == 400, timeout_s=30)
    stats = await metrics(s.url)
    assert stats["collab_envelopes_reconnects_total"] >= 1, "Redis dropped it; it came back"
    assert stats["collab_redis_connected"] == 1


async def test_room_deletion_removes_every_key(two, clients):
    import aiohttp

    redis, a, b = two
    on_a = await clients(a.url, "doomed", reconnection=False)
    on_b = await clients(b.url, "doomed", "chat", reconnection=False)
    on_a.doc.get("shapes", type=Map)["x"] = {"type": "rect"}
    await on_b.send_chat("bye")
    rc = redis.client()
    try:
        await until(lambda: _has_keys(rc, "doomed"), timeout_s=10)
        async with (
            aiohttp.ClientSession() as http,
            http.delete(
                a.url + "/api/rooms/doomed", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ) as resp,
        ):
            assert resp.status == 200, await resp.text()
        for client in (on_a, on_b):  # the member on node B is closed too
            await client.wait_for(lambda c=client: not c.connected, timeout_s=10)
            assert any(e["code"] == "room_deleted" for e in client.errors)
        keys = [k async for k in rc.scan_iter(match="collab:{doomed}*")]
        assert keys == [b"collab:{doomed}:deleted"]  # the tombstone, no content
        assert b"doomed" not in await rc.smembers("collab:rooms")
        assert await rc.exists("collab-audit:{doomed}")  # the audit log stays
    finally:
        await rc.aclose()


async def _has_keys(rc, room: str) -> bool:
    return bool([k async for k in rc.scan_iter(match=f"collab:{{{room}}}:doc:*")])


async def test_compaction_by_several_nodes_loses_nothing(redis_server, node_factory, clients):
    a = await node_factory(redis_server.url, "A", "--compact-after-updates", "10")
    b = await node_factory(redis_server.url, "B", "--compact-after-updates", "10")
    on_a, on_b = await clients(a.url, "big"), await clients(b.url, "big")

    async def write(client: CollabClient, prefix: str) -> None:
        for i in range(80):
            client.doc.get("shapes", type=Map)[f"{prefix}{i}"] = {"type": "rect"}
            if i % 5 == 0:
                await let_io_run()

    await asyncio.gather(write(on_a, "a"), write(on_b, "b"))
    expected = {f"a{i}" for i in range(80)} | {f"b{i}" for i in range(80)}
    for client in (on_a, on_b):
        await client.wait_for(lambda c=client: set(shapes(c)) == expected, timeout_s=20)
    rc = redis_server.client()
    try:
        await until(lambda: _log_shorter_than(rc, "big", 60), timeout_s=10)
        assert await rc.hget("collab:{big}:doc:board:snap", "id")
    finally:
        await rc.aclose()
    c = await node_factory(redis_server.url, "C")
    fresh = await clients(c.url, "big")
    assert set(shapes(fresh)) == expected


async def _log_shorter_than(rc, room: str, n: int) -> bool:
    return await rc.xlen(f"collab:{{{room}}}:doc:board:log") < n


async def test_crashed_nodes_cursors_time_out(redis_server, node_factory, clients):
    a = await node_factory(redis_server.url, "A")
    b = await node_factory(redis_server.url, "B", "--awareness-timeout-s", "1.5")
    on_a = await clients(a.url, "ghost", reconnection=False)
    on_b = await clients(b.url, "ghost")
    await on_a.set_awareness({"cursor": [1, 1]})
    await on_b.wait_for(lambda: on_a.doc.client_id in on_b.awareness, timeout_s=10)
    await a.kill()  # no removal is ever published
    await on_b.wait_for(lambda: on_a.doc.client_id not in on_b.awareness, timeout_s=10)


async def test_retention_purge_removes_every_key(redis_server, node_factory, clients):
    import aiohttp

    from tests.conftest import ADMIN_KEY

    a = await node_factory(
        redis_server.url,
        "A",
        "--admin-key",
        ADMIN_KEY,
        "--retention-check-interval-s",
        "0.2",
        "--unload-after-s",
        "0",
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession() as http:
        for room, days in (("brief", 1e-5), ("kept", 30)):
            async with http.post(
                a.url + "/api/rooms", headers=headers, json={"id": room, "retentionDays": days}
            ) as resp:
                assert resp.status == 201
    for room in ("brief", "kept"):
        client = await clients(a.url, room)
        client.doc.get("shapes", type=Map)["x"] = {"type": "rect"}
        await client.send_chat("hi")
        await client.close()
    rc = redis_server.client()
    try:
        await until(lambda: _no_keys(rc, "brief"), timeout_s=15)
        assert [k async for k in rc.scan_iter(match="collab:{kept}:*")]
        assert await rc.smembers("collab:rooms") == {b"kept"}
        await until(lambda: _last_audit_is(rc, "brief", b"purge"), timeout_s=5)
    finally:
        await rc.aclose()


async def _no_keys(rc, room: str) -> bool:
    """Nothing of the room is left but its tombstone (which holds no content)."""
    keys = [k async for k in rc.scan_iter(match=f"collab:{{{room}}}:*")]
    return keys in ([], [f"collab:{{{room}}}:deleted".encode()])


async def _last_audit_is(rc, room: str, action: bytes) -> bool:
    audit = await rc.xrevrange(f"collab-audit:{{{room}}}", count=1)
    return bool(audit) and audit[0][1][b"action"] == action
