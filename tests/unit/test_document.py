"""A Document refuses bad updates without a trace, even when the engine panics."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from pycrdt import Doc, Map

from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness
from crdt.engine import engine_factory
from crdt.errors import EnginePanic, MalformedUpdate
from crdt.types import DocName, RoomId, UserId
from crdt.updates import check_update
from rooms.document import Document
from rooms.identity import Identity, Role
from rooms.limits import Limits

ANN = Identity(UserId("ann"), "Ann", Role.PARTICIPANT)
LOOSE = 2**32

#: Found by fuzzing: structurally valid under a clock limit of 2**32, yet yrs
#: 0.28 panics halfway through integrating it ("index out of bounds" in
#: block_store.rs) and keeps the half it had integrated. The default limit
#: (2**31) now refuses it; the rebuild stays as a second line of defence and
#: is tested with the looser limit.
POISON = bytes.fromhex(
    "01130b8d8d8d8d8d0027010673686170657301610128000b0004747970650177047265637428000b00017801"
    "7c3fc0000028000b000179017c4000000028000b0006706f696e747301750275027c3f8000007c4000000075"
    "027c404000007c4080000028000b00026f6b017828000b00046e6f6e65017e080103617272017c3f80000081"
    "0b0701880b08047c406000007402000175027c3f8000007c400000007601016b77017601010374787402840b"
    "0e036c6c6f840b110120840b120af09f988020776f726c64460b0d04626f6c640474727565c60b110b120462"
    "6f6c64046e756c6cc60b120b13066974616c69630474727565c40b1d0b1304f09f8e89c60b1f0b1306697461"
    "6c6963046e756c6c010b0208010d02"
)


def update(key: str, client: int) -> bytes:
    doc = Doc(client_id=client)
    doc.get("shapes", type=Map)[key] = {"type": "rect"}
    return bytes(doc.get_update())


@pytest.mark.parametrize("engine", ["pycrdt"])
def test_a_panicking_update_leaves_no_trace(engine):
    doc = Document(RoomId("r"), DocName("board"), engine_factory(engine)(), Limits(max_clock=LOOSE))
    for i in range(5):
        doc.receive_update(update(f"s{i}", 100 + i), ANN)
    before_state = doc.engine.full_state()
    before_sv = doc.engine.state_vector()
    before = doc.engine.read_map("shapes")
    check_update(POISON, max_clock=LOOSE)  # the looser check cannot see this one
    with pytest.raises(MalformedUpdate):
        doc.receive_update(POISON, ANN)
    assert doc.engine.state_vector() == before_sv
    assert doc.engine.read_map("shapes") == before
    assert len(doc.pending) == 5, "nothing of the refused update is kept to persist"
    fresh = engine_factory(engine)()
    fresh.apply_update(doc.engine.full_state())
    assert fresh.read_map("shapes") == before
    assert len(before_state) > 0
    doc.receive_update(update("after", 200), ANN)  # the replica keeps working
    assert set(doc.engine.read_map("shapes")) == {f"s{i}" for i in range(5)} | {"after"}


def test_the_pycrdt_engine_reports_the_panic():
    engine = engine_factory("pycrdt")()
    with pytest.raises(EnginePanic):
        engine.apply_update(POISON)


def test_checkpoints_keep_memory_bounded():
    doc = Document(
        RoomId("r"), DocName("board"), engine_factory("pycrdt")(), Limits(max_clock=LOOSE)
    )
    for i in range(3000):
        doc.receive_update(update(f"s{i}", 1000 + i), ANN)
    assert doc._since_bytes <= max(len(doc._checkpoint), 64 << 10) + 200
    with pytest.raises(MalformedUpdate):
        doc.receive_update(POISON, ANN)
    assert len(doc.engine.read_map("shapes")) == 3000


def test_ypy_keeps_the_poison_invisible():
    """y-py (older yrs) does not panic on it: it parks it as pending, unseen."""
    doc = Document(RoomId("r"), DocName("board"), engine_factory("ypy")(), Limits(max_clock=LOOSE))
    doc.receive_update(update("s", 7), ANN)
    before = doc.engine.read_map("shapes")
    with contextlib.suppress(MalformedUpdate):
        doc.receive_update(POISON, ANN)
    assert doc.engine.read_map("shapes") == before


def test_the_default_limit_refuses_it_before_the_engine():
    doc = Document(RoomId("r"), DocName("board"), engine_factory("pycrdt")(), Limits())
    with pytest.raises(MalformedUpdate) as info:
        doc.receive_update(POISON, ANN)
    assert not isinstance(info.value, EnginePanic)
    assert "clock range" in str(info.value)


@pytest.mark.parametrize("role", list(Role))
def test_awareness_fields_off_the_list_are_dropped_for_every_role(role):
    """protocol.md §3.1: what is relayed and what joiners get has only the
    allowed fields and the server's ``user``, whoever sent it."""
    limits = Limits(awareness_fields=frozenset({"cursor"}))
    doc = Document(RoomId("r"), DocName("board"), engine_factory("pycrdt")(), limits)
    who = Identity(UserId("obs"), "Olga", role)
    state = {"user": {"id": "forged"}, "cursor": [1, 2], "note": "PHI-MARKER"}
    payload = encode_awareness([AwarenessEntry(7, 1, orjson.dumps(state).decode())])
    relayed = doc.receive_awareness(payload, owner="sid-1", identity=who)
    assert relayed is not None
    for data in (relayed, doc.awareness_snapshot()):
        (got,) = decode_awareness(data, max_entries=4, max_state_bytes=4096)
        assert got.state_value() == {"user": who.as_json(), "cursor": [1, 2]}


def test_the_default_limits_allow_the_default_awareness_fields():
    from collab.config import AWARENESS_FIELDS

    assert Limits().awareness_fields == frozenset(AWARENESS_FIELDS)
