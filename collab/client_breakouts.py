"""Breakout groups from Python (protocol.md §6.7), over a connected
:class:`~collab.client.CollabClient`::

    async with CollabClient(url, "clinic-7", auth={"token": token}) as board:
        await BreakoutClient(board).open(random=True, count=3, duration_s=600)

    async with CollabClient(url, "clinic-7/meta", auth={"token": token}) as meta:
        mine = await join_group(meta, my_user_id)  # the same token, their own group
        # (or: group_room_id("clinic-7", breakouts_of(meta).group_of(my_user_id).name))

Each facilitator's call returns its ack or raises
:class:`~collab.client.CollabClientError` with the server's code.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Map

from collab.client import CollabClient
from crdt.types import UserId
from rooms.breakouts import (
    BREAKOUT_EVENT,
    META_BREAKOUTS_ROOT,
    Breakouts,
    read_breakouts,
)

__all__ = [
    "BreakoutClient",
    "breakouts_of",
    "group_room_id",
    "group_state_of",
    "join_group",
]

#: A group room's meta root map (collab.breakout_control.META_GROUP_ROOT).
GROUP_ROOT = "breakout"


def _root(meta: CollabClient, root: str) -> dict[str, Any]:
    value = meta.doc.get(root, type=Map).to_py()
    return dict(value) if isinstance(value, dict) else {}


def breakouts_of(meta: CollabClient) -> Breakouts:
    """The main room's breakouts, as a client on ``<room>/meta`` holds them."""
    return read_breakouts(_root(meta, META_BREAKOUTS_ROOT))


def group_state_of(group_meta: CollabClient) -> dict[str, Any]:
    """A group room's own ``breakout`` (``seq``, ``state``, ``endsAt``,
    ``text``, ``textSeq``, ``textAt``), from a client on ``<room>/breakout-N/meta``."""
    return _root(group_meta, GROUP_ROOT)


async def join_group(meta: CollabClient, user_id: str, doc: str = "board") -> CollabClient | None:
    """Connect to ``user_id``'s group (``doc`` of it) with ``meta``'s URLs
    and token (the main room's: it admits them to their own group), or
    None when no open group lists them. The caller closes the client."""
    group = breakouts_of(meta).group_of(UserId(user_id))
    if group is None or breakouts_of(meta).state != "open":
        return None
    client = CollabClient(meta.urls, group_room_id(meta.room, group.name), doc, auth=meta.auth)
    await client.connect()
    return client


def group_room_id(main: str, group: str) -> str:
    """The room id of group ``group`` (``breakout-N``) of room ``main``."""
    return f"{main}/{group}"


class BreakoutClient:
    """``mod:breakout`` on ``client``'s connection to the main room (any document)."""

    def __init__(self, client: CollabClient) -> None:
        self.client = client

    async def open(
        self,
        groups: list[list[str]] | None = None,
        *,
        random: bool = False,
        count: int | None = None,
        size: int | None = None,
        duration_s: int | None = None,
    ) -> dict[str, Any]:
        """Open groups by hand (``groups``) or at random (``count`` groups,
        or groups of ``size``), closing after ``duration_s`` if given."""
        payload: dict[str, Any] = {"action": "open"}
        if groups is not None:
            payload["groups"] = groups
        if random:
            payload["random"] = True
        if count is not None:
            payload["count"] = count
        if size is not None:
            payload["size"] = size
        if duration_s is not None:
            payload["durationS"] = duration_s
        return await self.client.call(BREAKOUT_EVENT, payload)

    async def close(self) -> dict[str, Any]:
        return await self.client.call(BREAKOUT_EVENT, {"action": "close"})

    async def broadcast(self, text: str) -> dict[str, Any]:
        return await self.client.call(BREAKOUT_EVENT, {"action": "broadcast", "text": text})

    async def show(self, group: str) -> dict[str, Any]:
        """Copy a closed group's board into the main room's ``board:<group>``."""
        return await self.client.call(BREAKOUT_EVENT, {"action": "show", "group": group})
