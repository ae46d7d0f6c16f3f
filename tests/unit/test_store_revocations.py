"""Every store keeps revocations the same way (memory, SQLite, Redis,
PostgreSQL), and a node's cache of them (rooms.revocations) follows another
node's changes."""

from __future__ import annotations

import pytest

from crdt.types import RoomId
from rooms.revocations import Revocations
from rooms.store import Revocation, Store
from tests.unit.test_store_contract import (  # noqa: F401
    postgres_server,
    redis_server_async,
    store,
)

NOW = 1_800_000_000_000.0


def revocation(id_: str, *, until: float = NOW + 60_000, **target: str) -> Revocation:
    room = target.pop("room", None)
    return Revocation(
        id=id_,
        until_ms=until,
        created_ms=NOW - 1,
        by="ops",
        room=RoomId(room) if room else None,
        **target,
    )


async def test_add_load_delete_and_the_version(store: Store):  # noqa: F811
    assert await store.load_revocations() == (0, [])
    v0 = await store.revocation_version()
    by_sub = revocation("a", sub="ann", room="clinic-7/a")
    by_jti = revocation("b", jti='t"1')
    await store.add_revocation(by_sub)
    await store.add_revocation(by_jti)
    v2, stored = await store.load_revocations()
    assert v2 == await store.revocation_version() and v2 != v0
    assert sorted(stored, key=lambda r: r.id) == [by_sub, by_jti]
    assert await store.delete_revocation("a") is True
    assert await store.delete_revocation("a") is False
    v3, stored = await store.load_revocations()
    assert v3 != v2 and stored == [by_jti]
    assert await store.revocation_version() == v3, "a delete of nothing changes nothing"


async def test_purge_deletes_only_the_expired(store: Store):  # noqa: F811
    await store.add_revocation(revocation("old", sub="a", until=NOW - 1))
    await store.add_revocation(revocation("edge", sub="b", until=NOW))
    await store.add_revocation(revocation("live", sub="c", until=NOW + 1))
    assert await store.purge_revocations(NOW) == 2
    assert [r.id for r in (await store.load_revocations())[1]] == ["live"]
    assert await store.purge_revocations(NOW) == 0


def test_what_a_revocation_covers():
    by_sub = revocation("a", sub="ann")
    in_room = revocation("b", sub="ann", room="r1")
    by_jti = revocation("c", jti="t1")
    assert by_sub.applies(sub="ann", jti=None, room="r9", now_ms=NOW)
    assert not by_sub.applies(sub="bob", jti=None, room="r9", now_ms=NOW)
    assert not by_sub.applies(sub="ann", jti=None, room="r9", now_ms=NOW + 60_000), "expired"
    assert in_room.applies(sub="ann", jti="x", room="r1", now_ms=NOW)
    assert not in_room.applies(sub="ann", jti="x", room="r2", now_ms=NOW)
    assert by_jti.applies(sub="anyone", jti="t1", room="r", now_ms=NOW)
    assert not by_jti.applies(sub="anyone", jti="t2", room="r", now_ms=NOW)
    assert not by_jti.applies(sub="anyone", jti=None, room="r", now_ms=NOW)
    assert Revocation.from_json(by_jti.as_json()) == by_jti


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis", "postgres"], indirect=True)
async def test_a_node_sees_another_nodes_revocations(store: Store):  # noqa: F811
    seen: list[list[str]] = []
    here = Revocations(store, clock_ms=lambda: NOW)
    there = Revocations(
        store, clock_ms=lambda: NOW, on_new=lambda new: seen.append([r.id for r in new])
    )
    await there.ensure_loaded()
    await here.add(revocation("a", sub="ann"))
    assert there.match(sub="ann", jti=None, room="r") is None, "not before it polls"
    assert [r.id for r in await there.refresh()] == ["a"]
    assert there.match(sub="ann", jti=None, room="r") is not None
    assert await there.refresh() == [], "nothing new the second time"
    await here.delete("a")
    await there.refresh()
    assert there.match(sub="ann", jti=None, room="r") is None
    assert seen == [["a"]]
