"""Traffic between nodes cannot be forged by whoever can write to Redis
(issue 13, finding 2): envelopes, stored log entries and snapshots carry an
HMAC under the cluster key; what fails it is refused, counted and never
applied or relayed."""

from __future__ import annotations

import pytest
from pycrdt import Array, Doc, Map

from collab.client import CollabClient, CollabClientError
from crdt.awareness import AwarenessEntry, encode_awareness
from rooms.envelope import Envelope, EnvelopeKind
from tests.boards import shapes
from tests.conftest import mint
from tests.redis.conftest import metrics
from tests.waiting import until

pytestmark = pytest.mark.slow


@pytest.fixture
async def two(redis_server, node_factory):
    a = await node_factory(redis_server.url, "A")
    b = await node_factory(redis_server.url, "B")
    return redis_server, a, b


def texts(client: CollabClient) -> list[str]:
    return [m["text"] for m in client.doc.get("messages", type=Array).to_py() or []]


async def counter(url: str, name: str) -> float:
    return (await metrics(url)).get(name, 0.0)


async def processed_everything_before(rc, node, dropped_before: float) -> None:
    """Wait until ``node`` has handled every envelope published so far: a
    marker on its own channel, after them on the same connection, is dropped."""
    await rc.publish(f"collab:node:{node.node_id}", b"marker, not an envelope")

    async def marker_seen() -> bool:
        return await counter(node.url, "collab_envelopes_dropped_total") >= dropped_before + 1

    await until(marker_seen, timeout_s=10, what="the marker dropped")


def forged_message(base: bytes, text: str) -> bytes:
    """A chat update appending a message "by" the facilitator to the chat ``base``."""
    doc = Doc()
    doc.apply_update(base)
    before = doc.get_state()
    doc.get("messages", type=Array).append(
        Map(
            {
                "id": "0190000000000feedbeef"[:20],
                "authorId": "fac",
                "authorName": "Facilitator",
                "role": "facilitator",
                "text": text,
                "ts": 1.0,
                "redacted": False,
            }
        )
    )
    return doc.get_update(before)


async def test_forged_chat_update_is_refused_counted_and_not_relayed(two, clients):
    redis, a, b = two
    fac = await clients(
        a.url, "talk", "chat", auth={"token": mint("talk", "facilitator", sub="fac")}
    )
    par = await clients(b.url, "talk", "chat", auth={"token": mint("talk", name="P", sub="p")})
    await fac.send_chat("genuine one")
    await par.wait_for(lambda: texts(par) == ["genuine one"], timeout_s=10)
    update = forged_message(par.doc.get_update(), "forged: your session is cancelled")
    rc = redis.client()
    keys = "collab:{talk}:doc:chat"
    try:
        forged_before = await counter(b.url, "collab_envelopes_forged_total")
        dropped = await counter(b.url, "collab_envelopes_dropped_total")
        # As the append script would: the next sequence number, an entry in
        # the stream, an envelope on the channel; but no valid MAC.
        seq = int(await rc.incr(keys + ":seq"))
        stream_id = await rc.xadd(keys + ":log", {"u": update, "s": seq, "o": "A"})
        forged = Envelope(EnvelopeKind.UPDATE, "A", "talk", "chat", seq, stream_id.decode(), update)
        await rc.publish(keys + ":ch", forged.serialize())
        await processed_everything_before(rc, b, dropped)
        await fac.send_chat("genuine two")  # after a gap: B catches up from the stream
        await par.wait_for(lambda: texts(par) == ["genuine one", "genuine two"], timeout_s=10)
        assert await counter(b.url, "collab_envelopes_forged_total") >= forged_before + 1
        # A member joining later, on either node, never sees it either.
        late = await clients(a.url, "talk", "chat")
        assert texts(late) == ["genuine one", "genuine two"]
    finally:
        await rc.aclose()


async def test_forged_delete_is_refused(two, clients):
    redis, a, b = two
    on_a = await clients(a.url, "keep")
    on_b = await clients(b.url, "keep", reconnection=False)
    rc = redis.client()
    try:
        forged_before = await counter(b.url, "collab_envelopes_forged_total")
        dropped = await counter(b.url, "collab_envelopes_dropped_total")
        delete = Envelope(
            EnvelopeKind.CONTROL,
            "A",
            "keep",
            "meta",
            0,
            None,
            Envelope.control_payload("delete"),
        )
        await rc.publish("collab:{keep}:doc:meta:ch", delete.serialize())
        await processed_everything_before(rc, b, dropped)
    finally:
        await rc.aclose()
    # Had node B acted on it, it would have closed on_b (room_deleted) by now.
    on_a.doc.get("shapes", type=Map)["still"] = {"type": "rect"}
    await on_b.wait_for(lambda: "still" in shapes(on_b), timeout_s=10)
    assert on_b.connected and on_b.errors == []
    assert await counter(b.url, "collab_envelopes_forged_total") == forged_before + 1


