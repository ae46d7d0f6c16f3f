"""The webhook outbox's contract (rooms.store.OutboxStore, rooms.outbox), on
every store that keeps one: memory, SQLite and Redis (a real redis-server
each test starts), and PostgreSQL (the server tests/postgres starts).

Claims lease entries, retries reschedule them, done deletes them, adding
is idempotent, two claims never share an entry, and the SQLite and Redis
outboxes survive reopening the store.
"""

from __future__ import annotations

import asyncio

import pytest

from rooms.outbox import OutboxEntry
from rooms.redis_keys import OUTBOX_KEYS
from rooms.store import OutboxStore

T0 = 1_700_000_000_000.0
LEASE = 30_000.0


def entry(n: int, *, next_ms: float = T0, created_ms: float | None = None) -> OutboxEntry:
    event_id = f"evt_{n:04d}"
    body = b'{"id":"' + event_id.encode() + '","room":"r/ü","data":{}}'.encode()
    return OutboxEntry(
        id=f"{event_id}:clinic",
        event_id=event_id,
        event_type="session.ended",
        endpoint="clinic",
        room="clinic-7/ü",
        body=body,
        created_ms=T0 + n if created_ms is None else created_ms,
        next_ms=next_ms,
    )


def ids(entries: list[OutboxEntry]) -> list[str]:
    return [e.id for e in entries]


async def test_the_store_is_an_outbox_store(store):
    assert isinstance(store, OutboxStore)


async def test_claim_returns_due_entries_earliest_first_with_their_fields(store):
    later = entry(1, next_ms=T0 + 500)
    first = entry(2, next_ms=T0 - 500)
    future = entry(3, next_ms=T0 + 10_000)
    await store.outbox_add([later, first, future])

    claimed = await store.outbox_claim(T0 + 1000, 10, LEASE)

    assert ids(claimed) == [first.id, later.id], "due ones only, earliest due first"
    got = claimed[0]
    assert (got.event_id, got.event_type, got.endpoint, got.room) == (
        first.event_id,
        "session.ended",
        "clinic",
        "clinic-7/ü",
    )
    assert got.body == first.body, "the body comes back byte for byte"
    assert got.created_ms == first.created_ms and got.attempts == 0
    assert got.next_ms == T0 + 1000 + LEASE, "a claimed entry carries its lease's end"


async def test_claim_respects_the_limit(store):
    await store.outbox_add([entry(n, next_ms=T0 + n) for n in range(5)])
    first = await store.outbox_claim(T0 + 100, 2, LEASE)
    second = await store.outbox_claim(T0 + 100, 2, LEASE)
    third = await store.outbox_claim(T0 + 100, 2, LEASE)
    assert ids(first) == [entry(0).id, entry(1).id]
    assert ids(second) == [entry(2).id, entry(3).id]
    assert ids(third) == [entry(4).id]
    assert await store.outbox_claim(T0 + 100, 0, LEASE) == []


async def test_a_claimed_entry_is_leased_until_its_lease_ends(store):
    await store.outbox_add([entry(1)])
    assert ids(await store.outbox_claim(T0, 10, LEASE)) == [entry(1).id]
    assert await store.outbox_claim(T0, 10, LEASE) == [], "leased: not claimed again"
    assert await store.outbox_claim(T0 + LEASE - 1, 10, LEASE) == []
    again = await store.outbox_claim(T0 + LEASE, 10, LEASE)
    assert ids(again) == [entry(1).id], "a lease that ran out (a node stopped): claimed again"


async def test_retry_reschedules_with_the_attempts_made(store):
    await store.outbox_add([entry(1)])
    (claimed,) = await store.outbox_claim(T0, 10, LEASE)
    await store.outbox_retry(claimed.id, T0 + 2000, 1)
    assert await store.outbox_claim(T0 + 1999, 10, LEASE) == [], "not before it is due"
    (again,) = await store.outbox_claim(T0 + 2000, 10, LEASE)
    assert again.attempts == 1 and again.body == entry(1).body
    await store.outbox_retry(again.id, T0 + 3000, 2)
    (third,) = await store.outbox_claim(T0 + 5000, 10, LEASE)
    assert third.attempts == 2


