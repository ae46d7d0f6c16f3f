"""The shared timer (protocol.md §6.6): a countdown a facilitator starts,
pauses, resumes, extends and stops, kept in meta's root map ``timer``.

The timer is a state machine (:data:`ALLOWED`): each action names the
phases it may start from; any other is :class:`~rooms.errors.TimerStateConflict`
and nothing changes. A running timer is stored with the server time it ends
at (``endsAt``, milliseconds since the Unix epoch), a paused one with what
was left (``remainingMs``), so every client computes the same remaining
time from the server's clock, and the timer survives reconnects, restarts
and moves between nodes as the rest of meta does. A running timer whose
``endsAt`` has passed has run out (:attr:`TimerPhase.DONE`, never stored).

The server sets no timer of its own: nothing happens at the end but what
the clients show. The clock is the caller's (``now_ms``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from crdt.errors import InvalidPayload
from crdt.text import bad_name_character
from rooms.audit import AuditAction
from rooms.errors import TimerStateConflict
from rooms.identity import Identity
from rooms.moderation import Change, Outcome
from rooms.names import META
from rooms.room import Room

__all__ = [
    "ALLOWED",
    "MAX_TIMER_LABEL_CHARS",
    "MAX_TIMER_S",
    "META_TIMER_ROOT",
    "TIMER_EVENT",
    "Timer",
    "TimerAction",
    "TimerPhase",
    "TimerRequest",
    "next_timer",
    "run_timer",
]

TIMER_EVENT = "mod:timer"
#: The meta root map that holds the timer.
META_TIMER_ROOT = "timer"
#: The longest a timer may run, and the most it may have left after an extension.
MAX_TIMER_S = 4 * 3600
#: Characters of a timer's label ("Breathing", "Role-play, round 2").
MAX_TIMER_LABEL_CHARS = 80


class TimerPhase(StrEnum):
    """Where the timer is. ``DONE`` is never stored: it is a running timer
    whose end has passed."""

    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"


class TimerAction(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    EXTEND = "extend"
    STOP = "stop"


_EVERY_PHASE = frozenset(TimerPhase)

#: The phases each action may be taken from (the transition table).
ALLOWED: dict[TimerAction, frozenset[TimerPhase]] = {
    TimerAction.START: _EVERY_PHASE,
    TimerAction.PAUSE: frozenset({TimerPhase.RUNNING}),
    TimerAction.RESUME: frozenset({TimerPhase.PAUSED}),
    TimerAction.EXTEND: frozenset({TimerPhase.RUNNING, TimerPhase.PAUSED, TimerPhase.DONE}),
    TimerAction.STOP: _EVERY_PHASE,
}

#: The payload fields each action takes (besides ``action``).
_FIELDS: dict[TimerAction, frozenset[str]] = {
    TimerAction.START: frozenset({"seconds", "label", "chime"}),
    TimerAction.EXTEND: frozenset({"seconds"}),
    TimerAction.PAUSE: frozenset(),
    TimerAction.RESUME: frozenset(),
    TimerAction.STOP: frozenset(),
}


@dataclass(frozen=True, slots=True)
class TimerRequest:
    """One ``mod:timer`` payload, checked (:meth:`parse`)."""

    action: TimerAction
    seconds: int = 0
    label: str = ""
    chime: bool = False

    @classmethod
    def parse(cls, payload: Any) -> TimerRequest:
        """InvalidPayload unless ``payload`` is ``{"action", ...}`` with the
        fields that action takes, each of its type and within its limits."""
        if not isinstance(payload, dict):
            raise InvalidPayload("mod:timer takes one JSON object")
        try:
            action = TimerAction(str(payload.get("action")))
        except ValueError:
            names = ", ".join(a.value for a in TimerAction)
            raise InvalidPayload(f"action must be one of {names}") from None
        unknown = set(payload) - {"action"} - _FIELDS[action]
        if unknown:
            raise InvalidPayload(f"{action.value} takes no {', '.join(sorted(unknown))}")
        seconds = 0
        if "seconds" in _FIELDS[action]:
            value = payload.get("seconds")
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidPayload("seconds must be a whole number")
            seconds = value
            if not 1 <= seconds <= MAX_TIMER_S:
                raise InvalidPayload(f"seconds must be 1-{MAX_TIMER_S}")
        label = payload.get("label", "")
        if not isinstance(label, str) or len(label) > MAX_TIMER_LABEL_CHARS:
            raise InvalidPayload(f"label must be at most {MAX_TIMER_LABEL_CHARS} characters")
        if bad_name_character(label) is not None:
            raise InvalidPayload("label holds a control, bidi or invalid character")
        chime = payload.get("chime", False)
        if not isinstance(chime, bool):
            raise InvalidPayload("chime must be true or false")
        return cls(action, seconds, label, chime)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class Timer:
    """The timer as meta holds it (protocol.md §6.6)."""

    phase: TimerPhase = TimerPhase.STOPPED
    #: While running: when it ends, server time (ms since the Unix epoch).
    ends_at_ms: int | None = None
    #: While paused: what is left (ms).
    remaining_ms: int | None = None
    #: How long it was set for, extensions included (ms): for a progress bar.
    duration_ms: int = 0
    label: str = ""
    chime: bool = False
    #: The facilitator who last changed it (user id).
    by: str = ""
    #: Counts every change: a client tells a new start from a page reload.
    seq: int = 0
    #: When it last changed, server time (ms).
    at_ms: int = 0

    @classmethod
    def from_meta(cls, fields: Mapping[str, Any]) -> Timer:
        """The timer in meta's ``timer`` map; stopped where it does not fit."""
        try:
            phase = TimerPhase(fields.get("state", TimerPhase.STOPPED.value))
        except ValueError:
            phase = TimerPhase.STOPPED
        ends_at, remaining = _int(fields.get("endsAt")), _int(fields.get("remainingMs"))
        if phase is TimerPhase.DONE:
            phase = TimerPhase.STOPPED
        if (phase is TimerPhase.RUNNING and ends_at is None) or (
            phase is TimerPhase.PAUSED and remaining is None
        ):
            phase = TimerPhase.STOPPED
        label, chime, by = fields.get("label"), fields.get("chime"), fields.get("by")
        return cls(
            phase,
            ends_at if phase is TimerPhase.RUNNING else None,
            remaining if phase is TimerPhase.PAUSED else None,
            max(0, _int(fields.get("durationMs")) or 0),
            label if isinstance(label, str) else "",
            chime is True,
            by if isinstance(by, str) else "",
            max(0, _int(fields.get("seq")) or 0),
            max(0, _int(fields.get("at")) or 0),
        )

    def as_meta(self) -> dict[str, Any]:
        """The fields of meta's ``timer`` map (every key, ``null`` where unused)."""
        return {
            "state": self.phase.value,
            "endsAt": self.ends_at_ms,
            "remainingMs": self.remaining_ms,
            "durationMs": self.duration_ms,
            "label": self.label,
            "chime": self.chime,
            "by": self.by,
            "seq": self.seq,
            "at": self.at_ms,
        }

    def phase_at(self, now_ms: int) -> TimerPhase:
        """The phase at server time ``now_ms`` (``DONE`` once a running timer's end passed)."""
        if self.phase is TimerPhase.RUNNING and (self.ends_at_ms or 0) <= now_ms:
            return TimerPhase.DONE
        return self.phase

    def remaining_at(self, now_ms: int) -> int:
        """Milliseconds left at server time ``now_ms`` (0 when stopped or done)."""
        if self.phase is TimerPhase.PAUSED:
            return self.remaining_ms or 0
        if self.phase is TimerPhase.RUNNING:
            return max(0, (self.ends_at_ms or 0) - now_ms)
        return 0


