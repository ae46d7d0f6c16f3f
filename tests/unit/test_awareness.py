"""crdt.awareness: the y-protocols awareness codec and the AwarenessTable.

The hex vectors were produced once with y-protocols 1.0.7
``encodeAwarenessUpdate`` (tests/interop/node_modules) and are embedded here.
"""

from __future__ import annotations

import orjson
import pytest

from crdt.awareness import (
    AwarenessEntry,
    AwarenessTable,
    decode_awareness,
    encode_awareness,
    stamp_user,
)
from crdt.errors import (
    AwarenessClientNotOwned,
    CollabError,
    CrdtCode,
    MalformedAwareness,
    MessageTooLarge,
)
from crdt.lib0 import Encoder

LIMITS = {"max_entries": 100, "max_state_bytes": 4096}

# Awareness(doc with clientID 3000000000).setLocalState({user, cursor}):
# encodeAwarenessUpdate(awareness, [3000000000])
JS_STATE = '{"user":{"name":"Ann","color":"#ff0000"},"cursor":{"x":1.5,"y":2}}'
JS_AWARENESS = bytes.fromhex(
    "0180bcc1960b0142"
    "7b2275736572223a7b226e616d65223a22416e6e222c22636f6c6f72223a2223666630303030227d2c"
    "22637572736f72223a7b2278223a312e352c2279223a327d7d"
)
# ... then setLocalStateField('cursor', null): clock 2
JS_STATE_2 = '{"user":{"name":"Ann","color":"#ff0000"},"cursor":null}'
JS_AWARENESS_2 = bytes.fromhex(
    "0180bcc1960b0237"
    "7b2275736572223a7b226e616d65223a22416e6e222c22636f6c6f72223a2223666630303030227d2c"
    "22637572736f72223a6e756c6c7d"
)
# client 42 after setLocalState(null): clock 1, state "null"
JS_REMOVAL = bytes.fromhex("012a01046e756c6c")


def decode(data: bytes, **limits):
    return decode_awareness(data, **{**LIMITS, **limits})


def raw_update(*entries: tuple[int, int, bytes]) -> bytes:
    enc = Encoder()
    enc.write_var_uint(len(entries))
    for client, clock, state in entries:
        enc.write_var_uint(client)
        enc.write_var_uint(clock)
        enc.write_var_bytes(state)
    return enc.to_bytes()


# -- codec -----------------------------------------------------------------------------


def test_decode_y_protocols_update():
    (entry,) = decode(JS_AWARENESS)
    assert entry == AwarenessEntry(3000000000, 1, JS_STATE)
    assert entry.state_value() == {
        "user": {"name": "Ann", "color": "#ff0000"},
        "cursor": {"x": 1.5, "y": 2},
    }
    assert decode(JS_AWARENESS_2) == (AwarenessEntry(3000000000, 2, JS_STATE_2),)


def test_decode_y_protocols_removal():
    (entry,) = decode(JS_REMOVAL)
    assert entry == AwarenessEntry(42, 1, None)
    assert entry.state_value() is None


@pytest.mark.parametrize("data", [JS_AWARENESS, JS_AWARENESS_2, JS_REMOVAL])
def test_encode_matches_y_protocols_bytes(data):
    assert encode_awareness(decode(data)) == data


def test_round_trip_many_entries():
    entries = (
        AwarenessEntry(1, 5, '{"cursor":null}'),
        AwarenessEntry(2**53 - 1, 2**32, '{"name":"Zoë 😀"}'),
        AwarenessEntry(7, 3, None),
        AwarenessEntry(0, 0, "{}"),
    )
    data = encode_awareness(entries)
    assert data[0] == 4
    assert decode(data) == entries
    assert encode_awareness([]) == b"\x00"
    assert decode(b"\x00") == ()


def test_state_text_is_kept_verbatim():
    state = b'{ "b" : 1,\n "a": [1.50, 2] }'
    (entry,) = decode(raw_update((9, 1, state)))
    assert entry.state == state.decode()
    assert encode_awareness([entry]) == raw_update((9, 1, state))


