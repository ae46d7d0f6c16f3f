"""Raised hands (protocol.md §6.6): a participant raises and lowers their
own hand, everyone sees the queue in raising order in meta's ``hands``, the
facilitator lowers one hand or all (audited), observers may not raise one,
a removed user's hand goes down, and the queue survives a reconnect and a
restart."""

from __future__ import annotations

from typing import Any

import pytest

from collab.client import CollabClient, CollabClientError
from rooms.hands import read_hands
from tests.conftest import ADMIN_KEY, SECRET, mint

ROOM = "clinic-7/hands"


def queue(client: CollabClient) -> list[str]:
    return [h.user_id for h in client.raised_hands()]


def token(sub: str, role: str = "participant") -> dict[str, str]:
    return {"token": mint(ROOM, role=role, name=sub.title(), sub=sub)}


async def refused(client: CollabClient, event: str, payload: Any) -> str:
    with pytest.raises(CollabClientError) as info:
        await client.call(event, payload)
    return info.value.code


async def records(server: Any, action: str) -> list[Any]:
    await server.registry.flush_audit()
    return [r for r in await server.registry.store.read_audit(ROOM) if r.action == action]


async def test_hands_queue_in_raising_order_and_the_facilitator_lowers_them(
    token_server, client_factory
):
    url = token_server.url
    fac = await client_factory(url, ROOM, "meta", auth=token("kim", "facilitator"))
    ann = await client_factory(url, ROOM, auth=token("ann"))
    bob = await client_factory(url, ROOM, "chat", auth=token("bob"))
    watcher = await client_factory(url, ROOM, "meta", auth=token("eve", "observer"))

    first = await ann.raise_hand()
    assert first["raised"] is True and isinstance(first["ts"], float)
    second = await bob.raise_hand()
    assert second["ts"] >= first["ts"]
    # Everyone on meta sees the queue, in raising order, with the server's times.
    for client in (fac, watcher):
        await client.wait_for(lambda c=client: queue(c) == ["ann", "bob"])
    assert [h.ts for h in fac.raised_hands()] == [first["ts"], second["ts"]]
    # Raising again keeps the place (and the time); nothing is written.
    again = await ann.raise_hand()
    assert again == {"ok": True, "raised": True, "ts": first["ts"]}
    # Lowering one's own hand, and lowering it twice.
    assert await ann.raise_hand(False) == {"ok": True, "raised": False}
    assert await ann.raise_hand(False) == {"ok": True, "raised": False}
    await fac.wait_for(lambda: queue(fac) == ["bob"])
    await ann.raise_hand()
    await fac.wait_for(lambda: queue(fac) == ["bob", "ann"])

    # The facilitator lowers one hand, then all; a participant may not.
    assert await refused(bob, "mod:lower-hands", {}) == "permission_denied"
    ack = await fac.lower_hands("bob")
    assert ack["ok"] is True and "state" in ack
    await watcher.wait_for(lambda: queue(watcher) == ["ann"])
    await fac.lower_hands("bob")  # already down: no error, nothing written
    await bob.raise_hand()
    await fac.wait_for(lambda: queue(fac) == ["ann", "bob"])
    await fac.lower_hands()
    await watcher.wait_for(lambda: queue(watcher) == [])

    hands = await records(token_server, "hand")
    assert [(r.user_id, r.outcome, r.detail) for r in hands] == [
        ("bob", "permission_denied", ""),
        ("kim", "ok", "bob hands=1"),
        ("kim", "ok", "bob hands=0"),
        ("kim", "ok", "all hands=2"),
    ]