def next_timer(current: Timer, request: TimerRequest, *, by: str, now_ms: int) -> Timer:
    """The timer after ``request`` at server time ``now_ms``.
    TimerStateConflict if its phase does not allow the action; InvalidPayload
    if an extension would leave more than :data:`MAX_TIMER_S`."""
    phase = current.phase_at(now_ms)
    if phase not in ALLOWED[request.action]:
        raise TimerStateConflict(f"cannot {request.action.value} a timer that is {phase.value}")
    step = request.seconds * 1000
    changed = replace(current, by=by, seq=current.seq + 1, at_ms=now_ms)
    if request.action is TimerAction.START:
        return replace(
            changed,
            phase=TimerPhase.RUNNING,
            ends_at_ms=now_ms + step,
            remaining_ms=None,
            duration_ms=step,
            label=request.label,
            chime=request.chime,
        )
    if request.action is TimerAction.PAUSE:
        left = current.remaining_at(now_ms)
        return replace(changed, phase=TimerPhase.PAUSED, ends_at_ms=None, remaining_ms=left)
    if request.action is TimerAction.RESUME:
        ends_at = now_ms + (current.remaining_ms or 0)
        return replace(changed, phase=TimerPhase.RUNNING, ends_at_ms=ends_at, remaining_ms=None)
    if request.action is TimerAction.STOP:
        return replace(changed, phase=TimerPhase.STOPPED, ends_at_ms=None, remaining_ms=None)
    # EXTEND: a timer that ran out starts again with the extension.
    left = current.remaining_at(now_ms) + step
    if left > MAX_TIMER_S * 1000:
        raise InvalidPayload(f"a timer may have at most {MAX_TIMER_S} seconds left")
    duration = step if phase is TimerPhase.DONE else current.duration_ms + step
    if phase is TimerPhase.PAUSED:
        return replace(changed, remaining_ms=left, duration_ms=duration)
    ends_at = now_ms + left
    return replace(changed, phase=TimerPhase.RUNNING, ends_at_ms=ends_at, duration_ms=duration)


def run_timer(
    room: Room, actor: Identity, payload: Any, *, now_ms: int
) -> tuple[Outcome, dict[str, Any]]:
    """``mod:timer`` in ``room`` (its role and state checked by the caller):
    meta's ``timer`` written, and the ack's ``timer`` (the stored fields).
    A stop of a stopped timer writes nothing."""
    request = TimerRequest.parse(payload)
    doc = room.docs[META]
    current = Timer.from_meta(doc.engine.read_map(META_TIMER_ROOT))
    updated = next_timer(current, request, by=actor.user_id, now_ms=now_ms)
    detail = f"{request.action.value} state={updated.phase.value}"
    if request.seconds:
        detail += f" seconds={request.seconds}"
    if request.action is TimerAction.START:
        detail += f" label_chars={len(request.label)} chime={str(request.chime).lower()}"
    if current.phase is TimerPhase.STOPPED and request.action is TimerAction.STOP:
        return Outcome(AuditAction.TIMER, (), detail), {"timer": current.as_meta()}
    fields = updated.as_meta()
    update = doc.write(
        lambda engine: engine.set_map_fields(META_TIMER_ROOT, fields),
        adding=64 + len(str(fields)),
    )
    return Outcome(AuditAction.TIMER, (Change(META, update),), detail), {"timer": fields}
