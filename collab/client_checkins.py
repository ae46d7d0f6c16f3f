"""Check-ins from Python (protocol.md §6.9), over a connected
:class:`~collab.client.CollabClient` (any document of the room; reading
the room's check-ins needs one on ``<room>/meta``)::

    checkins = Checkins(facilitator)
    opened = await checkins.open("scale", "How anxious do you feel right now?", anonymous=True)
    await Checkins(participant).answer(opened["id"], 4)
    results = await checkins.results(opened["id"])  # counts, live
    await checkins.reveal(opened["id"])              # shown to the group

Each call returns the server's ack or raises
:class:`~collab.client.CollabClientError` with its code. A participant's
:class:`Checkins` keeps the receipt of each anonymous answer, which it
needs to change that answer (the server keeps nothing that links the two).
"""

from __future__ import annotations

from typing import Any

from pycrdt import Map

from collab.client import CollabClient, CollabClientError
from rooms.checkins import (
    CHECKIN_ANSWER_EVENT,
    CHECKIN_ANSWERS_ROOT,
    CHECKIN_EVENT,
    CHECKIN_RESULTS_EVENT,
    CHECKINS_ROOT,
    Checkin,
)

__all__ = ["Checkins", "answered_of", "checkins_of"]


def _root(client: CollabClient, root: str) -> dict[str, Any]:
    value = client.doc.get(root, type=Map).to_py()
    return dict(value) if isinstance(value, dict) else {}


def checkins_of(meta: CollabClient) -> list[Checkin]:
    """The room's check-ins (definition and state, no results), oldest
    first, as the client on the room's meta document holds them."""
    found = [Checkin.parse(k, v) for k, v in _root(meta, CHECKINS_ROOT).items()]
    return sorted((c for c in found if c is not None), key=lambda c: (c.opened_at, c.id))


def answered_of(meta: CollabClient, checkin_id: str) -> set[str]:
    """Who has answered check-in ``checkin_id`` (user ids)."""
    prefix = checkin_id + "|"
    return {k[len(prefix) :] for k in _root(meta, CHECKIN_ANSWERS_ROOT) if k.startswith(prefix)}


class Checkins:
    """The check-in events on ``client``'s connection."""

    def __init__(self, client: CollabClient) -> None:
        self.client = client
        #: Check-in id → the receipt of this client's last anonymous answer.
        self.receipts: dict[str, str] = {}

    # -- facilitators -----------------------------------------------------------------

    async def moderate(self, action: str, **fields: Any) -> dict[str, Any]:
        """``mod:checkin {"action", ...fields}``."""
        return await self.client.call(CHECKIN_EVENT, {"action": action, **fields})

    async def open(
        self,
        kind: str,
        question: str,
        options: list[str] | None = None,
        *,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        """Open a check-in; returns the ack's ``checkin`` (with its ``id``)."""
        fields: dict[str, Any] = {"kind": kind, "question": question, "anonymous": anonymous}
        if options is not None:
            fields["options"] = options
        ack = await self.moderate("open", **fields)
        checkin: dict[str, Any] = ack["checkin"]
        return checkin

    async def close(self, checkin_id: str) -> dict[str, Any]:
        return await self.moderate("close", id=checkin_id)

    async def reveal(self, checkin_id: str) -> dict[str, Any]:
        """Show the check-in's results to the group."""
        return await self.moderate("reveal", id=checkin_id)

    async def hide(self, checkin_id: str) -> dict[str, Any]:
        return await self.moderate("hide", id=checkin_id)

    async def delete(self, checkin_id: str) -> dict[str, Any]:
        return await self.moderate("delete", id=checkin_id)

    # -- everyone ---------------------------------------------------------------------

    async def answer(self, checkin_id: str, value: Any) -> dict[str, Any]:
        """Answer (or change the answer to) a check-in; an anonymous one's
        receipt is kept for the next change."""
        payload: dict[str, Any] = {"id": checkin_id, "value": value}
        receipt = self.receipts.get(checkin_id)
        if receipt is not None:
            payload["receipt"] = receipt
        try:
            ack = await self.client.call(CHECKIN_ANSWER_EVENT, payload)
        except CollabClientError as exc:
            # Not stored yet, but it stands: its receipt comes with the error.
            if isinstance(exc.ack.get("receipt"), str):
                self.receipts[checkin_id] = exc.ack["receipt"]
            raise
        if isinstance(ack.get("receipt"), str):
            self.receipts[checkin_id] = ack["receipt"]
        return ack

    async def results(self, checkin_id: str | None = None) -> dict[str, Any]:
        """One check-in's results (the ack's ``checkin``), or, without an
        id, ``{"checkins": [...]}`` of every one this client may see."""
        if checkin_id is None:
            return await self.client.call(CHECKIN_RESULTS_EVENT, {})
        ack = await self.client.call(CHECKIN_RESULTS_EVENT, {"id": checkin_id})
        result: dict[str, Any] = ack["checkin"]
        return result
