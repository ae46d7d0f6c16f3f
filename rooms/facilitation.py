"""Session activities a facilitator runs (protocol.md §6.6): the shared
timer (rooms.timer), follow me and bring everyone here (rooms.follow).

Each is a facilitator's event that writes meta, as moderation does
(rooms.moderation): the role and the room's state are checked here, once,
before any of them runs; what each changed comes back as an
:class:`~rooms.moderation.Outcome` for the caller to relay and audit, with
what its ack carries besides the room's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rooms.audit import AuditAction
from rooms.errors import SessionEnded
from rooms.follow import BRING_HERE_EVENT, FOLLOW_EVENT, bring_here, set_follow
from rooms.identity import Identity
from rooms.moderation import Outcome
from rooms.room import Room
from rooms.timer import TIMER_EVENT, run_timer

__all__ = ["ACTIVITY_AUDIT", "ACTIVITY_EVENTS", "run_activity"]

Activity = Callable[..., tuple[Outcome, dict[str, Any]]]

_ACTIVITIES: dict[str, Activity] = {
    TIMER_EVENT: run_timer,
    FOLLOW_EVENT: set_follow,
    BRING_HERE_EVENT: bring_here,
}

#: The facilitator's activity events.
ACTIVITY_EVENTS = tuple(_ACTIVITIES)
#: The audit action of each (a refusal is recorded under it too).
ACTIVITY_AUDIT: dict[str, AuditAction] = {
    TIMER_EVENT: AuditAction.TIMER,
    FOLLOW_EVENT: AuditAction.FOLLOW,
    BRING_HERE_EVENT: AuditAction.FOLLOW,
}


def run_activity(
    event: str, room: Room, actor: Identity, payload: Any, *, now_ms: int
) -> tuple[Outcome, dict[str, Any]]:
    """Run activity ``event`` at server time ``now_ms``: PermissionDenied for
    anyone but a facilitator, SessionEnded after ``mod:end``, InvalidPayload
    or TimerStateConflict for a request that cannot be done (nothing changes
    then)."""
    room.policy.check_moderate(actor)
    if room.policy.ended:
        raise SessionEnded("the session has ended")
    return _ACTIVITIES[event](room, actor, payload, now_ms=now_ms)
