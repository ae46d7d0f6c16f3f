"""Session activities, sans-I/O (protocol.md §6.6): the timer's state
machine and limits, and the checks of the ``view`` and ``pointer``
awareness fields."""

from __future__ import annotations

import math

import orjson
import pytest

from crdt.awareness import AwarenessEntry, stamp_user
from crdt.awareness_fields import (
    BOARD_EXTENT,
    MAX_POINTER_POINTS,
    board_area,
    check_fields,
    check_pointer,
    check_view,
)
from crdt.errors import InvalidPayload
from rooms.errors import TimerStateConflict
from rooms.timer import (
    ALLOWED,
    MAX_TIMER_LABEL_CHARS,
    MAX_TIMER_S,
    Timer,
    TimerAction,
    TimerPhase,
    TimerRequest,
    next_timer,
)

NOW = 1_767_225_600_000


def request(**payload: object) -> TimerRequest:
    return TimerRequest.parse(payload)


def run(timer: Timer, at: int, **payload: object) -> Timer:
    return next_timer(timer, request(**payload), by="fac", now_ms=at)


# -- the timer -----------------------------------------------------------------------


def test_a_timer_runs_pauses_resumes_extends_and_stops_by_the_server_clock():
    timer = run(Timer(), NOW, action="start", seconds=180, label="Breathing", chime=True)
    assert timer.phase is TimerPhase.RUNNING
    assert timer.ends_at_ms == NOW + 180_000 and timer.duration_ms == 180_000
    assert timer.remaining_at(NOW + 60_000) == 120_000
    assert (timer.label, timer.chime, timer.by, timer.seq) == ("Breathing", True, "fac", 1)

    paused = run(timer, NOW + 60_000, action="pause")
    assert (paused.phase, paused.ends_at_ms, paused.remaining_ms) == (
        TimerPhase.PAUSED,
        None,
        120_000,
    )
    # Time passes while paused: nothing is taken off.
    assert paused.remaining_at(NOW + 3_600_000) == 120_000
    extended = run(paused, NOW + 70_000, action="extend", seconds=60)
    assert extended.remaining_ms == 180_000 and extended.duration_ms == 240_000
    resumed = run(extended, NOW + 100_000, action="resume")
    assert resumed.ends_at_ms == NOW + 280_000 and resumed.remaining_ms is None
    stopped = run(resumed, NOW + 110_000, action="stop")
    assert stopped.phase is TimerPhase.STOPPED and stopped.remaining_at(NOW) == 0
    assert stopped.seq == 5 and stopped.at_ms == NOW + 110_000
    # What meta holds reads back as the same timer.
    assert Timer.from_meta(orjson.loads(orjson.dumps(extended.as_meta()))) == extended


def test_a_timer_that_ran_out_is_done_and_an_extension_starts_it_again():
    timer = run(Timer(), NOW, action="start", seconds=10)
    assert timer.phase_at(NOW + 9_999) is TimerPhase.RUNNING
    assert timer.phase_at(NOW + 10_000) is TimerPhase.DONE
    with pytest.raises(TimerStateConflict):
        run(timer, NOW + 20_000, action="pause")
    again = run(timer, NOW + 20_000, action="extend", seconds=60)
    assert again.ends_at_ms == NOW + 80_000 and again.duration_ms == 60_000


@pytest.mark.parametrize(
    ("phase", "action"),
    [
        (phase, action)
        for action in TimerAction
        for phase in TimerPhase
        if phase not in ALLOWED[action]
    ],
)
def test_actions_outside_the_transition_table_are_refused(phase, action):
    timers = {
        TimerPhase.STOPPED: Timer(),
        TimerPhase.RUNNING: Timer(TimerPhase.RUNNING, ends_at_ms=NOW + 5000),
        TimerPhase.PAUSED: Timer(TimerPhase.PAUSED, remaining_ms=5000),
        TimerPhase.DONE: Timer(TimerPhase.RUNNING, ends_at_ms=NOW - 1),
    }
    payload: dict[str, object] = {"action": action.value}
    if action in (TimerAction.START, TimerAction.EXTEND):
        payload["seconds"] = 5
    with pytest.raises(TimerStateConflict) as info:
        next_timer(timers[phase], TimerRequest.parse(payload), by="f", now_ms=NOW)
    assert info.value.code.value == "timer_state"