def test_null_state_spellings():
    (entry,) = decode(raw_update((9, 1, b" null ")))
    assert entry.state is None
    assert encode_awareness([entry]) == raw_update((9, 1, b"null"))


def test_max_entries():
    three = raw_update((1, 1, b"{}"), (2, 1, b"{}"), (3, 1, b"{}"))
    assert len(decode(three, max_entries=3)) == 3
    with pytest.raises(MessageTooLarge):
        decode(three, max_entries=2)


def test_max_state_bytes():
    state = orjson.dumps({"pad": "x" * 90})
    assert decode(raw_update((1, 1, state)), max_state_bytes=len(state))
    with pytest.raises(MessageTooLarge):
        decode(raw_update((1, 1, state)), max_state_bytes=len(state) - 1)
    assert MessageTooLarge.code is CrdtCode.MESSAGE_TOO_LARGE


@pytest.mark.parametrize(
    "state",
    [b"{", b"", b"nul", b"{'a': 1}", b'{"a": 1} x', b"\xff\xfe", b'{"a": "\xff"}', b"NaN"],
)
def test_non_json_state(state):
    with pytest.raises(MalformedAwareness):
        decode(raw_update((1, 1, state)))


@pytest.mark.parametrize("state", [b"[]", b"[1]", b"1", b"1.5", b'"text"', b"true", b"false"])
def test_non_object_state(state):
    with pytest.raises(MalformedAwareness):
        decode(raw_update((1, 1, state)))


@pytest.mark.parametrize("extra", [b"\x00", b"\x01", b"garbage"])
def test_trailing_bytes(extra):
    with pytest.raises(MalformedAwareness, match="trailing"):
        decode(JS_AWARENESS + extra)


@pytest.mark.parametrize("data", [JS_AWARENESS, JS_REMOVAL])
def test_truncations(data):
    for cut in range(len(data)):
        with pytest.raises(MalformedAwareness):
            decode(data[:cut])


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff\xff\x0f",  # 2**32 - 1 entries in no bytes
        b"\x02\x01\x01\x02{}",  # two entries, one present
        b"\x01" + b"\x80" * 7 + b"\x10\x01\x02{}",  # client id 2**53: past MAX_SAFE_INTEGER
        b"\x01\x01" + b"\x80" * 8 + b"\x10\x02{}",  # clock 2**60
        b"\x01\x01\x01\xff\xff\xff\xff\x0f{}",  # state length past the end
    ],
)
def test_malformed_structure(data):
    with pytest.raises(MalformedAwareness):
        decode(data, max_entries=2**40)


def test_error_classes():
    for cls in (MalformedAwareness, MessageTooLarge, AwarenessClientNotOwned):
        assert issubclass(cls, CollabError)
    assert MalformedAwareness.code is CrdtCode.MALFORMED_AWARENESS
    assert AwarenessClientNotOwned.code is CrdtCode.AWARENESS_CLIENT_NOT_OWNED


def test_stamp_user():
    entries = (
        AwarenessEntry(1, 2, '{"user":{"name":"Mallory"},"cursor":{"x":1}}'),
        AwarenessEntry(2, 3, None),
        AwarenessEntry(3, 1, "{}"),
    )
    stamped = stamp_user(entries, {"id": "u1", "name": "Ann"})
    assert [(e.client_id, e.clock) for e in stamped] == [(1, 2), (2, 3), (3, 1)]
    assert stamped[0].state_value() == {"user": {"id": "u1", "name": "Ann"}, "cursor": {"x": 1}}
    assert stamped[1].state is None
    assert stamped[2].state_value() == {"user": {"id": "u1", "name": "Ann"}}
    assert entries[0].state_value()["user"] == {"name": "Mallory"}  # inputs untouched


