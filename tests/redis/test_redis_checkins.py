"""Check-ins with two nodes on Redis (protocol.md §6.9): answers taken on
both nodes add up (each node keeps counts of its own in meta, so neither
loses the other's), the facilitator on one node sees answers given on the
other, a member changes an anonymous answer on the other node with the
receipt the first gave, and Redis holds only the newest counts."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest

from collab.client import CollabClient
from collab.client_checkins import Checkins, answered_of
from rooms.checkin_seal import CheckinVault, SealBroken
from tests.conftest import mint
from tests.redis.conftest import CLUSTER_KEY
from tests.waiting import until

pytestmark = pytest.mark.slow

ROOM = "clinic-5/checkins"
_SEALED = re.compile(rb"[A-Za-z0-9_-]{40,}")


def who(sub: str, role: str = "participant") -> dict[str, str]:
    return {"token": mint(ROOM, role=role, name=sub.title(), sub=sub)}


async def counts_become(fac: Checkins, cid: str, expected: list[int]) -> None:
    """Wait until the facilitator's results are ``expected`` (asked again
    at most every 0.2 s: within the connection's events rate)."""
    loop = asyncio.get_running_loop()
    asked = [0.0]

    async def ask() -> bool:
        if loop.time() - asked[0] < 0.2:
            return False
        asked[0] = loop.time()
        return (await fac.results(cid))["counts"] == expected

    await until(ask, what=f"counts {expected}")


async def stored_values(redis_server: Any) -> list[bytes]:
    """Every value Redis holds, by its type (DUMP may compress them)."""
    redis = redis_server.client()
    values: list[bytes] = []
    try:
        async for key in redis.scan_iter("*"):
            kind = (await redis.type(key)).decode()
            if kind == "string":
                values.append(await redis.get(key) or b"")
            elif kind == "stream":
                for _, fields in await redis.xrange(key):
                    values.extend(fields.values())
            elif kind == "hash":
                values.extend((await redis.hgetall(key)).values())
            elif kind == "list":
                values.extend(await redis.lrange(key, 0, -1))
            elif kind == "zset":
                values.extend(await redis.zrange(key, 0, -1))
            elif kind == "set":
                values.extend(await redis.smembers(key))
    finally:
        await redis.aclose()
    return values


async def test_answers_on_two_nodes_add_up(redis_server, in_process_nodes, clients):
    a, b = await in_process_nodes("A", "B")
    fac_client = await clients(a.url, ROOM, "meta", auth=who("kim", "facilitator"))
    fac = Checkins(fac_client)
    cid = (await fac.open("scale", "How anxious?", anonymous=True))["id"]
    members: dict[str, Checkins] = {}
    for user, node in (("ann", a), ("bob", b), ("cat", b), ("dan", a), ("eli", b)):
        members[user] = Checkins(await clients(node.url, ROOM, auth=who(user)))
    # Answers at once on both nodes.
    values = {"ann": 3, "bob": 3, "cat": 8, "dan": 0, "eli": 8}
    await asyncio.gather(*(members[u].answer(cid, v) for u, v in values.items()))
    expected = [0] * 11
    for v in values.values():
        expected[v] += 1
    await counts_become(fac, cid, expected)
    await fac_client.wait_for(lambda: answered_of(fac_client, cid) == set(values), timeout_s=10)

    # Ann answered on A; she changes it on B with A's receipt.
    ann_b = Checkins(await clients(b.url, ROOM, auth=who("ann")))
    ann_b.receipts = dict(members["ann"].receipts)
    assert (await ann_b.answer(cid, 10))["changed"] is True
    expected[3] -= 1
    expected[10] += 1
    await counts_become(fac, cid, expected)

    # A named one: answered on B, seen per person by the facilitator on A.
    await fac.close(cid)
    named = (await fac.open("single", "Next?", ["Walk", "Talk"]))["id"]
    await members["bob"].answer(named, 1)
    await members["ann"].answer(named, 0)
    await counts_become(fac, named, [1, 1])
    assert (await fac.results(named))["answers"] == {"ann": 0, "bob": 1}

    # Shown on A: a participant on B reads the counts.
    await fac.reveal(cid)
    shown = await members["cat"].results(cid)
    assert shown["counts"] == expected and shown["revealed"] is True

    # What Redis holds: the counts of each node, the newest only.
    vault = CheckinVault.from_secret(CLUSTER_KEY)
    contexts = [f"tally|{ROOM}|{cid}|{n}" for n in ("A", "B")]
    dumps = await stored_values(redis_server)
    found: list[Any] = []
    for blob in dumps:
        runs = {m.decode() for m in _SEALED.findall(blob or b"")}
        for text in runs | {r[1:] for r in runs} | {r[2:] for r in runs}:
            for context in contexts:
                with contextlib.suppress(SealBroken):
                    found.append((context[-1], vault.open(context, text)))
    by_node: dict[str, list[Any]] = {}
    for node, value in found:
        by_node.setdefault(node, [])
        if value not in by_node[node]:
            by_node[node].append(value)
    assert set(by_node) == {"A", "B"}
    assert all(len(v) == 1 for v in by_node.values()), by_node
    total = [x + y for x, y in zip(by_node["A"][0], by_node["B"][0], strict=True)]
    assert total == expected


async def test_a_late_node_sees_the_checkins(redis_server, in_process_nodes, clients):
    a, b = await in_process_nodes("A", "B")
    fac = Checkins(await clients(a.url, ROOM, "meta", auth=who("kim", "facilitator")))
    cid = (await fac.open("feelings", "How are you arriving?"))["id"]
    await Checkins(await clients(a.url, ROOM, auth=who("ann"))).answer(cid, "calm")
    late: CollabClient = await clients(b.url, ROOM, "meta", auth=who("kim", "facilitator"))
    assert answered_of(late, cid) == {"ann"}
    res = await Checkins(late).results(cid)
    assert res["counts"][res["options"].index("calm")] == 1
