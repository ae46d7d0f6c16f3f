"""Check-in answers while the store cannot write (protocol.md §6.9, §11):
an answer is acknowledged only once stored; one the store did not take is
refused ``store_unavailable`` at once, stands, and is written when the
store is back; an anonymous one's receipt comes with the refusal (a real
``collab serve`` on SQLite and another process's write lock on its
database, as tests/faults/test_store_outages.py)."""

from __future__ import annotations

import pytest

from collab.client import CollabClientError
from collab.client_checkins import Checkins
from tests.faults.test_store_outages import Clients, WriteLock, clients, server, wait_store

ROOM = "outage-checkins"


async def member(group: Clients, url: str, sub: str, role: str = "participant") -> Checkins:
    """A member with a stable user id (a ``--dev`` token naming ``sub``)."""
    return Checkins(await group.member(url, ROOM, sub, role))


async def test_an_answer_the_store_did_not_take_is_refused_then_written(tmp_path):
    async with server(tmp_path) as srv, clients() as group:
        fac = await member(group, srv.url, "kim", "facilitator")
        ann = await member(group, srv.url, "ann")
        bob = await member(group, srv.url, "bob")
        named = (await fac.open("single", "Next?", ["Walk", "Talk"]))["id"]
        await ann.answer(named, 0)
        async with WriteLock(srv.db):
            with pytest.raises(CollabClientError) as refused:
                await bob.answer(named, 1)
            assert refused.value.code == "store_unavailable"
            # It stands: the facilitator sees it.
            assert (await fac.results(named))["counts"] == [1, 1]
        await wait_store(srv, "ok")
        await fac.close(named)
        # Anonymous: the refused answer's receipt comes with the error, so
        # the member can still change it.
        anon = (await fac.open("scale", "How anxious?", anonymous=True))["id"]
        async with WriteLock(srv.db):
            with pytest.raises(CollabClientError) as refused:
                await ann.answer(anon, 8)
            assert refused.value.code == "store_unavailable"
            assert anon in ann.receipts
        await wait_store(srv, "ok")

        # Written once the store is back: a restart keeps both.
        await srv.stop()
        await srv.start()
        fac2 = await member(group, srv.url, "kim", "facilitator")
        assert (await fac2.results(named))["counts"] == [1, 1]
        assert (await fac2.results(anon))["counts"][8] == 1
        ann2 = await member(group, srv.url, "ann")
        ann2.receipts = dict(ann.receipts)
        assert (await ann2.answer(anon, 2))["changed"] is True
        counts = (await fac2.results(anon))["counts"]
        assert counts[2] == 1 and sum(counts) == 1
