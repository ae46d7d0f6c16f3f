"""The server as extensions see it (collab.extensions, docs/architecture.md
§12): :class:`ExtensionPort`, the narrow server they may call, and
:func:`tell_document_events`, the registry's document events turned into
their notifications (so ``rooms`` never imports ``collab``)."""

from __future__ import annotations

from typing import Any

from collab.emitter import Emitter
from collab.extensions import DocumentEvent, Extensions, RoomEvent, check_event_name
from crdt.types import DocName, RoomId, Update
from rooms.document import Document
from rooms.registry import RoomRegistry

__all__ = ["ExtensionPort", "tell_document_events"]


class ExtensionPort:
    """The narrow part of the server an extension may use
    (collab.extensions.ExtensionServer)."""

    def __init__(self, emitter: Emitter, registry: RoomRegistry, node_id: str) -> None:
        self._emitter = emitter
        self._registry = registry
        self.node_id = node_id

    async def emit(self, room: RoomId, event: str, data: Any, *, doc: DocName | None = None) -> int:
        check_event_name(event)
        return await self._emitter.emit_to_room(room, event, data, doc=doc)

    async def document_state(self, room: RoomId, doc: DocName) -> Update:
        registry = self._registry
        async with registry.use(room):
            document = await registry.document(room, doc)
            return document.engine.full_state()


def tell_document_events(registry: RoomRegistry, extensions: Extensions) -> None:
    """Have ``registry`` tell ``extensions`` when it loads or stores a
    document and when it purges a room (``on_load_document``,
    ``on_store_document``, ``on_room_ended``); nothing without extensions."""
    if not extensions:
        return

    def loaded(doc: Document, nbytes: int) -> None:
        if extensions.wants("on_load_document"):
            event = DocumentEvent(doc.room_id, doc.name, 0, nbytes)
            extensions.notify("on_load_document", event)

    def stored(doc: Document, updates: int, nbytes: int) -> None:
        if extensions.wants("on_store_document"):
            event = DocumentEvent(doc.room_id, doc.name, updates, nbytes)
            extensions.notify("on_store_document", event)

    def purged(room_id: RoomId) -> None:
        if extensions.wants("on_room_ended"):
            extensions.notify("on_room_ended", RoomEvent(room_id, "purged"))

    registry.on_document_loaded = loaded
    registry.on_document_stored = stored
    registry.on_room_purged = purged
