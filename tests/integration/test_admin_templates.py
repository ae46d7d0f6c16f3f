"""The admin API's board templates (protocol.md §10.1): a platform adds,
replaces, reads and deletes its own templates; a facilitator places one
like a shipped one; shipped ones cannot be replaced or deleted; every call
needs the admin key and is audited."""

from __future__ import annotations

import json

import aiohttp

from tests.boards import shapes
from tests.conftest import ADMIN_KEY, mint

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ROOM = "group-platform"

CHECK_IN = {
    "title": {"en": "Check-in", "es": "Ronda de inicio"},
    "description": "How is everyone arriving today?",
    "shapes": [
        {"type": "text", "x": 0, "y": 0, "text": {"en": "One word for today", "es": "Una palabra"}},
        {"type": "rect", "x": 0, "y": 40, "w": 300, "h": 200, "color": "#1971c2"},
    ],
}


async def call(url: str, method: str, path: str, body=None, headers=ADMIN):
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(
            method, url + path, data=None if body is None else json.dumps(body).encode()
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_a_platform_adds_a_template_a_facilitator_places(token_server, client_factory):
    url = token_server.url
    status, body = await call(url, "PUT", "/api/templates/check-in", CHECK_IN)
    assert status == 201 and body["source"] == "platform" and body["shapes"] == 2
    status, body = await call(url, "GET", "/api/templates")
    assert status == 200
    ids = [t["id"] for t in body["templates"]]
    assert "check-in" in ids and "feelings-wheel" in ids
    status, body = await call(url, "GET", "/api/templates/check-in")
    assert status == 200 and body["title"]["es"] == "Ronda de inicio"

    fac = await client_factory(
        url, ROOM, auth={"token": mint(ROOM, role="facilitator", name="F", sub="f")}
    )
    listed = await fac.call("templates:list", {"lang": "es"})
    assert {"id": "check-in", "title": "Ronda de inicio"}.items() <= next(
        t for t in listed["templates"] if t["id"] == "check-in"
    ).items()
    await fac.call("mod:template", {"templateId": "check-in", "lang": "es"})
    await fac.wait_for(lambda: any(v.get("text") == "Una palabra" for v in shapes(fac).values()))

    changed = {**CHECK_IN, "shapes": CHECK_IN["shapes"][:1]}
    status, body = await call(url, "PUT", "/api/templates/check-in", changed)
    assert status == 200 and body["shapes"] == 1
    status, _ = await call(url, "DELETE", "/api/templates/check-in")
    assert status == 200
    status, body = await call(url, "GET", "/api/templates/check-in")
    assert status == 404

    await token_server.registry.flush_audit()
    records = await token_server.registry.store.read_audit(None)
    details = [(r.action, r.detail) for r in records if "template" in r.detail]
    assert ("create", "template check-in shapes=2") in details
    assert ("template", "template check-in shapes=1") in details
    assert ("delete", "template check-in") in details


async def test_refusals(token_server):
    url = token_server.url
    for method, path, body, status, code in (
        ("PUT", "/api/templates/goal-ladder", CHECK_IN, 409, "conflict"),
        ("DELETE", "/api/templates/goal-ladder", None, 403, "permission_denied"),
        ("DELETE", "/api/templates/nothing-here", None, 404, "not_found"),
        ("PUT", "/api/templates/Bad_Id", CHECK_IN, 400, "invalid_payload"),
        ("PUT", "/api/templates/x", {**CHECK_IN, "id": "y"}, 400, "invalid_payload"),
        (
            "PUT",
            "/api/templates/x",
            {**CHECK_IN, "shapes": [{"type": "script"}]},
            400,
            "invalid_payload",
        ),
        ("PUT", "/api/templates/x", ["not", "an", "object"], 400, "invalid_payload"),
    ):
        got, answer = await call(url, method, path, body)
        assert (got, answer["error"]["code"]) == (status, code), (method, path)
    got, answer = await call(url, "GET", "/api/templates", headers={})
    assert got == 401
    token = mint(ROOM, role="facilitator", sub="f")
    got, answer = await call(
        url, "PUT", "/api/templates/x", CHECK_IN, headers={"Authorization": f"Bearer {token}"}
    )
    assert got in (401, 403)
    assert "x" not in {t.id for t in await token_server.app.control.templates.all()}