def test_stamp_user_drops_fields_not_on_the_allowed_list():
    """Fields outside the allow-list are dropped, not refused: an observer's
    client (or anyone's) cannot relay what the platform did not allow."""
    state = {
        "user": {"name": "Mallory"},
        "cursor": {"x": 1},
        "diagnosis": "F32.1",
        "nested": {"cursor": 2},
    }
    entries = (entry(1, 2, state), AwarenessEntry(2, 3, None), entry(3, 1, {"notes": "x"}))
    stamped = stamp_user(entries, {"id": "u1"}, allowed_fields=frozenset({"cursor", "tool"}))
    assert [(e.client_id, e.clock) for e in stamped] == [(1, 2), (2, 3), (3, 1)]
    assert stamped[0].state_value() == {"user": {"id": "u1"}, "cursor": {"x": 1}}
    assert stamped[1].state is None, "a removal stays a removal"
    assert stamped[2].state_value() == {"user": {"id": "u1"}}, "nothing left but the stamp"


def test_stamp_user_always_stamps_user_even_when_it_is_not_listed():
    stamped = stamp_user(
        [entry(1, 1, {"user": {"id": "forged"}, "cursor": [0, 0]})],
        {"id": "u1"},
        allowed_fields=frozenset({"cursor"}),
    )
    assert stamped[0].state_value() == {"user": {"id": "u1"}, "cursor": [0, 0]}


def test_stamp_user_without_a_list_keeps_every_field():
    state = {"cursor": 1, "anything": {"deep": True}}
    (stamped,) = stamp_user([entry(1, 1, state)], {"id": "u1"}, allowed_fields=None)
    assert stamped.state_value() == {**state, "user": {"id": "u1"}}


# -- table -------------------------------------------------------------------------------


def entry(client: int, clock: int, state: dict | None = None) -> AwarenessEntry:
    return AwarenessEntry(client, clock, None if state is None else orjson.dumps(state).decode())


def states(table: AwarenessTable) -> dict[int, tuple[int, object]]:
    return {e.client_id: (e.clock, e.state_value()) for e in table.snapshot()}


def test_higher_clock_wins():
    table = AwarenessTable()
    first = entry(1, 1, {"v": 1})
    assert table.apply([first], owner="c1", principal="u1") == [first]
    assert table.apply([entry(1, 1, {"v": "same clock"})], owner="c1", principal="u1") == []
    assert table.apply([entry(1, 0, {"v": "older"})], owner="c1", principal="u1") == []
    newer = entry(1, 3, {"v": 3})
    assert table.apply([newer], owner="c1", principal="u1") == [newer]
    assert states(table) == {1: (3, {"v": 3})}
    assert len(table) == 1


def test_clock_zero_is_not_news():
    """y-protocols: an unknown client counts as clock 0, so clock 0 never applies."""
    table = AwarenessTable()
    assert table.apply([entry(1, 0, {"v": 0})], owner="c1", principal="u1") == []
    assert table.snapshot() == []


def test_equal_clock_only_removes():
    table = AwarenessTable()
    table.apply([entry(1, 4, {"v": 1})], owner="c1", principal="u1")
    removal = entry(1, 4)
    assert table.apply([removal], owner="c1", principal="u1") == [removal]
    assert table.snapshot() == []
    assert len(table) == 0
    # removing again at the same clock changes nothing
    assert table.apply([entry(1, 4)], owner="c1", principal="u1") == []
    # and a state at that clock does not resurrect it; a later one does
    assert table.apply([entry(1, 4, {"v": 2})], owner="c1", principal="u1") == []
    assert table.apply([entry(1, 5, {"v": 2})], owner="c1", principal="u1") == [
        entry(1, 5, {"v": 2})
    ]


def test_removal_of_unknown_client_is_ignored():
    """A removal never claims a client id (the provider sends removals of the
    others when it reconnects; the id's owner must still be able to return)."""
    table = AwarenessTable()
    assert table.apply([entry(9, 2)], owner="c1", principal="u1") == []
    assert table.owners() == set()
    assert table.apply([entry(9, 3, {"back": True})], owner="c2", principal="u2")
    assert table.owners() == {"c2"}


