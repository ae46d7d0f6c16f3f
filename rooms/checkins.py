"""Check-ins and polls (protocol.md §6.9): a facilitator asks the group
(single or multiple choice, a 0–10 scale, a feelings pick), optionally
anonymously; members answer and may change their answer until it closes;
the facilitator sees the results live and decides whether to show them.

Everything is in the room's server-written ``meta`` document:

* ``checkins``: check-in id → its definition and state (who may read it:
  every member);
* ``checkinAnswers``: ``<id>|<user id>`` → who has answered. A named
  check-in's value holds the answer *sealed* (rooms.checkin_seal: members
  sync meta, only servers open it); an anonymous one's holds only a random
  guard, never the answer;
* ``checkinTallies``: ``<id>|<writer>`` → an anonymous check-in's counts,
  sealed, one entry per node (``writer``): each node writes only its own,
  so two nodes counting at once lose nothing; the results are their sum.

An anonymous answer writes the user's guard and the node's new counts,
then the store compacts meta (the caller: ``flush_document(force_compact=
True)``), so the stored log keeps only the newest counts: no stored update
pairs "this user answered" with "this count went up". To change it the
member presents the receipt they were given (the old answer and the guard,
sealed for them); the server opens it, takes the old answer out of the
counts and keeps nothing that links the two.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crdt.errors import InvalidPayload
from crdt.types import Update
from rooms.audit import AuditAction
from rooms.checkin_kinds import CheckinKind, answer_value, parse_answer, parse_definition
from rooms.checkin_seal import CheckinVault, SealBroken
from rooms.errors import (
    CheckinClosed,
    CheckinLimit,
    CheckinUnknown,
    InvalidReceipt,
    PermissionDenied,
    SessionEnded,
)
from rooms.identity import Identity, Role
from rooms.moderation import CHECKIN_EVENT, Change, Outcome, payload_fields
from rooms.names import META
from rooms.room import Room

__all__ = [
    "CHECKINS_ROOT",
    "CHECKIN_ANSWERS_ROOT",
    "CHECKIN_ANSWER_EVENT",
    "CHECKIN_EVENT",
    "CHECKIN_RESULTS_EVENT",
    "CHECKIN_TALLIES_ROOT",
    "MAX_KEPT_CHECKINS",
    "MAX_OPEN_CHECKINS",
    "Answered",
    "Checkin",
    "answer_checkin",
    "checkin_results",
    "export_checkins",
    "moderate_checkin",
    "read_checkins",
]

#: A member answers (or changes their answer).
CHECKIN_ANSWER_EVENT = "checkin:answer"
#: Anyone asks for the results: facilitators always, others once shown.
CHECKIN_RESULTS_EVENT = "checkin:results"

CHECKINS_ROOT = "checkins"
CHECKIN_ANSWERS_ROOT = "checkinAnswers"
CHECKIN_TALLIES_ROOT = "checkinTallies"

#: Check-ins open at once in a room (protocol.md §8.1).
MAX_OPEN_CHECKINS = 1
#: Check-ins a room keeps (open or closed); delete one to open more.
MAX_KEPT_CHECKINS = 20

_ID = re.compile(r"[0-9a-f]{16}")
_ACTIONS = ("open", "close", "reveal", "hide", "delete")


@dataclass(frozen=True, slots=True)
class Checkin:
    """One check-in as meta holds it."""

    id: str
    kind: CheckinKind
    question: str
    options: tuple[str, ...]
    anonymous: bool
    open: bool
    revealed: bool
    opened_at: float
    closed_at: float | None
    by: str

    @classmethod
    def parse(cls, checkin_id: str, raw: Any) -> Checkin | None:
        if not isinstance(raw, dict) or not _ID.fullmatch(checkin_id):
            return None
        try:
            kind = CheckinKind(str(raw.get("kind")))
            options = tuple(str(o) for o in raw.get("options", ()))
            closed = raw.get("closedAt")
            return cls(
                checkin_id,
                kind,
                str(raw.get("question", "")),
                options,
                raw.get("anonymous") is True,
                raw.get("state") == "open",
                raw.get("revealed") is True,
                float(raw.get("openedAt", 0)),
                float(closed) if isinstance(closed, int | float) else None,
                str(raw.get("by", "")),
            )
        except (ValueError, TypeError):
            return None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "question": self.question,
            "options": list(self.options),
            "anonymous": self.anonymous,
            "state": "open" if self.open else "closed",
            "revealed": self.revealed,
            "openedAt": self.opened_at,
            **({"closedAt": self.closed_at} if self.closed_at is not None else {}),
            "by": self.by,
        }


@dataclass(frozen=True, slots=True)
class Answered:
    """What ``checkin:answer`` did: the updates to relay, and the receipt
    to hand back (anonymous check-ins only)."""

    checkin: Checkin
    updates: tuple[Update, ...]
    receipt: str | None
    changed: bool


def read_checkins(room: Room) -> list[Checkin]:
    """The room's check-ins, oldest first."""
    raw = room.docs[META].engine.read_map(CHECKINS_ROOT)
    found = [Checkin.parse(k, v) for k, v in raw.items() if isinstance(k, str)]
    return sorted((c for c in found if c is not None), key=lambda c: (c.opened_at, c.id))


