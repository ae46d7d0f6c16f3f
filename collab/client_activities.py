"""Session activities from Python (protocol.md §6.6), over a connected
:class:`~collab.client.CollabClient`::

    async with CollabClient(url, "clinic-7/group-a", auth={"token": token}) as board:
        activities = Activities(board)
        await activities.start_timer(180, label="Breathing", chime=True)
        await activities.follow(True)
        await activities.publish_view(x=0, y=0, w=1280, h=720, k=1)

    async with CollabClient(url, "clinic-7/group-a/meta", auth=...) as meta:
        timer = timer_of(meta)
        left_ms = timer.remaining_at(await Activities(meta).server_now_ms())

Each facilitator's event returns its ack (``{"ok": true, "state", ...}``)
or raises :class:`~collab.client.CollabClientError` with the server's code.
"""

from __future__ import annotations

import time
from typing import Any

from pycrdt import Map

from collab.client import CollabClient, CollabClientError
from rooms.follow import BRING_HERE_EVENT, FOLLOW_EVENT, META_BRING_HERE_ROOT, META_FOLLOW_ROOT
from rooms.timer import META_TIMER_ROOT, TIMER_EVENT, Timer

__all__ = ["TIME_NOW", "Activities", "bring_here_of", "follow_of", "timer_of"]

#: The server's clock (protocol.md §6.6).
TIME_NOW = "time:now"


def _root(client: CollabClient, root: str) -> dict[str, Any]:
    """Meta's root map ``root`` as plain values (``client`` must be on ``<room>/meta``)."""
    value = client.doc.get(root, type=Map).to_py()
    return dict(value) if isinstance(value, dict) else {}


def timer_of(meta: CollabClient) -> Timer:
    """The room's timer, as the client on the room's meta document holds it."""
    return Timer.from_meta(_root(meta, META_TIMER_ROOT))


def follow_of(meta: CollabClient) -> dict[str, Any]:
    """Meta's ``follow`` (``on``, ``by``, ``at``; empty before any ``mod:follow``)."""
    return _root(meta, META_FOLLOW_ROOT)


def bring_here_of(meta: CollabClient) -> dict[str, Any]:
    """Meta's ``bringHere`` (``seq``, ``x``, ``y``, ``w``, ``h``, ``by``, ``at``)."""
    return _root(meta, META_BRING_HERE_ROOT)


class Activities:
    """The activities' events on ``client``'s connection (any document of
    the room), the server's clock, and this client's ``view`` and
    ``pointer`` in awareness. It owns the client's awareness state: set
    other fields through :meth:`set_fields` so that they are kept."""

    def __init__(self, client: CollabClient) -> None:
        self.client = client
        #: Server time minus local time (ms), once estimated.
        self.offset_ms: float | None = None
        #: The awareness state this object publishes for the client.
        self.state: dict[str, Any] = {}

    # -- the server's clock ---------------------------------------------------------

    async def measure_offset(self, *, samples: int = 3) -> float:
        """Estimate the server's clock against this one with ``time:now``:
        of ``samples`` round trips, the shortest counts (its answer was made
        nearest the middle of it). Returns (and keeps) server minus local, ms."""
        best: tuple[float, float] | None = None
        for _ in range(max(1, samples)):
            sent = time.time() * 1000
            ack = await self.client.call(TIME_NOW, {})
            received = time.time() * 1000
            now = ack.get("now")
            if not isinstance(now, int | float):
                raise CollabClientError("invalid_payload", "time:now answered no time")
            rtt = received - sent
            if best is None or rtt < best[0]:
                best = (rtt, now - (sent + received) / 2)
        assert best is not None
        self.offset_ms = best[1]
        return self.offset_ms

    async def server_now_ms(self) -> int:
        """The server's time now, by the estimated offset (measured on first use)."""
        if self.offset_ms is None:
            await self.measure_offset()
        assert self.offset_ms is not None
        return int(time.time() * 1000 + self.offset_ms)

    # -- the timer (facilitators) ---------------------------------------------------

    async def timer(self, action: str, **fields: Any) -> dict[str, Any]:
        """``mod:timer {"action", ...fields}``; the ack's ``timer`` is the stored timer."""
        return await self.client.call(TIMER_EVENT, {"action": action, **fields})

    async def start_timer(
        self, seconds: int, *, label: str = "", chime: bool = False
    ) -> dict[str, Any]:
        return await self.timer("start", seconds=seconds, label=label, chime=chime)

    async def pause_timer(self) -> dict[str, Any]:
        return await self.timer("pause")

    async def resume_timer(self) -> dict[str, Any]:
        return await self.timer("resume")

    async def extend_timer(self, seconds: int) -> dict[str, Any]:
        return await self.timer("extend", seconds=seconds)

    async def stop_timer(self) -> dict[str, Any]:
        return await self.timer("stop")

    # -- follow me, bring here (facilitators) ----------------------------------------

    async def follow(self, on: bool) -> dict[str, Any]:
        """``mod:follow``: everyone follows this facilitator's ``view``, or stops."""
        return await self.client.call(FOLLOW_EVENT, {"on": on})

    async def bring_here(self, x: float, y: float, w: float, h: float) -> dict[str, Any]:
        """``mod:bring-here``: everyone's view moves once to this area of the board."""
        return await self.client.call(BRING_HERE_EVENT, {"x": x, "y": y, "w": w, "h": h})

    # -- awareness ---------------------------------------------------------------------

    async def set_fields(self, **fields: Any) -> None:
        """Set fields of this client's awareness state (None clears one) and publish it."""
        self.state.update(fields)
        await self.client.set_awareness(dict(self.state))

    async def publish_view(self, *, x: float, y: float, w: float, h: float, k: float) -> None:
        """This client's ``view``: the board area it shows and its zoom."""
        await self.set_fields(view={"x": x, "y": y, "w": w, "h": h, "k": k})

    async def point(self, points: list[tuple[float, float]] | None) -> None:
        """A laser pointer trail (its last points, board units), stamped with the
        server's time; None takes the pointer away."""
        if points is None:
            await self.set_fields(pointer=None)
            return
        at = await self.server_now_ms()
        await self.set_fields(pointer={"points": [[x, y] for x, y in points], "at": at})
