"""Check-ins' pure parts (protocol.md §6.9): the sealing key and what a
definition and an answer may be."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crdt.errors import InvalidPayload
from rooms.checkin_kinds import FEELINGS, CheckinKind, parse_answer, parse_definition
from rooms.checkin_seal import CheckinVault, SealBroken
from rooms.errors import InvalidAnswer


def test_a_sealed_value_opens_only_in_its_context_under_its_key() -> None:
    vault = CheckinVault.from_secret("k" * 40)
    sealed = vault.seal("tally|room|id|A", [1, 2, 3])
    assert vault.open("tally|room|id|A", sealed) == [1, 2, 3]
    # Random nonces: the same value seals differently each time.
    assert vault.seal("tally|room|id|A", [1, 2, 3]) != sealed
    for context in ("tally|room|id|B", "receipt|room|id|A", "tally|other|id|A"):
        with pytest.raises(SealBroken):
            vault.open(context, sealed)
    with pytest.raises(SealBroken):
        CheckinVault.from_secret("j" * 40).open("tally|room|id|A", sealed)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for bad in (flipped, "", "not base64 !", None, 7, "A" * 5000):
        with pytest.raises(SealBroken):
            vault.open("tally|room|id|A", bad)


def test_sealed_values_have_one_length_whatever_they_hold() -> None:
    vault = CheckinVault.ephemeral()
    values = [
        [0] * 11,
        [0] * 10 + [10],
        [123456] * 12,
        [2],
        [0, 1, 2, 3],
        {"g": "f" * 16, "a": [10]},
    ]
    assert len({len(vault.seal("c", v)) for v in values}) == 1


def test_the_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    first = CheckinVault.from_key_file(tmp_path / "data")
    sealed = first.seal("c", {"a": 1})
    path = tmp_path / "data" / "checkins.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert CheckinVault.from_key_file(tmp_path / "data").open("c", sealed) == {"a": 1}
    path.write_text("not hex\n")
    with pytest.raises(OSError):
        CheckinVault.from_key_file(tmp_path / "data")


def test_definitions() -> None:
    single = parse_definition({"kind": "single", "question": " Q? ", "options": ["a", "b"]})
    assert (single.kind, single.question, single.options) == (CheckinKind.SINGLE, "Q?", ("a", "b"))
    assert parse_definition({"kind": "scale", "question": "Q"}).options == tuple(
        str(v) for v in range(11)
    )
    assert parse_definition({"kind": "feelings", "question": "Q"}).options == FEELINGS
    for bad in (
        {"kind": "poll", "question": "Q"},
        {"kind": "single", "question": "Q", "options": "a,b"},
        {"kind": "multiple", "question": "Q", "options": [" a", "a "]},
        {"kind": "feelings", "question": "Q", "options": ["a", "b"]},
        {"kind": "scale", "question": "line\nbreak"},
        {"kind": "scale", "question": 5},
    ):
        with pytest.raises(InvalidPayload):
            parse_definition(bad)


def test_answers() -> None:
    assert parse_answer(CheckinKind.SINGLE, 3, 2) == [2]
    assert parse_answer(CheckinKind.MULTIPLE, 3, [2, 0]) == [0, 2]
    assert parse_answer(CheckinKind.SCALE, 11, 10) == [10]
    assert parse_answer(CheckinKind.FEELINGS, len(FEELINGS), "sad") == [FEELINGS.index("sad")]
    for kind, size, value in (
        (CheckinKind.SINGLE, 3, 3),
        (CheckinKind.SINGLE, 3, True),
        (CheckinKind.MULTIPLE, 3, []),
        (CheckinKind.MULTIPLE, 3, [1, 1]),
        (CheckinKind.MULTIPLE, 3, [0, 1, 2, 0]),
        (CheckinKind.SCALE, 11, 11),
        (CheckinKind.SCALE, 11, 5.0),
        (CheckinKind.FEELINGS, len(FEELINGS), "meh"),
        (CheckinKind.FEELINGS, len(FEELINGS), 0),
    ):
        with pytest.raises(InvalidAnswer):
            parse_answer(kind, size, value)
