"""Breakout groups' rules (rooms.breakouts, protocol.md §6.7), without a server."""

from __future__ import annotations

import random

import pytest

from crdt.errors import InvalidPayload
from crdt.types import UserId
from rooms.breakouts import (
    MAX_GROUPS,
    Breakouts,
    Group,
    _random_groups,
    breakout_of,
    check_admission,
    read_breakouts,
    shown_shapes,
    token_rooms,
)
from rooms.errors import BreakoutClosed, NotInGroup
from rooms.identity import Identity, Role


def who(user: str, role: Role = Role.PARTICIPANT) -> Identity:
    return Identity(UserId(user), user.title(), role)


def test_which_rooms_are_breakout_rooms():
    assert breakout_of("clinic/breakout-3") == ("clinic", "breakout-3")
    assert breakout_of("a/b/breakout-20") == ("a/b", "breakout-20")
    for room in (
        "breakout-1",
        "clinic/breakout-0",
        "clinic/breakout-01",
        "clinic/breakout-21",
        "clinic/breakouts",
    ):
        assert breakout_of(room) is None, room
    assert token_rooms("clinic/breakout-2") == ("clinic/breakout-2", "clinic")
    assert token_rooms("clinic") == ("clinic",)


def test_admission():
    open_set = Breakouts(
        seq=1,
        state="open",
        groups=(Group("breakout-1", (UserId("ann"),)), Group("breakout-2", ())),
        ends_at=1000,
    )
    check_admission(open_set, who("ann"), Role.PARTICIPANT, "breakout-1", now_ms=999)
    check_admission(open_set, who("kim"), Role.FACILITATOR, "breakout-2", now_ms=999)
    with pytest.raises(NotInGroup):
        check_admission(open_set, who("ann"), Role.PARTICIPANT, "breakout-2", now_ms=999)
    with pytest.raises(NotInGroup):
        check_admission(open_set, who("kim"), Role.FACILITATOR, "breakout-3", now_ms=999)
    with pytest.raises(BreakoutClosed):  # its time ran out: closed, written or not
        check_admission(open_set, who("ann"), Role.PARTICIPANT, "breakout-1", now_ms=1000)
    with pytest.raises(BreakoutClosed):
        check_admission(Breakouts(), who("kim"), Role.FACILITATOR, "breakout-1", now_ms=0)


def test_meta_that_does_not_fit_is_skipped():
    read = read_breakouts(
        {
            "seq": "x",
            "state": "odd",
            "groups": [{"name": 5}, "x", {"name": "breakout-1", "members": ["a", 3]}],
        }
    )
    assert (read.seq, read.state, read.groups) == (
        0,
        "closed",
        (Group("breakout-1", (UserId("a"),)),),
    )


def test_random_groups_are_even_and_limited():
    people = [UserId(f"u{i}") for i in range(7)]
    groups = _random_groups(people, 3, None, random.Random(1))
    assert sorted(len(g) for g in groups) == [2, 2, 3]
    assert sorted(u for g in groups for u in g) == sorted(people)
    assert [len(g) for g in _random_groups(people, None, 3, random.Random(1))] == [3, 2, 2]
    with pytest.raises(InvalidPayload):
        _random_groups([], 2, None, random.Random(1))
    with pytest.raises(InvalidPayload):
        _random_groups([UserId(f"u{i}") for i in range(MAX_GROUPS + 1)], None, 1, random.Random(1))


def test_a_shown_board_goes_beside_the_main_content_above_it():
    main = {
        "a": {"type": "rect", "x": -10, "y": 0, "w": 60, "h": 5, "z": 3},
        "breakout-1.old": {"x": 9999, "z": 99},
    }
    group = {
        "n": {"type": "sticky", "x": 20, "y": 5, "w": 10, "h": 10, "z": 2, "text": "hi"},
        "p": {"type": "pen", "points": [20, 0, 40, 1], "z": 1},
        "i": {"type": "image", "x": 0, "y": 0, "w": 5, "h": 5, "src": "0" * 64},
    }
    shapes, earlier, images = shown_shapes(group, main, "breakout-1")
    assert earlier == ["breakout-1.old"] and images == 1
    # The main board's right edge (50; the earlier copy not counted) + 100, from the group's 20.
    assert shapes["breakout-1.n"]["x"] == 150 and shapes["breakout-1.p"]["points"] == [
        150,
        0,
        170,
        1,
    ]
    assert (shapes["breakout-1.p"]["z"], shapes["breakout-1.n"]["z"]) == (4, 5)
    assert shapes["breakout-1.n"]["text"] == "hi"
    # An empty main board: the group's board where it was.
    assert shown_shapes(group, {}, "breakout-2")[0]["breakout-2.n"]["x"] == 20
