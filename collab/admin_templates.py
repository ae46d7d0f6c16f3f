"""The admin API's board templates (protocol.md §5.4 and §10.1): a platform
lists every template a facilitator may place, and adds, replaces and
deletes its own (collab.templates). Shipped templates cannot be replaced or
deleted."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from collab.admin_auth import Principal
from collab.templates import TemplateLibrary
from crdt.errors import InvalidPayload
from rooms.audit import AuditAction
from rooms.errors import NotFound, PermissionDenied
from rooms.templates import MAX_TEMPLATE_BYTES

__all__ = ["add_template_routes"]

Route = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
Guard = Callable[..., Callable[[web.Request], Awaitable[web.StreamResponse]]]
Audit = Callable[[AuditAction, Principal, str], None]

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def add_template_routes(
    router: web.UrlDispatcher,
    guarded: Guard,
    library: Callable[[], TemplateLibrary] | TemplateLibrary,
    audit: Audit,
) -> None:
    """Route ``/api/templates``: ``guarded`` authorizes (an admin key) and
    audits failures, ``audit`` records what succeeded."""

    def templates() -> TemplateLibrary:
        return library() if callable(library) else library

    async def list_templates(request: web.Request, principal: Principal) -> web.Response:
        found = await templates().all()
        audit(AuditAction.ADMIN_READ, principal, f"templates count={len(found)}")
        return _json({"templates": [t.summary() for t in found]})

    async def get_template(request: web.Request, principal: Principal) -> web.Response:
        template = await templates().get(_template_id(request))
        return _json({**template.to_json(), "source": template.source})

    async def put_template(request: web.Request, principal: Principal) -> web.Response:
        template_id = _template_id(request)
        raw = await request.content.read(MAX_TEMPLATE_BYTES + 1)
        if len(raw) > MAX_TEMPLATE_BYTES:
            raise InvalidPayload(f"template larger than {MAX_TEMPLATE_BYTES} bytes")
        body = _body_with_id(raw, template_id)
        template, created = await templates().put(body)
        action = AuditAction.CREATE if created else AuditAction.TEMPLATE
        audit(action, principal, f"template {template.id} shapes={len(template.shapes)}")
        return _json(template.summary(), 201 if created else 200)

    async def delete_template(request: web.Request, principal: Principal) -> web.Response:
        template_id = _template_id(request)
        library = templates()
        if template_id in library.shipped:
            raise PermissionDenied("shipped templates cannot be deleted")
        if not await library.delete(template_id):
            raise NotFound("no such platform template")
        audit(AuditAction.DELETE, principal, f"template {template_id}")
        return _json({"deleted": template_id})

    router.add_get("/api/templates", guarded(list_templates, AuditAction.ADMIN_READ))
    router.add_get("/api/templates/{id}", guarded(get_template, AuditAction.ADMIN_READ))
    router.add_put("/api/templates/{id}", guarded(put_template, AuditAction.CREATE))
    router.add_delete("/api/templates/{id}", guarded(delete_template, AuditAction.DELETE))


def _template_id(request: web.Request) -> str:
    template_id = request.match_info["id"]
    if not _ID.fullmatch(template_id):
        raise InvalidPayload("a template id is 1-64 of [a-z0-9-]")
    return template_id


def _body_with_id(raw: bytes, template_id: str) -> bytes:
    """The template JSON, its ``id`` the path's (given or not; a different one is refused)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidPayload("the template is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidPayload("the template must be a JSON object")
    if value.setdefault("id", template_id) != template_id:
        raise InvalidPayload("the template's id differs from the path's")
    return orjson.dumps(value)
