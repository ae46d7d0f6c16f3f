"""The document path of one update, timed in-process: ``Document.receive_update``
(structure check, limits, apply, bookkeeping) for a stream of pen strokes (each
diff against the state before it, so it carries the document's whole delete
set, as issue 12 measured it) and for the moves of shapes as a client sends
them (one transaction's update each).

A microbenchmark for before/after comparisons of that path, where the
fan-out benchmark's noise (±10% a round on a shared host) hides a few µs::

    python -m bench.docpath                               # this checkout
    PYTHONPATH=../before python -m bench.docpath          # another one

It imports the server's own layers (rooms, crdt), unlike the rest of the
harness, which talks to servers over the network only.
"""

from __future__ import annotations

import argparse
import statistics
import time

from pycrdt import Doc, Map

from crdt.engine import engine_factory
from crdt.types import DocName, RoomId, UserId
from rooms.document import Document
from rooms.identity import Identity, Role
from rooms.limits import Limits


def strokes(count: int, shapes: int = 300) -> list[bytes]:
    """``count`` updates of one client, each rewriting one of ``shapes`` pen shapes."""
    doc = Doc(client_id=12345)
    board = doc.get("shapes", type=Map)
    updates = []
    for i in range(count):
        before = doc.get_state()
        board[f"s{i % shapes}"] = {"type": "pen", "points": [i, i + 1, i + 2, i + 3]}
        updates.append(bytes(doc.get_update(before)))
    return updates


def moves(count: int, shapes: int = 300) -> list[bytes]:
    """The updates a client sends (one a transaction) to make ``shapes``
    rectangles and then move one at a time, ``count`` times: each move
    deletes the old ``x`` and ``y``."""
    doc = Doc(client_id=23456)
    board = doc.get("shapes", type=Map)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    with doc.transaction():
        for i in range(shapes):
            board[f"r{i}"] = Map({"type": "rect", "x": 0.0, "y": 0.0})
    for i in range(count):
        with doc.transaction():
            shape = board[f"r{i % shapes}"]
            shape["x"] = float(i)
            shape["y"] = float(i + 1)
    return updates


def time_path(updates: list[bytes], repeats: int) -> list[float]:
    """µs per update of each repeat (a fresh document each time)."""
    identity = Identity(UserId("u-bench"), "Bench", Role.PARTICIPANT)
    results = []
    for _ in range(repeats):
        doc = Document(RoomId("bench"), DocName("board"), engine_factory("pycrdt")(), Limits())
        started = time.perf_counter()
        for update in updates:
            doc.receive_update(update, identity)
            doc.pending.clear()
        results.append((time.perf_counter() - started) / len(updates) * 1e6)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.docpath", description=__doc__)
    parser.add_argument("--updates", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for name, updates in (("strokes", strokes(args.updates)), ("moves", moves(args.updates))):
        results = time_path(updates, args.repeats)
        print(
            f"receive_update {name}: best {min(results):.2f} µs, "
            f"median {statistics.median(results):.2f} µs per update "
            f"({args.repeats} × {len(updates)})"
        )


if __name__ == "__main__":
    main()
