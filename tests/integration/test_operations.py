"""Operations: /healthz, /metrics, logs without content, memory after many rooms."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from pycrdt import Array, Map

from collab.client import CollabClient, CollabClientError
from tests.scrape import scrape
from tests.waiting import until


async def test_healthz(server):
    async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok"
    assert body["store"] == "memory"
    assert body["rooms"] == 0


async def test_metrics_count_traffic(server, client_factory):
    a = await client_factory(server.url, "m")
    b = await client_factory(server.url, "m")
    a.doc.get("shapes", type=Map)["s"] = {"type": "rect"}
    await b.wait_for(lambda: "s" in (b.doc.get("shapes", type=Map).to_py() or {}))
    await a.emit_raw("sync-update", b"\xff")
    await a.wait_for(lambda: len(a.errors) == 1)
    values = await scrape(server.url)
    assert values["collab_connections"] == 2
    assert values["collab_rooms_loaded"] == 1
    assert values["collab_documents_loaded"] == 2  # the board and the room's meta
    assert values["collab_updates_in_total"] >= 1
    assert values["collab_bytes_in_total"] > 0
    assert values['collab_deliveries_out_total{event="sync-update"}'] >= 1
    assert values['collab_errors_total{code="malformed_update"}'] == 1
    assert values["collab_fanout_seconds_count"] >= 1


async def test_logs_carry_ids_and_sizes_never_content(server, client_factory, caplog):
    caplog.set_level(logging.DEBUG)
    secret_text = "my-diagnosis-is-SECRET-1234"
    secret_shape = "SHAPE-CONTENT-SECRET-5678"
    a = await client_factory(server.url, "private", auth={"name": "Ann"})
    b = await client_factory(server.url, "private", "chat", auth={"name": "Bob"})
    a.doc.get("shapes", type=Map)["s"] = {"type": "text", "text": secret_shape}
    await a.send_chat(secret_text)
    await b.send_chat(secret_text + "-again")
    await b.wait_for(lambda: len(b.doc.get("messages", type=Array)) == 2)
    with_bad = "x" * 5000
    with pytest.raises(CollabClientError):
        await a.send_chat(with_bad)
    messages = [r.getMessage() for r in caplog.records]
    assert any("chat message" in m for m in messages), "chat sends are logged (by id)"
    for message in messages:
        assert secret_text not in message
        assert secret_shape not in message
        assert with_bad not in message


async def test_many_rooms_through_the_server_leave_nothing_loaded(server_factory):
    srv = await server_factory(unload_after_s=0)
    for i in range(150):
        client = CollabClient(srv.url, f"room-{i}", auth={"name": "x"}, reconnection=False)
        await client.connect()
        client.doc.get("shapes", type=Map)["s"] = {"type": "rect"}
        await client.close()
    registry = srv.app.registry

    async def settled() -> bool:
        return not (registry.rooms or srv.app.sync.connections or srv.app.sio.eio.sockets)

    await until(settled, what="every room, connection and socket gone")
    assert registry.rooms == {}
    assert srv.app.sync.connections == {}
    assert srv.app.sio.manager.rooms == {}, "python-socketio keeps no per-namespace state"
    assert srv.app.sio.eio.sockets == {}
    assert len(await registry.store.list_rooms()) == 150


async def test_web_pages_carry_the_security_policy(server_factory):
    srv = await server_factory(frame_ancestors=("https://platform.example",))
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/r/clinic-7/group-a"):
            async with http.get(srv.url + path) as resp:
                assert resp.status == 200
                csp = resp.headers["Content-Security-Policy"]
                assert "frame-ancestors https://platform.example" in csp
                assert "script-src 'self'" in csp and "unsafe-eval" not in csp
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(srv.url + "/r/bad%20room") as resp:
            assert resp.status == 404
        async with http.get(srv.url + "/web/config.json") as resp:
            assert await resp.json() == {
                "dev": True,
                "embedOrigins": ["https://platform.example"],
                "embedSelf": False,
                "maxImageBytes": 5 << 20,
                "chatDeleteWindowS": 300.0,
            }


async def test_a_facilitator_token_may_export_its_own_room_only(token_server, client_factory):
    from tests.conftest import mint

    writer = await client_factory(
        token_server.url, "clinic-7/a", auth={"token": mint("clinic-7/a", sub="w")}
    )
    await writer.send_chat("for the record")
    # A valid token that may not export is refused with its reason (403); a
    # prefix token may not export at all (protocol.md §10.1, issue 13).
    cases = [
        (mint("clinic-7/a", role="facilitator"), "clinic-7%2Fa", 200),
        (mint("clinic-7/*", role="facilitator"), "clinic-7%2Fa", 403),
        (mint("clinic-7/a", role="participant"), "clinic-7%2Fa", 403),
        (mint("clinic-7/b", role="facilitator"), "clinic-7%2Fa", 403),
        ("not-a-token", "clinic-7%2Fa", 401),
    ]
    async with aiohttp.ClientSession() as http:
        for token, room, status in cases:
            async with http.get(
                f"{token_server.url}/api/rooms/{room}/export?format=markdown",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == status, (token[:20], await resp.text())
                if status == 200:
                    assert "> for the record" in await resp.text()
        # a facilitator token opens nothing else of the admin API
        async with http.get(
            f"{token_server.url}/api/rooms",
            headers={"Authorization": f"Bearer {mint('clinic-7/*', role='facilitator')}"},
        ) as resp:
            assert resp.status == 401
