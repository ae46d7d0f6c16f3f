"""After a redaction, the text leaves Redis's memory (issue 13, finding 7):
the chat's stream is rebuilt without the entries the new snapshot covers
(XTRIM only marks entries deleted inside a partly trimmed stream node), and
the other nodes purge their in-memory copies too."""

from __future__ import annotations

import secrets

import pytest
from pycrdt import Array, Doc, Map

from crdt.types import DocName, RoomId
from rooms.store_redis import RedisStore
from tests.conftest import ADMIN_KEY, SECRET, mint, start_server
from tests.redis.conftest import CLUSTER_KEY
from tests.redis.test_tombstones import dumps_with
from tests.waiting import until

pytestmark = pytest.mark.slow


def texts(client) -> list[str]:
    return [m["text"] for m in client.doc.get("messages", type=Array).to_py() or []]


async def test_redacted_text_leaves_redis_and_the_other_nodes_memory(
    redis_server, node_factory, clients
):
    rc = redis_server.client()
    await rc.config_set("rdbcompression", "no")  # DUMP shows the bytes as they are
    a = await node_factory(redis_server.url, "A")
    # Node B runs in this process, so its replica's memory can be inspected.
    b = await start_server(
        store="redis",
        redis_url=redis_server.url,
        dev=False,
        jwt_secret=SECRET,
        admin_key=ADMIN_KEY,
        cluster_key=CLUSTER_KEY,
        node_id="B",
        flush_interval_s=0.2,
    )
    marker = "marker-" + secrets.token_hex(8)
    try:
        fac = await clients(
            a.url, "r", "chat", auth={"token": mint("r", role="facilitator", sub="fac")}
        )
        par = await clients(b.url, "r", "chat", auth={"token": mint("r", name="P", sub="p")})
        for i in range(3):
            await fac.send_chat(f"before {i}")
        sent = await par.send_chat(marker)  # written by node B
        for i in range(3):
            await par.send_chat(f"after {i}")
        await fac.wait_for(lambda: len(texts(fac)) == 7, timeout_s=10)
        assert await dumps_with(rc, marker.encode())  # the test can see it

        await fac.call("mod:redact", {"messageId": sent["id"]})
        await par.wait_for(lambda: marker not in texts(par), timeout_s=10)
        assert await dumps_with(rc, marker.encode()) == []
        # The log still has what the snapshot does not cover, and a fresh
        # replica is complete.
        fresh = await clients(a.url, "r", "chat")
        assert [t for t in texts(fresh) if t] == [
            "before 0",
            "before 1",
            "before 2",
            "after 0",
            "after 1",
            "after 2",
        ]

        doc = b.registry.rooms[RoomId("r")].docs[DocName("chat")]

        def forgotten_on_b() -> bool:
            held = [doc.engine.full_state(), doc._checkpoint, *doc._since]
            return not any(marker.encode() in bytes(u) for u in held)

        await until(forgotten_on_b, timeout_s=10, what="node B forgetting the text")
    finally:
        await rc.aclose()
        await b.stop()


async def test_compaction_rebuilds_the_stream_without_what_the_snapshot_covers(redis_server):
    """XTRIM would only flag the entries before the snapshot as deleted inside
    a stream node that later entries share: their bytes would stay."""
    rc = redis_server.client()
    await rc.config_set("rdbcompression", "no")
    store = await RedisStore.open(redis_server.url, node_id="n", cluster_key=CLUSTER_KEY)
    room, chat = RoomId("trim"), DocName("chat")
    marker = b"marker-" + secrets.token_hex(8).encode()
    doc = Doc()
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(bytes(e.update)))
    messages = doc.get("messages", type=Map)
    try:
        await store.load(room, chat)
        for i in range(6):
            messages[f"m{i}"] = marker.decode() if i == 2 else f"text {i}"
        positions = [await store.append(room, chat, [u]) for u in updates]
        assert await dumps_with(rc, marker)
        # A snapshot of the first four entries, the marker redacted in it.
        covered = Doc()
        for u in updates[:4]:
            covered.apply_update(u)
        covered.get("messages", type=Map)["m2"] = ""
        await store.compact(room, chat, covered.get_update(), positions[3], 4)
        assert await dumps_with(rc, marker) == []
        stored = await store.load(room, chat)
        assert len(stored.updates) == 2, "the entries after the snapshot stay"
        rebuilt = Doc()
        for u in [stored.snapshot, *stored.updates]:
            rebuilt.apply_update(u)
        assert rebuilt.get("messages", type=Map).to_py() == {
            "m0": "text 0",
            "m1": "text 1",
            "m2": "",
            "m3": "text 3",
            "m4": "text 4",
            "m5": "text 5",
        }
        # The stream still numbers later entries after the snapshot's.
        later = Doc()
        later.get("other", type=Map)["x"] = "y"
        position = await store.append(room, chat, [later.get_update()])
        assert tuple(map(int, str(position).split("-"))) > tuple(
            map(int, str(positions[5]).split("-"))
        )
        assert len((await store.load(room, chat)).updates) == 3
    finally:
        await rc.aclose()
        await store.close()