def _checkin(room: Room, fields: dict[str, Any]) -> Checkin:
    checkin_id = fields.get("id")
    if not isinstance(checkin_id, str) or not _ID.fullmatch(checkin_id):
        raise InvalidPayload("id must be a check-in id")
    raw = room.docs[META].engine.read_map(CHECKINS_ROOT).get(checkin_id)
    checkin = Checkin.parse(checkin_id, raw)
    if checkin is None:
        raise CheckinUnknown(f"no check-in {checkin_id} in this room")
    return checkin


def _keys(room: Room, root: str, checkin_id: str) -> dict[str, Any]:
    prefix = checkin_id + "|"
    return {k: v for k, v in room.docs[META].engine.read_map(root).items() if k.startswith(prefix)}


def _write(room: Room, checkin: Checkin, changes: dict[str, Any]) -> Change:
    fields = {**checkin.as_json(), **changes}
    fields.pop("id")
    update = room.docs[META].write(
        lambda engine: engine.set_map_fields(CHECKINS_ROOT, {checkin.id: fields}),
        adding=len(str(fields)) + 64,
    )
    return Change(META, update)


def moderate_checkin(
    room: Room, actor: Identity, payload: Any, *, now_ms: float
) -> tuple[Outcome, dict[str, Any]]:
    """``mod:checkin {action, ...}`` (facilitators only): ``open {kind,
    question, options?, anonymous?}``, ``close {id}``, ``reveal {id}``,
    ``hide {id}``, ``delete {id}``. The ack carries the check-in (``open``:
    its new id). The audit detail has ids, kinds and counts, never words."""
    room.policy.check_moderate(actor)
    fields = payload_fields(
        payload,
        {
            "action": str,
            "id": str,
            "kind": str,
            "question": str,
            "options": list,
            "anonymous": bool,
        },
    )
    action = fields.get("action")
    if action not in _ACTIONS:
        raise InvalidPayload("action must be open, close, reveal, hide or delete")
    if action == "open":
        return _open(room, actor, fields, now_ms=now_ms)
    extra = set(fields) - {"action", "id"}
    if extra:
        raise InvalidPayload(f"{action} takes only id, not {', '.join(sorted(extra))}")
    checkin = _checkin(room, fields)
    answered = len(_keys(room, CHECKIN_ANSWERS_ROOT, checkin.id))
    detail = f"{action} {checkin.id} answered={answered}"
    if action == "delete":
        doomed_answers = list(_keys(room, CHECKIN_ANSWERS_ROOT, checkin.id))
        doomed_tallies = list(_keys(room, CHECKIN_TALLIES_ROOT, checkin.id))
        doc = room.docs[META]
        updates = [
            doc.write(lambda e: e.delete_map_keys(CHECKIN_ANSWERS_ROOT, doomed_answers)),
            doc.write(lambda e: e.delete_map_keys(CHECKIN_TALLIES_ROOT, doomed_tallies)),
            doc.write(lambda e: e.delete_map_keys(CHECKINS_ROOT, [checkin.id])),
        ]
        changes = tuple(Change(META, u) for u in updates)
        return Outcome(AuditAction.CHECKIN, changes, detail, purge=META), {"id": checkin.id}
    if action == "close":
        if not checkin.open:
            raise CheckinClosed(f"check-in {checkin.id} is closed already")
        change = _write(room, checkin, {"state": "closed", "closedAt": float(int(now_ms))})
    else:
        change = _write(room, checkin, {"revealed": action == "reveal"})
    after = _checkin(room, {"id": checkin.id})
    return Outcome(AuditAction.CHECKIN, (change,), detail), {"checkin": after.as_json()}