async def test_done_deletes_and_retry_never_brings_an_entry_back(store):
    await store.outbox_add([entry(1), entry(2)])
    await store.outbox_claim(T0, 10, LEASE)
    await store.outbox_done(entry(1).id)
    await store.outbox_done(entry(1).id)  # again: nothing
    await store.outbox_done("evt_none:clinic")
    await store.outbox_retry(entry(1).id, T0, 5)  # delivered elsewhere meanwhile
    await store.outbox_retry(entry(2).id, T0, 1)
    assert ids(await store.outbox_claim(T0 + 1, 10, LEASE)) == [entry(2).id]
    stats = await store.outbox_stats()
    assert stats.entries == 1 and stats.oldest_created_ms == entry(2).created_ms


async def test_adding_an_id_again_keeps_the_first(store):
    await store.outbox_add([entry(1)])
    (claimed,) = await store.outbox_claim(T0, 10, LEASE)
    await store.outbox_retry(claimed.id, T0 + 5000, 3)
    # The same entry written again (a write that went through but was
    # reported failed): it is not reset, nor made due again.
    await store.outbox_add([entry(1), entry(2)])
    assert ids(await store.outbox_claim(T0 + 1, 10, LEASE)) == [entry(2).id]
    (kept,) = await store.outbox_claim(T0 + 5000, 10, LEASE)
    assert kept.id == entry(1).id and kept.attempts == 3
    assert (await store.outbox_stats()).entries == 2


async def test_stats_count_the_entries_and_date_the_oldest(store):
    empty = await store.outbox_stats()
    assert (empty.entries, empty.oldest_created_ms) == (0, None)
    await store.outbox_add([entry(1, created_ms=T0 + 50), entry(2, created_ms=T0 + 10)])
    stats = await store.outbox_stats()
    assert (stats.entries, stats.oldest_created_ms) == (2, T0 + 10)


async def test_concurrent_claims_never_share_an_entry(opener):
    """Two stores on the same data (two nodes sharing Redis; two processes on
    one SQLite file) claiming at once: every entry goes to exactly one."""
    if opener.kind == "memory":
        pytest.skip("a memory store is one process's")
    a, b = await opener(), await opener()
    await a.outbox_add([entry(n) for n in range(40)])
    results = await asyncio.gather(
        *(s.outbox_claim(T0, 7, LEASE) for s in (a, b, a, b, a, b, a, b))
    )
    claimed = [e.id for result in results for e in result]
    assert len(claimed) == len(set(claimed)) == 40, "each entry claimed once, none lost"


async def test_the_outbox_survives_reopening_the_store(opener):
    if opener.kind == "memory":
        pytest.skip("a memory store is lost with its process")
    first = await opener()
    await first.outbox_add([entry(1), entry(2, next_ms=T0 + 20_000)])
    (claimed,) = await first.outbox_claim(T0, 10, LEASE)
    await first.outbox_retry(claimed.id, T0 + 1000, 1)
    await first.close()

    reopened = await opener()
    (again,) = await reopened.outbox_claim(T0 + 1000, 10, LEASE)
    assert again.id == entry(1).id and again.attempts == 1 and again.body == entry(1).body
    (later,) = await reopened.outbox_claim(T0 + 20_000, 10, LEASE)
    assert later.id == entry(2).id and later.created_ms == entry(2).created_ms


async def test_a_redis_record_no_node_wrote_is_never_claimed(opener):
    """Whoever can write to Redis must not make a node send a signed body:
    records carry a MAC under the cluster key (rooms.outbox.OutboxMac)."""
    if opener.kind != "redis":
        pytest.skip("only Redis is shared with other writers")
    store = await opener()
    await store.outbox_add([entry(1)])
    k = OUTBOX_KEYS
    forged = entry(2).record()
    await store.client.hset(k.entries, entry(2).id, b"." + forged)  # no MAC
    await store.client.zadd(k.due, {entry(2).id: T0})
    stolen = await store.client.hget(k.entries, entry(1).id)
    await store.client.hset(k.entries, entry(3).id, stolen)  # a genuine record, moved
    await store.client.zadd(k.due, {entry(3).id: T0})
    forgeries: list[None] = []
    store.on_forged = lambda: forgeries.append(None)

    claimed = await store.outbox_claim(T0 + 10, 10, LEASE)

    assert ids(claimed) == [entry(1).id]
    assert len(forgeries) == 2
    assert await store.client.hexists(k.entries, entry(2).id) == 0, "dropped"
    assert (await store.outbox_stats()).entries == 1
