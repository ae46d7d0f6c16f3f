"""The session activities' sans-I/O parts (protocol.md §6.6): a reaction's
wire form, the queue's order, the notice's checks."""

from __future__ import annotations

import pytest

from crdt.errors import InvalidPayload
from rooms.envelope import ControlAction, Envelope, EnvelopeKind
from rooms.hands import RaisedHand, read_hands
from rooms.notices import MAX_NOTICE_CHARS, notice_detail, validate_notice
from rooms.reactions import Reaction, ReactionKind


def test_a_reaction_round_trips_and_anything_else_is_refused() -> None:
    reaction = Reaction.parse({"userId": "ann", "kind": "clap", "ts": 1767225600000})
    assert reaction.kind is ReactionKind.CLAP
    assert reaction.serialize() == {"userId": "ann", "kind": "clap", "ts": 1767225600000.0}
    assert Reaction.parse(reaction.serialize()) == reaction
    for bad in (
        {"userId": "ann", "kind": "wave", "ts": 1},
        {"userId": "bad id", "kind": "clap", "ts": 1},
        {"userId": "ann", "kind": "clap", "ts": True},
        {"userId": "ann", "kind": "clap", "ts": float("nan")},
        {"userId": "ann", "kind": "clap", "ts": -1},
        {"userId": "ann", "kind": "clap"},
        {"userId": "ann", "kind": "clap", "ts": 1, "text": "hi"},
        ["ann", "clap", 1],
    ):
        with pytest.raises(InvalidPayload):
            Reaction.parse(bad)


def test_a_reaction_travels_between_nodes_as_a_control_envelope() -> None:
    data = {"userId": "ann", "kind": "heart", "ts": 5.0}
    payload = Envelope.control_payload(ControlAction.EVENT, event="reaction", data=data)
    envelope = Envelope(EnvelopeKind.CONTROL, "A", "r", "meta", 0, None, payload)
    control = Envelope.parse(envelope.serialize()).control()
    assert control == {"action": "event", "event": "reaction", "data": data}
    assert Reaction.parse(control["data"]).kind is ReactionKind.HEART


def test_the_queue_is_in_raising_order_then_by_user() -> None:
    hands = {"bob": 20.0, "ann": 10.0, "cy": 20.0, "bad": "x", "nan": float("nan"), "t": True}
    assert read_hands(hands) == [
        RaisedHand("ann", 10.0),
        RaisedHand("bob", 20.0),
        RaisedHand("cy", 20.0),
    ]


def test_a_notice_is_one_line_of_at_most_500_characters() -> None:
    assert validate_notice("  Kept for 30 days.  ") == "Kept for 30 days."
    assert validate_notice("") == ""
    assert validate_notice("n" * MAX_NOTICE_CHARS) == "n" * MAX_NOTICE_CHARS
    for bad in ("n" * (MAX_NOTICE_CHARS + 1), "a\nb", "a\u202eb", "a\u200bb", "a\x00b", 5, None):
        with pytest.raises(InvalidPayload):
            validate_notice(bad)
    assert notice_detail("Kept") == "notice chars=4"
    assert notice_detail("") == "notice cleared"
