"""The board templates a facilitator may place (rooms.templates,
protocol.md §5.4): the ones shipped in ``rooms/board_templates/``, and the
platform's own, added and deleted through the admin API (§10.1).

A platform's template is kept in the store as a blob (rooms.store.BlobStore)
of the reserved room ``~templates`` (no room may take that name:
rooms.names), its JSON as the platform sent it once parsed, named by its
SHA-256. Every node reads the same ones: a list asks the store which blobs
there are and reads only those it has not parsed yet, so a template one node
takes is seen by every node at its next list or placement.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from collab.errors import Conflict, TemplatesUnavailable
from crdt.errors import InvalidPayload
from crdt.text import quote
from crdt.types import RoomId
from rooms.errors import NotFound
from rooms.names import TEMPLATES_ROOM
from rooms.store import TEMPLATE_MEDIA_TYPE, BlobStore, Store
from rooms.templates import Template, parse_template, shipped_templates

__all__ = ["MAX_PLATFORM_TEMPLATES", "TEMPLATE_MEDIA_TYPE", "TemplateLibrary"]

log = logging.getLogger("collab.templates")

#: Templates a platform may add.
MAX_PLATFORM_TEMPLATES = 100


@dataclass(frozen=True, slots=True)
class _Stored:
    digest: str
    template: Template


class TemplateLibrary:
    """Templates by id, for ``mod:template``, ``templates:list`` and the
    admin API. Without a store that keeps blobs: the shipped ones only."""

    def __init__(
        self, shipped: dict[str, Template] | None = None, store: Store | None = None
    ) -> None:
        self.shipped = shipped if shipped is not None else shipped_templates()
        self.store = store if isinstance(store, BlobStore) else None
        #: The platform's templates read so far, by digest.
        self._parsed: dict[str, Template] = {}

    @property
    def room(self) -> RoomId:
        return TEMPLATES_ROOM

    async def get(self, template_id: str) -> Template:
        """The template, or NotFound (OSError if the store fails)."""
        template = self.shipped.get(template_id)
        if template is None:
            stored = (await self._platform()).get(template_id)
            template = stored.template if stored is not None else None
        if template is None:
            raise NotFound("no such template")
        return template

    async def all(self) -> list[Template]:
        """Every template, shipped ones first, each by id."""
        platform = await self._platform()
        return [self.shipped[k] for k in sorted(self.shipped)] + [
            platform[k].template for k in sorted(platform)
        ]

    async def put(self, data: bytes) -> tuple[Template, bool]:
        """Parse ``data`` and keep it as the platform's template of its id;
        whether it is new (False: it replaced the platform's one of that
        id). InvalidPayload for a template outside the schema or past the
        count limit, Conflict for a shipped template's id,
        TemplatesUnavailable without a store that keeps blobs, OSError if
        the store fails."""
        template = parse_template(data, source="platform")
        if template.id in self.shipped:
            raise Conflict(f"a shipped template is called {template.id}: choose another id")
        store = self._store()
        platform = await self._platform()
        if template.id not in platform and len(platform) >= MAX_PLATFORM_TEMPLATES:
            raise InvalidPayload(f"a platform may add at most {MAX_PLATFORM_TEMPLATES} templates")
        body = json.dumps(template.to_json(), ensure_ascii=False, sort_keys=True).encode()
        digest = hashlib.sha256(body).hexdigest()
        await store.put_blob(self.room, digest, body, TEMPLATE_MEDIA_TYPE)
        self._parsed[digest] = template
        old = platform.get(template.id)
        if old is not None and old.digest != digest:
            await store.delete_blobs(self.room, [old.digest])
        return template, old is None

    async def delete(self, template_id: str) -> bool:
        """Delete the platform's template ``template_id``; whether there was one."""
        stored = (await self._platform()).get(template_id)
        if stored is None:
            return False
        await self._store().delete_blobs(self.room, [stored.digest])
        return True

    def _store(self) -> BlobStore:
        if self.store is None:
            raise TemplatesUnavailable("this server's store keeps no platform templates")
        return self.store

    async def _platform(self) -> dict[str, _Stored]:
        """The platform's templates by id (the newest copy of an id wins)."""
        if self.store is None:
            return {}
        found: dict[str, _Stored] = {}
        blobs = sorted(await self.store.list_blobs(self.room), key=lambda b: b.created_ms)
        self._parsed = {b.digest: self._parsed[b.digest] for b in blobs if b.digest in self._parsed}
        for blob in blobs:
            template = self._parsed.get(blob.digest)
            if template is None:
                got = await self.store.get_blob(self.room, blob.digest)
                if got is None or got[1] != TEMPLATE_MEDIA_TYPE:
                    continue
                try:
                    template = parse_template(got[0], source="platform")
                except InvalidPayload as exc:  # kept by another version: skipped, not fatal
                    log.warning(
                        "stored template skipped digest=%s: %s",
                        blob.digest[:12],
                        quote(str(exc), limit=120),  # it may name the template's fields
                    )
                    continue
                self._parsed[blob.digest] = template
            found[template.id] = _Stored(blob.digest, template)
        return found
