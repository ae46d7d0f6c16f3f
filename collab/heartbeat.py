"""Engine.IO's heartbeat for every session of the server, on one timer.

python-engineio pings each session from a task of its own (a ``sleep`` of
the ping interval, then the PING through the session's queue and its writer
task), and its service task walks every session once per ping timeout, with
an ``asyncio.wait_for`` (a task and a timer) between any two of them: with
10,000 idle connections that is 400 tasks a second for the pings and 500 for
the walk, and a sleeping task per connection held in memory
(BENCHMARKS.md, ``bench conns``).

:class:`Heartbeat` keeps the sessions in a timing wheel of one-second slots
instead, and one timer handle turns it, a slot at a time:

* a session is due a PING ``ping_interval`` after it connected or last
  answered one. On a WebSocket the PING frame is written straight to its
  transport (one prebuilt ``bytes``, shared: a ping can go between any two
  frames, Engine.IO clients handle it below Socket.IO); a long-polling
  session gets it through engine.io's queue, as before;
* a PONG (the WebSocket read loop's, or engine.io's ``receive`` calling the
  session's ``schedule_ping``, which is this) moves it ``ping_interval``
  ahead;
* a session whose PONG has not come ``ping_timeout`` after its PING is
  closed as engine.io closes it (reason ``ping timeout``, a CLOSE packet),
  and taken out of engine.io's session table.

A slot is a second (a quarter of a shorter interval or timeout): a PING
goes out up to a slot early, never late, and a silent session is ended up
to a slot after its timeout. Sessions are added by collab.sessions when
engine.io reports the connect, and forgotten at the disconnect.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import engineio

from collab.upstream import take_over_heartbeat, websocket_transport

__all__ = ["PING_FRAME", "Heartbeat"]

log = logging.getLogger("collab.heartbeat")

#: An Engine.IO PING as a server→client WebSocket frame: FIN and text, one
#: byte long, "2".
PING_FRAME = b"\x81\x012"


class Heartbeat:
    """Pings every Engine.IO session of ``eio`` and ends the silent ones."""

    def __init__(
        self,
        eio: Any,
        *,
        websockets: Callable[[str], Any],
        interval_s: float,
        timeout_s: float,
        spawn: Callable[[Any], Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.eio = eio
        #: Engine.IO sid → (aiohttp WebSocketResponse, engine.io socket), or None.
        self._websocket = websockets
        #: The wheel's slot: a second, or a quarter of a shorter setting.
        self.slot_s = min(1.0, interval_s / 4, timeout_s / 4)
        #: A PING goes out at most a slot before the interval is over…
        self.interval = max(1, math.ceil(interval_s / self.slot_s))
        #: …and a session is ended at most a slot after its timeout.
        self.timeout = math.ceil(timeout_s / self.slot_s) + 1
        self._spawn = spawn
        self._clock = clock
        #: slot (the clock in slots) → the sids due then.
        self._slots: dict[int, dict[str, None]] = {}
        #: sid → the slot it is in.
        self._slot_of: dict[str, int] = {}
        #: sids pinged and not answered yet.
        self._waiting: set[str] = set()
        self._turned = self._now()
        self._timer: asyncio.TimerHandle | None = None
        self.pings = 0
        self.timeouts = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    # -- sessions ---------------------------------------------------------------

    def add(self, eio_sid: str) -> None:
        """Take over the heartbeat of the Engine.IO session ``eio_sid`` (just
        connected): engine.io's own pings for it stop."""
        socket = self.eio.sockets.get(eio_sid)
        if socket is None:
            return
        take_over_heartbeat(socket, lambda: self.pong(eio_sid))
        self._place(eio_sid, self.interval)

    def pong(self, eio_sid: str) -> None:
        """``eio_sid`` answered (or just connected): due again in an interval."""
        if eio_sid in self._slot_of:
            self._waiting.discard(eio_sid)
            self._place(eio_sid, self.interval)

    def forget(self, eio_sid: str) -> None:
        """The session ended (engine.io is closing it): it leaves engine.io's
        table once closed, as engine.io's service task took it out (a
        long-polling session whose client sent CLOSE is never asked for again)."""
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None:
            asyncio.get_running_loop().call_later(self.slot_s, self._reap, eio_sid, socket, 3)
        slot = self._slot_of.pop(eio_sid, None)
        if slot is not None:
            self._unslot(eio_sid, slot)
        self._waiting.discard(eio_sid)

    def _reap(self, eio_sid: str, socket: Any, tries: int) -> None:
        if self.eio.sockets.get(eio_sid) is not socket:
            return  # gone already (a WebSocket's handler takes its own out)
        if socket.closed:
            del self.eio.sockets[eio_sid]
        elif tries > 1:
            asyncio.get_running_loop().call_later(
                self.slot_s, self._reap, eio_sid, socket, tries - 1
            )

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the wheel ----------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock() / self.slot_s)

    def _place(self, eio_sid: str, after: int) -> None:
        slot = self._now() + after
        old = self._slot_of.get(eio_sid)
        if old == slot:
            return
        if old is not None:
            self._unslot(eio_sid, old)
        self._slot_of[eio_sid] = slot
        self._slots.setdefault(slot, {})[eio_sid] = None
        if self._timer is None:
            self._arm()

    def _unslot(self, eio_sid: str, slot: int) -> None:
        due = self._slots.get(slot)
        if due is not None:
            due.pop(eio_sid, None)
            if not due:
                del self._slots[slot]

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        now = self._clock()
        delay = (math.floor(now / self.slot_s) + 1) * self.slot_s - now  # the next slot
        self._timer = loop.call_later(delay, self._turn)

    def _turn(self) -> None:
        self._timer = None
        now = self._now()
        for slot in range(self._turned + 1, now + 1) if now > self._turned else ():
            due = self._slots.pop(slot, None)
            if due:
                for eio_sid in due:
                    del self._slot_of[eio_sid]
                    self._due(eio_sid)
        self._turned = max(self._turned, now)
        if self._slots:
            self._arm()

    def _due(self, eio_sid: str) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closed:
            self._waiting.discard(eio_sid)
            return
        if eio_sid in self._waiting:
            self._waiting.discard(eio_sid)
            self.timeouts += 1
            self._spawn(self._expire(eio_sid, socket))
            return
        self._waiting.add(eio_sid)
        self._place(eio_sid, self.timeout)
        self.pings += 1
        entry = self._websocket(eio_sid)
        transport = websocket_transport(entry[0]) if entry is not None else None
        if transport is not None and not transport.is_closing() and not socket.upgrading:
            transport.write(PING_FRAME)
        else:  # long-polling (or mid-upgrade): engine.io's queue
            socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.PING))

    async def _expire(self, eio_sid: str, socket: Any) -> None:
        """Close a session that stopped answering, as engine.io's own
        ``check_ping_timeout`` does."""
        log.info("ping timeout sid=%s", eio_sid)
        try:
            await socket.close(wait=False, abort=False, reason=self.eio.reason.PING_TIMEOUT)
        finally:
            if socket.closed and self.eio.sockets.get(eio_sid) is socket:
                del self.eio.sockets[eio_sid]