def test_echoes_of_relayed_states_are_ignored():
    """y-socket.io sends back the states the server relayed to it, and the
    removals of the others when its socket closes: neither is refused."""
    table = AwarenessTable()
    table.apply([entry(1, 4, {"who": "ann"})], owner="c1", principal="ann")
    table.apply([entry(2, 1, {"who": "bob"})], owner="c2", principal="bob")
    before = states(table)
    echo = [entry(1, 4, {"who": "ann"}), entry(1, 3, {"older": 1}), entry(1, 5)]
    assert table.apply(echo, owner="c2", principal="bob") == []
    assert states(table) == before
    assert table.owners() == {"c1", "c2"}
    # bob's own entries in the same update still apply
    mixed = [entry(1, 4, {"who": "ann"}), entry(2, 2, {"who": "bob", "v": 2})]
    assert table.apply(mixed, owner="c2", principal="bob") == [mixed[1]]


def test_batch_returns_only_changes():
    table = AwarenessTable()
    table.apply([entry(1, 2, {"a": 1})], owner="c1", principal="u1")
    batch = [entry(1, 1, {"stale": True}), entry(2, 1, {"b": 1}), entry(1, 3, {"a": 2})]
    assert table.apply(batch, owner="c1", principal="u1") == [batch[1], batch[2]]
    assert states(table) == {1: (3, {"a": 2}), 2: (1, {"b": 1})}


def test_other_principal_cannot_speak_for_a_client():
    table = AwarenessTable()
    table.apply([entry(1, 1, {"who": "ann"})], owner="c1", principal="ann")
    table.apply([entry(2, 1, {"who": "bob"})], owner="c2", principal="bob")
    before = states(table)
    for attempt in (
        [entry(1, 9, {"who": "bob"})],
        [entry(2, 2, {"ok": 1}), entry(1, 9, {"who": "bob"})],  # all or nothing
    ):
        with pytest.raises(AwarenessClientNotOwned):
            table.apply(attempt, owner="c2", principal="bob")
        assert states(table) == before
    # nor remove it: the removal is ignored (an echo), the owner's state stays
    assert table.apply([entry(1, 9)], owner="c2", principal="bob") == []
    assert states(table) == before
    assert table.owners() == {"c1", "c2"}


def test_same_principal_may_take_over():
    """A reconnect (new connection, same user) adopts the old client id."""
    table = AwarenessTable()
    table.apply([entry(1, 1, {"v": 1})], owner="old", principal="ann")
    changed = table.apply([entry(1, 2, {"v": 2})], owner="new", principal="ann")
    assert changed == [entry(1, 2, {"v": 2})]
    assert table.owners() == {"new"}
    # the old connection leaving no longer removes the client
    assert table.remove_owner("old") == []
    assert states(table) == {1: (2, {"v": 2})}
    assert table.remove_owner("new") == [AwarenessEntry(1, 3, None)]


def test_takeover_with_a_stale_clock_moves_ownership():
    table = AwarenessTable()
    table.apply([entry(1, 5, {"v": 1})], owner="old", principal="ann")
    assert table.apply([entry(1, 5, {"v": 1})], owner="new", principal="ann") == []
    assert table.owners() == {"new"}
    assert table.remove_owner("old") == []
    assert table.remove_owner("new") == [AwarenessEntry(1, 6, None)]


def test_max_clients_per_owner():
    table = AwarenessTable(max_clients_per_owner=2)
    table.apply([entry(1, 1, {}), entry(2, 1, {})], owner="c1", principal="u1")
    with pytest.raises(AwarenessClientNotOwned):
        table.apply([entry(3, 1, {})], owner="c1", principal="u1")
    assert sorted(states(table)) == [1, 2]
    # updating the ids it has is fine, and another connection has its own quota
    assert table.apply([entry(2, 2, {"x": 1})], owner="c1", principal="u1")
    table.apply([entry(3, 1, {}), entry(4, 1, {})], owner="c2", principal="u1")
    with pytest.raises(AwarenessClientNotOwned):
        table.apply([entry(5, 1, {}), entry(6, 1, {}), entry(7, 1, {})], owner="c3", principal="u2")
    assert sorted(states(table)) == [1, 2, 3, 4]


