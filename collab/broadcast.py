"""Encode once, write many: the broadcast path (docs/architecture.md §7).

A relayed event is the same bytes for every recipient: a server→client
WebSocket frame is unmasked, so the Socket.IO header frame and its binary
attachment frame are built once per broadcast and the same ``bytes`` object
is handed to each recipient's transport: no per-recipient packet objects,
tasks, queues or writer wake-ups. Frames due to one socket within one
event-loop turn go out in one ``transport.write``.

Order: a recipient whose Engine.IO queue holds packets, or whose transport
has unsent bytes (engine.io's writer may be waiting to drain between the two
frames of an event), gets the broadcast appended to that queue instead, in
the same call, behind what is already there. Its later broadcasts follow
through the queue until engine.io's writer has written the last of them (it
tells by encoding that broadcast's attachment packet, which it does just
before writing it): the writer takes packets from the queue a loop iteration
or two before it writes them, so an empty queue alone does not mean they are
out. Relative to engine.io's own packets (acks, errors, ``room:state``) that
window remains; Yjs updates and awareness states are indifferent to it (Yjs
holds an update whose dependencies have not arrived; awareness has clocks).
Polling clients and sockets in the middle of an upgrade take python-
socketio's own path.

Slow consumers: a recipient whose queued broadcasts, not yet written, pass
``max_send_buffer_bytes`` (or whose queue passes ``max_queued_packets``) is
disconnected, never allowed to grow memory (protocol.md §1). What its
transport holds does not count: engine.io's writer waits for the transport
to drain before it writes more, so that is at most one message past the
high-water mark, and a single large message (a joiner's initial state, a big
paste) must not make a healthy reader on a slow link look stalled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import engineio
import socketio

from collab.transport import WebSocketTracker
from collab.upstream import binary_event_header, eio_sid_of, queue_items, websocket_transport
from collab.ws_frames import FIN_BINARY, FIN_TEXT, frame

__all__ = ["Broadcaster", "binary_event_frames", "binary_event_header_packet"]

log = logging.getLogger("collab.broadcast")


#: The Socket.IO packet of an event whose one argument is an attachment, by
#: namespace and event (built once for a room's document).
_binary_event_header = functools.lru_cache(maxsize=4096)(binary_event_header)


def binary_event_frames(namespace: str, event: str, payload: bytes) -> bytes:
    """The two WebSocket frames of a Socket.IO event with one binary argument,
    as python-socketio would send them (Engine.IO message, binary attachment)."""
    text = "4" + _binary_event_header(namespace, event)
    return frame(FIN_TEXT, text.encode()) + frame(FIN_BINARY, payload)


def binary_event_header_packet(namespace: str, event: str) -> Any:
    """The first Engine.IO packet of the same event, for engine.io's queue
    (shared by every recipient: its writer only encodes it)."""
    return engineio.packet.Packet(
        engineio.packet.MESSAGE, data=_binary_event_header(namespace, event)
    )


class _Attachment(engineio.packet.Packet):  # type: ignore[misc]
    """A queued broadcast's attachment packet for one recipient: engine.io's
    writer encodes it just before it writes it, which ``written`` learns."""

    def __init__(self, payload: bytes, written: Callable[[], None]) -> None:
        super().__init__(engineio.packet.MESSAGE, data=payload)
        self._written = written

    def encode(self, b64: bool = False) -> Any:
        self._written()
        return super().encode(b64)


#: A WebSocket recipient: its transport, engine.io socket, that socket's
#: queue and the queue's deque.
_Handle = tuple[Any, Any, Any, Any]


class Broadcaster:
    """Writes broadcasts straight to recipients' transports, in batches."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        tracker: WebSocketTracker,
        *,
        enabled: bool = True,
        max_send_buffer_bytes: int = 4 << 20,
        max_queued_packets: int = 4096,
    ) -> None:
        self.sio = sio
        self.tracker = tracker
        self.enabled = enabled
        self.max_send_buffer_bytes = max_send_buffer_bytes
        self.max_queued_packets = max_queued_packets
        #: This turn's broadcasts: their frames and the transports they go to.
        self._batches: list[tuple[bytes, list[Any]]] = []
        #: Socket.IO sid → its _Handle, resolved once per connection.
        self._handles: dict[str, _Handle] = {}
        #: Socket.IO sid → [broadcasts, their bytes] in its Engine.IO queue
        #: (or taken by engine.io's writer) not yet written.
        self._queued: dict[str, list[int]] = {}
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.fast_deliveries = 0
        self.queued_deliveries = 0
        self.dropped_slow = 0

    @property
    def recipients_behind(self) -> int:
        """Recipients with broadcasts in their Engine.IO queue, not yet written."""
        return len(self._queued)

    def stats(self) -> dict[str, int]:
        """The counters ``/metrics`` shows."""
        return {
            "direct": self.fast_deliveries,
            "queued": self.queued_deliveries,
            "dropped_slow": self.dropped_slow,
            "behind": self.recipients_behind,
        }

    def forget(self, sid: str) -> None:
        """The connection ``sid`` ended: drop what was resolved for it."""
        self._handles.pop(sid, None)
        self._queued.pop(sid, None)

    def _resolve(self, sid: str, namespace: str) -> _Handle | None:
        """The transport and engine.io socket behind ``sid``, if it is a
        WebSocket the fast path may write to (else None: the normal path)."""
        eio_sid = eio_sid_of(self.sio, sid, namespace)
        entry = self.tracker.by_eio_sid.get(eio_sid) if eio_sid is not None else None
        if entry is None:
            return None  # polling (or not yet upgraded): the normal path
        ws, eio_socket = entry
        transport = websocket_transport(ws)
        if transport is None or eio_socket.upgrading:
            # Mid-upgrade engine.io holds its packets back: the normal path
            # until it is done (a socket upgrades once, before it is cached).
            return None
        queue = eio_socket.queue
        # The queue's deque itself: its truth is a C check, not a method call.
        handle = (transport, eio_socket, queue, queue_items(queue))
        self._handles[sid] = handle
        return handle

    def send(
        self,
        namespace: str,
        event: str,
        payload: bytes,
        sids: Iterable[Any],
        *,
        skip: str | None = None,
    ) -> int:
        """Broadcast ``event(payload)`` to ``sids``, every member of
        ``namespace`` (but ``skip``); return how many recipients it was
        handed to."""
        if not self.enabled:  # python-socketio's own path, as a stock server takes it
            count = sum(1 for sid in sids if sid != skip)
            self._spawn(self.sio.emit(event, payload, namespace=namespace, skip_sid=skip))
            self.queued_deliveries += count
            return count
        header: Any = None  # the Engine.IO packet, for recipients behind their queue
        targets: list[Any] = []  # transports the frames go to, this turn
        fallback: list[str] = []
        enqueued = 0
        handles = self._handles
        queued = self._queued
        for sid in sids:
            if sid == skip:
                continue
            handle = handles.get(sid) or self._resolve(sid, namespace)
            if handle is None:
                fallback.append(sid)  # polling (or not yet upgraded): the normal path
                continue
            transport = handle[0]
            if transport.get_write_buffer_size() or handle[3] or sid in queued:
                # Behind what engine.io holds: join its queue, now, in order.
                if header is None:
                    header = binary_event_header_packet(namespace, event)
                if self._behind(sid, handle, header, payload):
                    enqueued += 1
                continue
            # A closed socket's transport is closing: _flush skips it, and
            # forget() drops its handle when Socket.IO sees the disconnect.
            targets.append(transport)
        if targets:
            self._batches.append((binary_event_frames(namespace, event, payload), targets))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
        self.fast_deliveries += len(targets)
        if fallback:
            self._spawn(self.sio.emit(event, payload, to=fallback, namespace=namespace))
        self.queued_deliveries += enqueued + len(fallback)
        return len(targets) + enqueued + len(fallback)

    def _behind(self, sid: str, handle: _Handle, header: Any, payload: bytes) -> bool:
        """A recipient with unsent bytes or queued packets: append the event to
        its Engine.IO queue (True), or drop it if it is closed or past the
        limits (False)."""
        transport, eio_socket, queue, _ = handle
        if eio_socket.closed or transport.is_closing():
            self._handles.pop(sid, None)
            return False
        owed = self._queued.get(sid)
        if owed is None:
            owed = self._queued[sid] = [0, 0]
        packets = queue.qsize()
        if owed[1] > self.max_send_buffer_bytes or packets > self.max_queued_packets:
            self._drop_slow(sid, transport, owed[1], packets)
            return False
        queue.put_nowait(header)
        size = len(payload)
        queue.put_nowait(_Attachment(payload, functools.partial(self._written, sid, size)))
        owed[0] += 1
        owed[1] += size
        return True

    def _written(self, sid: str, size: int) -> None:
        """Engine.IO's writer is writing one of ``sid``'s queued broadcasts."""
        owed = self._queued.get(sid)
        if owed is None:
            return  # forgotten: the connection ended
        owed[0] -= 1
        owed[1] -= size
        if owed[0] <= 0:
            del self._queued[sid]

    def _flush(self) -> None:
        """Write what this turn's broadcasts left: one write per socket."""
        self._flush_scheduled = False
        batches, self._batches = self._batches, []
        if len(batches) == 1:  # the usual turn: one broadcast, the same bytes for all
            frames, targets = batches[0]
            for transport in targets:
                if not transport.is_closing():
                    transport.write(frames)
            return
        chunks: dict[Any, list[bytes]] = {}
        for frames, targets in batches:
            for transport in targets:
                chunks.setdefault(transport, []).append(frames)
        for transport, parts in chunks.items():
            if not transport.is_closing():
                transport.write(b"".join(parts))

    def _drop_slow(self, sid: str, transport: Any, owed_bytes: int, packets: int) -> None:
        self.dropped_slow += 1
        log.warning(
            "slow consumer dropped sid=%s queued_bytes=%d queued_packets=%d transport_bytes=%d",
            sid,
            owed_bytes,
            packets,
            transport.get_write_buffer_size(),
        )
        self._handles.pop(sid, None)
        self._queued.pop(sid, None)
        transport.abort()  # engine.io sees the socket close and cleans up

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
