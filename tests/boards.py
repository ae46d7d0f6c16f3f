"""Board content for tests: what a client holds, and updates to send by hand."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Map

from collab.client import CollabClient


def shapes(client: CollabClient) -> dict[str, Any]:
    """The shapes a client's board holds, as plain Python."""
    return client.doc.get("shapes", type=Map).to_py() or {}


class DrawingDoc:
    """A board document that keeps each change as the Yjs update a client sends."""

    def __init__(self) -> None:
        self.doc: Doc[Any] = Doc()
        self.updates: list[bytes] = []
        self.doc.observe(lambda event: self.updates.append(bytes(event.update)))

    def put(self, key: str, shape: dict[str, Any]) -> bytes:
        """Set shape ``key``; return the update that carries it."""
        self.doc.get("shapes", type=Map)[key] = shape
        return self.updates[-1]