async def test_an_envelope_replayed_into_another_room_is_refused(two, clients):
    redis, a, b = two
    source = await clients(a.url, "source")
    target_a = await clients(a.url, "target")
    target_b = await clients(b.url, "target")
    rc = redis.client()
    pubsub = rc.pubsub()
    try:
        await pubsub.subscribe("collab:{source}:doc:board:ch")
        source.doc.get("shapes", type=Map)["secret"] = {"type": "rect"}
        message = None
        for _ in range(200):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is not None:
                break
        assert message is not None
        genuine = Envelope.parse(message["data"])
        seq = int(await rc.get("collab:{target}:doc:board:seq") or 0) + 1
        replayed = Envelope(
            genuine.kind,
            genuine.origin,
            "target",
            "board",
            seq,
            genuine.stream_id,
            genuine.payload,
            genuine.mac,
        )
        dropped = await counter(b.url, "collab_envelopes_dropped_total")
        forged_before = await counter(b.url, "collab_envelopes_forged_total")
        await rc.publish("collab:{target}:doc:board:ch", replayed.serialize())
        await processed_everything_before(rc, b, dropped)
        assert await counter(b.url, "collab_envelopes_forged_total") == forged_before + 1
    finally:
        await pubsub.aclose()
        await rc.aclose()
    target_a.doc.get("shapes", type=Map)["own"] = {"type": "rect"}
    await target_b.wait_for(lambda: "own" in shapes(target_b), timeout_s=10)
    assert "secret" not in shapes(target_b)


async def test_forged_awareness_is_refused(two, clients):
    redis, _, b = two
    on_b = await clients(b.url, "aw")
    rc = redis.client()
    try:
        dropped = await counter(b.url, "collab_envelopes_dropped_total")
        state = '{"user": {"id": "fac", "name": "Dr. Who", "role": "facilitator"}}'
        fake = Envelope(
            EnvelopeKind.AWARENESS,
            "A",
            "aw",
            "board",
            0,
            None,
            encode_awareness([AwarenessEntry(4242, 1, state)]),
        )
        await rc.publish("collab:{aw}:doc:board:ch", fake.serialize())
        await processed_everything_before(rc, b, dropped)
    finally:
        await rc.aclose()
    assert 4242 not in on_b.awareness
    assert await counter(b.url, "collab_envelopes_forged_total") >= 1


async def test_tampered_snapshot_is_refused_on_load(redis_server, node_factory, clients):
    a = await node_factory(redis_server.url, "A", "--compact-after-updates", "5")
    writer = await clients(a.url, "snap")
    for i in range(12):
        writer.doc.get("shapes", type=Map)[f"s{i}"] = {"type": "rect"}
    rc = redis_server.client()
    try:

        async def compacted() -> bool:
            return bool(await rc.hget("collab:{snap}:doc:board:snap", "d"))

        await until(compacted, timeout_s=10, what="a snapshot")
        forged = Doc()
        forged.get("shapes", type=Map)["forged"] = {"type": "rect"}
        await rc.hset("collab:{snap}:doc:board:snap", "d", forged.get_update())
    finally:
        await rc.aclose()
    c = await node_factory(redis_server.url, "C")
    with pytest.raises(CollabClientError) as info:
        await clients(c.url, "snap", reconnection=False)
    assert info.value.code == "room_unavailable"
    assert await counter(c.url, "collab_envelopes_forged_total") >= 1
    assert "fails verification" in c.log()


async def test_without_a_cluster_key_the_log_says_so(redis_server, tmp_path):
    """Only --dev runs Redis without a cluster key; it says what that means."""
    from tests.procs import CollabNode

    node = CollabNode(
        tmp_path, "--dev", "--store", "redis", "--redis-url", redis_server.url, node_id="dev"
    )
    await node.start()
    try:
        assert "no cluster key: what nodes exchange through Redis is not authenticated" in (
            node.log()
        )
    finally:
        await node.kill()