def test_remove_owner():
    table = AwarenessTable()
    table.apply([entry(1, 3, {"a": 1}), entry(2, 7, {"b": 1})], owner="c1", principal="u1")
    table.apply([entry(3, 1, {"c": 1})], owner="c2", principal="u2")
    table.apply([entry(4, 2, {"d": 1})], owner="c1", principal="u1")
    table.apply([entry(4, 2)], owner="c1", principal="u1")  # already left
    removed = table.remove_owner("c1")
    assert sorted(removed, key=lambda e: e.client_id) == [
        AwarenessEntry(1, 4, None),
        AwarenessEntry(2, 8, None),
    ]
    assert states(table) == {3: (1, {"c": 1})}
    assert table.owners() == {"c2"}
    assert table.remove_owner("c1") == []
    assert table.remove_owner("nobody") == []
    # the removal update decodes as y-protocols removals
    assert decode(encode_awareness(removed)) == tuple(removed)
    # after leaving, the client id is free for anyone
    assert table.apply([entry(1, 9, {"new": 1})], owner="c9", principal="u9")


def test_snapshot_excludes_removed_clients():
    table = AwarenessTable()
    table.apply([entry(1, 1, {"a": 1}), entry(2, 1, {"b": 1})], owner="c1", principal="u1")
    table.apply([entry(2, 2)], owner="c1", principal="u1")
    snap = table.snapshot()
    assert snap == [entry(1, 1, {"a": 1})]
    assert len(table) == 1
    assert decode(encode_awareness(snap)) == tuple(snap)


# -- entries relayed from other nodes -------------------------------------------------------


def test_apply_remote_uses_the_clock_rule_only():
    table = AwarenessTable(max_clients_per_owner=1)
    batch = [entry(1, 1, {"a": 1}), entry(2, 1, {"b": 1}), entry(3, 0, {"zero": 1})]
    # no ownership or per-owner quota for relayed entries; clock 0 is no news
    assert table.apply_remote(batch, node="n2", now=10.0) == batch[:2]
    assert states(table) == {1: (1, {"a": 1}), 2: (1, {"b": 1})}
    assert table.owners() == {"n2"}
    assert table.apply_remote([entry(1, 1, {"a": "same"})], node="n2", now=11.0) == []
    assert table.apply_remote([entry(1, 1)], node="n2", now=11.0) == [entry(1, 1)]
    assert table.apply_remote([entry(2, 5, {"b": 5})], node="n3", now=12.0) == [
        entry(2, 5, {"b": 5})
    ]
    assert states(table) == {2: (5, {"b": 5})}


def test_apply_remote_keeps_local_ownership():
    table = AwarenessTable()
    table.apply([entry(1, 1, {"v": 1})], owner="c1", principal="ann")
    assert table.apply_remote([entry(1, 2, {"v": 2})], node="n2", now=1.0) == [
        entry(1, 2, {"v": 2})
    ]
    assert states(table) == {1: (2, {"v": 2})}
    assert table.owners() == {"c1"}
    # still local: not swept, still removed with its connection
    assert table.sweep_remote(older_than=100.0) == []
    assert table.remove_owner("c1") == [AwarenessEntry(1, 3, None)]


def test_a_local_connection_of_the_same_user_may_take_a_remote_client():
    """A client that moved to this node from another one: the user the other
    node stamped into its state may take it over, with a newer or the same clock."""
    table = AwarenessTable()
    table.apply_remote([entry(1, 4, {"v": 1, "user": {"id": "ann"}})], node="n2", now=1.0)
    moved = entry(1, 5, {"v": 2})
    assert table.apply([moved], owner="c1", principal="ann") == [moved]
    assert table.owners() == {"c1"}
    assert table.sweep_remote(older_than=100.0) == []  # local now
    # ... and once local, another principal is refused again
    with pytest.raises(AwarenessClientNotOwned):
        table.apply([entry(1, 9, {"v": 3})], owner="c2", principal="bob")