async def test_bad_input_and_roles_are_refused_with_typed_errors(token_server, client_factory):
    url = token_server.url
    fac = await client_factory(url, ROOM, auth=token("kim", "facilitator"))
    par = await client_factory(url, ROOM, auth=token("ann"))
    obs = await client_factory(url, ROOM, "meta", auth=token("eve", "observer"))

    assert await refused(obs, "hand:raise", {"raised": True}) == "permission_denied"
    for payload in ({"raised": "yes"}, {"raised": 1}, {"raised": True, "who": "x"}, "up", [1]):
        assert await refused(par, "hand:raise", payload) == "invalid_payload", payload
    for payload in ({"userId": 7}, {"userId": "bad id!"}, {"all": True}, "everyone"):
        assert await refused(fac, "mod:lower-hands", payload) == "invalid_payload", payload
    # A facilitator may raise a hand too (to take a turn in a co-facilitated group).
    assert (await fac.raise_hand())["raised"] is True
    await obs.wait_for(lambda: queue(obs) == ["kim"])
    # A participant made an observer cannot raise a hand, but can take theirs down.
    await par.raise_hand()
    await fac.call("mod:role", {"userId": "ann", "role": "observer"})
    await par.wait_for(lambda: par.room_state.get("roles", {}).get("ann") == "observer")
    assert await par.raise_hand(False) == {"ok": True, "raised": False}
    assert await refused(par, "hand:raise", {}) == "permission_denied"
    # After the end nobody raises a hand; the facilitator still lowers them.
    await fac.call("mod:end", {})
    await fac.wait_for(lambda: fac.room_state.get("ended") is True)
    assert await refused(fac, "hand:raise", {"raised": True}) == "session_ended"
    await fac.lower_hands()
    await obs.wait_for(lambda: queue(obs) == [])


async def test_a_removed_users_hand_goes_down(token_server, client_factory):
    url = token_server.url
    fac = await client_factory(url, ROOM, auth=token("kim", "facilitator"))
    watcher = await client_factory(url, ROOM, "meta", auth=token("bob"))
    ann = await client_factory(url, ROOM, auth=token("ann"), reconnection=False)
    await ann.raise_hand()
    await watcher.raise_hand()
    await watcher.wait_for(lambda: queue(watcher) == ["ann", "bob"])
    await fac.call("mod:remove", {"userId": "ann"})
    await watcher.wait_for(lambda: queue(watcher) == ["bob"])
    # Readmitted, the hand stays down.
    await fac.call("mod:remove", {"userId": "ann", "removed": False})
    assert queue(watcher) == ["bob"]


async def test_events_past_the_rate_are_refused(server_factory, client_factory):
    srv = await server_factory(dev=False, jwt_secret=SECRET, event_burst=4, event_rate_per_s=0.01)
    par = await client_factory(srv.url, ROOM, auth=token("ann"))
    # The connect's sync-step-1 took one: three more go in, the next is refused.
    codes = []
    for raised in (True, False, True, False, True):
        try:
            await par.raise_hand(raised)
            codes.append("ok")
        except CollabClientError as exc:
            codes.append(exc.code)
    assert codes == ["ok", "ok", "ok", "rate_limited", "rate_limited"]


async def test_the_queue_survives_a_reconnect_and_a_restart(
    server_factory, client_factory, tmp_path
):
    data = tmp_path / "data"
    options = {
        "dev": False,
        "jwt_secret": SECRET,
        "admin_key": ADMIN_KEY,
        "store": "sqlite",
        "data_dir": data,
    }
    srv = await server_factory(**options)
    ann = await client_factory(srv.url, ROOM, auth=token("ann"))
    bob = await client_factory(srv.url, ROOM, auth=token("bob"))
    raised = await ann.raise_hand()
    await bob.raise_hand()
    # A reconnect: the same user finds their hand up, in its place.
    await ann.close()
    again = await client_factory(srv.url, ROOM, "meta", auth=token("ann"))
    assert queue(again) == ["ann", "bob"]
    assert (await again.raise_hand())["ts"] == raised["ts"]
    await again.close()
    await bob.close()
    await srv.stop()

    # A restart on the same SQLite file.
    srv2 = await server_factory(**options)
    meta = await client_factory(srv2.url, ROOM, "meta", auth=token("kim", "facilitator"))
    assert queue(meta) == ["ann", "bob"]
    assert meta.raised_hands()[0].ts == raised["ts"]
    stored = srv2.registry.rooms[ROOM].docs["meta"].engine.read_map("hands")
    assert [h.user_id for h in read_hands(stored)] == ["ann", "bob"]