def _open(
    room: Room, actor: Identity, fields: dict[str, Any], *, now_ms: float
) -> tuple[Outcome, dict[str, Any]]:
    if room.policy.ended:
        raise SessionEnded("the session has ended")
    if "id" in fields:
        raise InvalidPayload("open takes no id: the server gives one")
    definition = parse_definition(fields)
    kept = read_checkins(room)
    if sum(c.open for c in kept) >= MAX_OPEN_CHECKINS:
        raise CheckinLimit(f"at most {MAX_OPEN_CHECKINS} check-in may be open: close it first")
    if len(kept) >= MAX_KEPT_CHECKINS:
        raise CheckinLimit(f"a room keeps at most {MAX_KEPT_CHECKINS} check-ins: delete one")
    checkin = Checkin(
        secrets.token_hex(8),
        definition.kind,
        definition.question,
        definition.options,
        definition.anonymous,
        open=True,
        revealed=False,
        opened_at=float(int(now_ms)),
        closed_at=None,
        by=actor.user_id,
    )
    change = _write(room, checkin, {})
    detail = (
        f"open {checkin.id} kind={checkin.kind.value} options={len(checkin.options)} "
        f"anonymous={str(checkin.anonymous).lower()}"
    )
    return Outcome(AuditAction.CHECKIN, (change,), detail), {"checkin": checkin.as_json()}


def _contexts(room: Room, checkin_id: str, who: str) -> tuple[str, str, str]:
    """The sealing contexts of an answer, a receipt and a tally."""
    base = f"{room.id}|{checkin_id}|{who}"
    return "answer|" + base, "receipt|" + base, "tally|" + base


def _own_counts(room: Room, checkin: Checkin, vault: CheckinVault) -> list[int]:
    key = f"{checkin.id}|{vault.writer}"
    sealed = room.docs[META].engine.read_map(CHECKIN_TALLIES_ROOT).get(key)
    counts = [0] * len(checkin.options)
    if sealed is None:
        return counts
    try:
        stored = vault.open(_contexts(room, checkin.id, vault.writer)[2], sealed)
    except SealBroken:
        return counts
    if isinstance(stored, list) and len(stored) == len(counts):
        counts = [int(v) for v in stored]
    return counts


def answer_checkin(
    room: Room,
    actor: Identity,
    payload: Any,
    vault: CheckinVault,
    *,
    before_write: Callable[[], None] = lambda: None,
) -> Answered:
    """``checkin:answer {id, value, receipt?}``: ``actor``'s answer, or a
    change of it while the check-in is open. Refused to observers and after
    the end; CheckinUnknown, CheckinClosed, InvalidAnswer; for an anonymous
    check-in answered before, InvalidReceipt unless ``receipt`` is the one
    the last answer was given. ``before_write`` runs once the answer is
    found good, before anything is written (the caller's rate: it raises).
    The caller settles meta first (another node's write of this user's
    answer) and stores before it acknowledges."""
    fields = payload_fields(payload, {"id": str, "value": object, "receipt": str})
    checkin = _checkin(room, fields)
    room.policy.check_take_part(actor)
    if not checkin.open:
        raise CheckinClosed(f"check-in {checkin.id} is closed")
    if "value" not in fields:
        raise InvalidPayload("field 'value' is required")
    chosen = parse_answer(checkin.kind, len(checkin.options), fields["value"])
    user = actor.user_id
    key = f"{checkin.id}|{user}"
    before = room.docs[META].engine.read_map(CHECKIN_ANSWERS_ROOT).get(key)
    answer_ctx, receipt_ctx, _ = _contexts(room, checkin.id, user)
    doc = room.docs[META]
    if checkin.anonymous and before is not None:
        old = _open_receipt(vault, receipt_ctx, fields.get("receipt"), before)
    else:
        old = []
    before_write()
    if not checkin.anonymous:
        sealed = vault.seal(answer_ctx, chosen)
        update = doc.write(
            lambda engine: engine.set_map_fields(CHECKIN_ANSWERS_ROOT, {key: {"s": sealed}}),
            adding=len(key) + len(sealed) + 32,
        )
        return Answered(checkin, (update,), None, before is not None)
    counts = _own_counts(room, checkin, vault)
    for index in old:
        if 0 <= index < len(counts):
            counts[index] -= 1
    for index in chosen:
        counts[index] += 1
    guard = secrets.token_hex(8)
    tally_key = f"{checkin.id}|{vault.writer}"
    tally = vault.seal(_contexts(room, checkin.id, vault.writer)[2], counts)

    guarded = doc.write(
        lambda engine: engine.set_map_fields(CHECKIN_ANSWERS_ROOT, {key: {"g": guard}}),
        adding=len(key) + 64,
    )
    counted = doc.write(
        lambda engine: engine.set_map_fields(CHECKIN_TALLIES_ROOT, {tally_key: tally}),
        adding=len(tally_key) + len(tally) + 32,
    )
    receipt = vault.seal(receipt_ctx, {"g": guard, "a": chosen})
    return Answered(checkin, (guarded, counted), receipt, before is not None)