def test_remote_takeover_with_a_stale_clock():
    table = AwarenessTable()
    table.apply_remote([entry(1, 4, {"v": 1, "user": {"id": "ann"}})], node="n2", now=1.0)
    assert table.apply([entry(1, 4, {"v": 1})], owner="c1", principal="ann") == []
    assert table.owners() == {"c1"}
    assert table.sweep_remote(older_than=100.0) == []
    with pytest.raises(AwarenessClientNotOwned):
        table.apply([entry(1, 9, {"v": 3})], owner="c2", principal="bob")
    assert table.remove_owner("c1") == [AwarenessEntry(1, 5, None)]


def test_echoes_of_remote_clients_claim_nothing():
    """y-socket.io echoes every state relayed to it, other nodes' clients too:
    another user's echo neither claims the client nor counts toward the limit."""
    table = AwarenessTable(max_clients_per_owner=8)
    remote = [entry(cid, 3, {"user": {"id": f"u{cid}"}}) for cid in range(1, 13)]
    table.apply_remote(remote, node="n2", now=1.0)
    assert table.apply(remote, owner="c1", principal="bob") == []
    assert table.owners() == {"n2"}
    assert table.sweep_remote(older_than=100.0) == [
        AwarenessEntry(c, 4, None) for c in range(1, 13)
    ]
    with pytest.raises(AwarenessClientNotOwned):  # a newer state is speaking for u1
        table.apply_remote([entry(1, 5, {"user": {"id": "u1"}})], node="n2", now=2.0)
        table.apply([entry(1, 6, {"x": 1})], owner="c1", principal="bob")


def test_sweep_remote():
    table = AwarenessTable()
    table.apply_remote([entry(1, 3, {"a": 1}), entry(2, 1, {"b": 1})], node="n2", now=10.0)
    table.apply_remote([entry(3, 1, {"c": 1})], node="n3", now=20.0)
    table.apply_remote([entry(2, 2)], node="n2", now=10.0)  # already left
    table.apply([entry(4, 1, {"local": 1})], owner="c1", principal="ann")
    # renewed (a higher clock) at 30: survives the sweep below
    table.apply_remote([entry(3, 2, {"c": 2})], node="n3", now=30.0)
    removed = table.sweep_remote(older_than=25.0)
    assert removed == [AwarenessEntry(1, 4, None)]
    assert states(table) == {3: (2, {"c": 2}), 4: (1, {"local": 1})}
    assert table.sweep_remote(older_than=25.0) == []
    assert table.sweep_remote(older_than=31.0) == [AwarenessEntry(3, 3, None)]
    assert states(table) == {4: (1, {"local": 1})}


def test_a_late_echo_of_a_departed_client_does_not_claim_it():
    """Bob's provider echoes Ann's last state after Ann's connection left:
    ignored, so Ann's next connection gets her client id back."""
    table = AwarenessTable()
    table.apply([entry(1, 4, {"who": "ann"})], owner="c1", principal="ann")
    assert table.remove_owner("c1") == [entry(1, 5)]
    assert table.apply([entry(1, 4, {"who": "ann"})], owner="c2", principal="bob") == []
    assert table.owners() == set()
    # y-socket.io reconnects with the clock it had: the same user gets it back
    back = entry(1, 4, {"who": "ann"})
    assert table.apply([back], owner="c3", principal="ann") == [back]
    assert table.owners() == {"c3"}


def test_departed_clients_are_remembered_within_a_bound():
    table = AwarenessTable()
    for cid in range(AwarenessTable.GONE_MEMORY + 10):
        table.apply([entry(cid, 1, {"n": cid})], owner=f"c{cid}", principal="u")
        table.remove_owner(f"c{cid}")
    assert len(table._gone) == AwarenessTable.GONE_MEMORY
    assert table.apply([entry(0, 1, {"n": 0})], owner="x", principal="v")  # forgotten
    assert not table.apply([entry(20, 1, {"n": 20})], owner="x", principal="v")  # remembered