def test_timer_limits_at_and_past():
    assert request(action="start", seconds=MAX_TIMER_S).seconds == MAX_TIMER_S
    assert request(action="start", seconds=1).seconds == 1
    label = "x" * MAX_TIMER_LABEL_CHARS
    assert request(action="start", seconds=5, label=label).label == label
    for bad in (
        {"action": "start", "seconds": MAX_TIMER_S + 1},
        {"action": "start", "seconds": 0},
        {"action": "start", "seconds": -5},
        {"action": "start", "seconds": 1.5},
        {"action": "start", "seconds": "60"},
        {"action": "start", "seconds": True},
        {"action": "start"},
        {"action": "start", "seconds": 5, "label": label + "x"},
        {"action": "start", "seconds": 5, "label": "a\nb"},
        {"action": "start", "seconds": 5, "label": "\u202eevil"},
        {"action": "start", "seconds": 5, "label": 7},
        {"action": "start", "seconds": 5, "chime": "yes"},
        {"action": "start", "seconds": 5, "colour": "red"},
        {"action": "pause", "seconds": 5},
        {"action": "stop", "label": "x"},
        {"action": "extend"},
        {"action": "rewind"},
        {"seconds": 5},
    ):
        with pytest.raises(InvalidPayload):
            TimerRequest.parse(bad)
    with pytest.raises(InvalidPayload):
        TimerRequest.parse(["start"])
    # An extension may leave at most MAX_TIMER_S.
    full = run(Timer(), NOW, action="start", seconds=MAX_TIMER_S - 60)
    assert run(full, NOW, action="extend", seconds=60).remaining_at(NOW) == MAX_TIMER_S * 1000
    with pytest.raises(InvalidPayload):
        run(full, NOW, action="extend", seconds=61)


def test_meta_that_does_not_fit_reads_as_a_stopped_timer():
    for fields in (
        {},
        {"state": "running"},
        {"state": "paused", "endsAt": NOW},
        {"state": "done", "endsAt": NOW},
        {"state": "sprinting", "endsAt": NOW},
        {"state": "running", "endsAt": "soon"},
    ):
        assert Timer.from_meta(fields).phase is TimerPhase.STOPPED, fields


# -- the view and the pointer in awareness ---------------------------------------------


def test_views_are_held_to_their_shape_and_bounds():
    view = {"x": -100.5, "y": 20, "w": 1280, "h": 720, "k": 1.25}
    assert check_view(view) == view
    assert check_view({**view, "x": BOARD_EXTENT}) is not None
    for bad in (
        {**view, "x": BOARD_EXTENT + 1},
        {**view, "w": 0},
        {**view, "h": -5},
        {**view, "k": 0.001},
        {**view, "k": 1000},
        {**view, "x": math.inf},
        {**view, "y": math.nan},
        {**view, "x": "0"},
        {**view, "x": True},
        {**view, "note": "hello"},
        {k: v for k, v in view.items() if k != "k"},
        [0, 0, 10, 10, 1],
    ):
        assert check_view(bad) is None, bad
    assert board_area({"x": 0, "y": 0, "w": 10, "h": 10}) is not None
    assert board_area({"x": 0, "y": 0, "w": 10}) is None


def test_pointer_trails_are_held_to_their_shape_and_bounds():
    trail = {"points": [[i, -i] for i in range(MAX_POINTER_POINTS)], "at": NOW}
    assert check_pointer(trail) == trail
    for bad in (
        {**trail, "points": [[0, 0]] * (MAX_POINTER_POINTS + 1)},
        {**trail, "points": []},
        {**trail, "points": [[0, 0, 0]]},
        {**trail, "points": [[0, BOARD_EXTENT * 2]]},
        {**trail, "points": [["0", 0]]},
        {**trail, "at": -1},
        {**trail, "at": 1.5},
        {**trail, "text": "hi"},
        {"points": [[0, 0]]},
    ):
        assert check_pointer(bad) is None, bad


def test_a_state_keeps_what_fits_and_an_observer_does_not_point():
    pointer = {"points": [[1, 2]], "at": NOW}
    state = {"cursor": {"x": 1, "y": 2}, "view": {"x": 0}, "pointer": pointer}
    assert check_fields(state, role="participant") == {
        "cursor": state["cursor"],
        "pointer": pointer,
    }
    assert check_fields(state, role="observer") == {"cursor": state["cursor"]}
    assert check_fields({"view": None, "pointer": None}, role="facilitator") == {
        "view": None,
        "pointer": None,
    }
    # Through the server's stamp, whatever --awareness-fields allows.
    entry = AwarenessEntry(7, 1, orjson.dumps({"view": "everywhere", "tool": "pen"}).decode())
    (stamped,) = stamp_user([entry], {"id": "u", "name": "U", "role": "participant"})
    assert orjson.loads(stamped.state or "null") == {
        "tool": "pen",
        "user": {"id": "u", "name": "U", "role": "participant"},
    }