def _open_receipt(vault: CheckinVault, context: str, receipt: Any, before: Any) -> list[int]:
    """The old answer a receipt carries, if it is the last answer's."""
    if not isinstance(receipt, str):
        raise InvalidReceipt(
            "you answered this anonymous check-in already: send the receipt to change it"
        )
    try:
        opened = vault.open(context, receipt)
    except SealBroken:
        raise InvalidReceipt("this receipt is not one this check-in gave you") from None
    guard = before.get("g") if isinstance(before, dict) else None
    if not isinstance(opened, dict) or opened.get("g") != guard:
        raise InvalidReceipt("this receipt is not your last answer's")
    old = opened.get("a")
    if not isinstance(old, list) or not all(isinstance(i, int) for i in old):
        raise InvalidReceipt("this receipt does not hold an answer")
    return old


def _results(room: Room, checkin: Checkin, vault: CheckinVault, *, named: bool) -> dict[str, Any]:
    counts = [0] * len(checkin.options)
    answers = _keys(room, CHECKIN_ANSWERS_ROOT, checkin.id)
    by_user: dict[str, Any] = {}
    if checkin.anonymous:
        for key, sealed in _keys(room, CHECKIN_TALLIES_ROOT, checkin.id).items():
            writer = key.split("|", 1)[1]
            try:
                part = vault.open(_contexts(room, checkin.id, writer)[2], sealed)
            except SealBroken:
                continue
            if isinstance(part, list) and len(part) == len(counts):
                counts = [c + int(v) for c, v in zip(counts, part, strict=True)]
    else:
        for key, value in answers.items():
            user = key.split("|", 1)[1]
            try:
                chosen = vault.open(_contexts(room, checkin.id, user)[0], value.get("s"))
            except (SealBroken, AttributeError):
                continue
            if not isinstance(chosen, list):
                continue
            for index in chosen:
                if isinstance(index, int) and 0 <= index < len(counts):
                    counts[index] += 1
            by_user[user] = answer_value(checkin.kind, checkin.options, chosen)
    result: dict[str, Any] = {
        **checkin.as_json(),
        "answered": len(answers),
        "counts": [max(0, c) for c in counts],
    }
    if named and not checkin.anonymous:
        result["answers"] = dict(sorted(by_user.items()))
    return result


def checkin_results(
    room: Room, actor: Identity, payload: Any, vault: CheckinVault
) -> dict[str, Any]:
    """``checkin:results {id?}``: one check-in's results (``id``), or every
    check-in's a member may see. A facilitator sees every check-in's counts
    live, and who answered what in a named one; anyone else only the
    counts of one shown to the group (PermissionDenied for a hidden one)."""
    fields = payload_fields(payload if payload is not None else {}, {"id": str})
    facilitator = room.policy.role_of(actor) is Role.FACILITATOR
    if "id" in fields:
        checkin = _checkin(room, fields)
        if not (facilitator or checkin.revealed):
            raise PermissionDenied("the facilitator has not shown these results")
        return _results(room, checkin, vault, named=facilitator)
    return {
        "checkins": [
            _results(room, c, vault, named=facilitator)
            for c in read_checkins(room)
            if facilitator or c.revealed
        ]
    }


def export_checkins(room: Room, vault: CheckinVault) -> list[dict[str, Any]]:
    """Every check-in with its results, for an export: counts, and who
    answered what in a named check-in (never in an anonymous one)."""
    return [_results(room, c, vault, named=True) for c in read_checkins(room)]
