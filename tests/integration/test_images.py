"""Images on the board over HTTP (protocol.md §10.6), on a real server:
upload as a participant, read as an observer, what is refused (observers,
another room's token, a locked board, the room's quota, the rate, too many
bytes, not an image), and when stored images go (redaction, deletion,
retention, an unload). Images are made with Pillow in the tests.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from PIL import ExifTags, Image
from pycrdt import Map

from collab.app import create_app
from collab.config import settings_from
from rooms import blobs
from rooms.store_memory import MemoryStore
from tests.conftest import ADMIN_KEY, SECRET, mint
from tests.waiting import until

ROOM = "clinic-7/group-a"
PATH = "/api/rooms/" + quote(ROOM, safe="")


def photo(size: tuple[int, int] = (120, 80), *, noise: bool = False, gps: bool = True) -> bytes:
    """A JPEG (noise: a PNG of random pixels, which barely compresses)."""
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()
    image = Image.new("RGB", size, (200, 80, 40))
    exif = Image.Exif()
    if gps:
        exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitude: (40.0, 26.0, 46.0)}
        exif[ExifTags.Base.BodySerialNumber] = "SN-98765"
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Http:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session

    async def upload(
        self, token: str | None, data: bytes, *, room: str = ROOM, kind: str = "image/jpeg"
    ) -> tuple[int, Any]:
        headers = {"Content-Type": kind, **(bearer(token) if token else {})}
        url = f"{self.base}/api/rooms/{quote(room, safe='')}/images"
        async with self.session.post(url, data=data, headers=headers) as r:
            return r.status, await r.json()

    async def image(
        self, token: str | None, digest: str, *, room: str = ROOM, **headers: str
    ) -> tuple[int, bytes, Any]:
        url = f"{self.base}/api/rooms/{quote(room, safe='')}/images/{digest}"
        async with self.session.get(
            url, headers={**(bearer(token) if token else {}), **headers}
        ) as r:
            return r.status, await r.read(), r.headers


@pytest.fixture
async def http(token_server) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(token_server.url, session)


PARTICIPANT = mint(ROOM, sub="ann", name="Ann")
OBSERVER = mint(ROOM, role="observer", sub="obs", name="Olga")
FACILITATOR = mint(ROOM, role="facilitator", sub="fac", name="Dr Kim")


async def test_a_participant_uploads_and_an_observer_reads(http, token_server):
    source = photo()
    status, body = await http.upload(PARTICIPANT, source)
    assert status == 201, body
    assert set(body) == {"id", "width", "height", "mediaType", "bytes"}
    assert (body["width"], body["height"], body["mediaType"]) == (120, 80, "image/jpeg")
    store = token_server.registry.store
    data, kind = await store.get_blob(ROOM, body["id"])
    assert hashlib.sha256(data).hexdigest() == body["id"] and kind == "image/jpeg"
    assert len(data) == body["bytes"]
    assert b"SN-98765" not in data and b"Exif" not in data, "stored without its metadata"

    status, served, headers = await http.image(OBSERVER, body["id"])
    assert status == 200 and served == data
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Cache-Control"] == "private, no-cache"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["ETag"] == f'"{body["id"]}"'
    status, served, _ = await http.image(OBSERVER, body["id"], **{"If-None-Match": headers["ETag"]})
    assert status == 304 and served == b""

    # The same picture again is the same image.
    status, again = await http.upload(PARTICIPANT, source)
    assert status == 200 and again["id"] == body["id"]
    assert len(await store.list_blobs(ROOM)) == 1

    await token_server.registry.flush_audit()
    records = await store.read_audit(ROOM)
    (upload,) = [r for r in records if r.action == "upload" and r.outcome == "ok"]
    assert upload.user_id == "ann" and upload.detail == f"{body['id']} bytes={body['bytes']}"


async def test_who_may_upload_and_read(http, token_server):
    status, body = await http.upload(OBSERVER, photo())
    assert status == 403 and body["error"]["code"] == "permission_denied"
    status, body = await http.upload(None, photo())
    assert status == 401 and body["error"]["code"] == "missing_token"
    status, body = await http.upload("not.a.token", photo())
    assert status == 401 and body["error"]["code"] == "invalid_token"
    expired = mint(ROOM, sub="ann", now=time.time() - 7200, ttl_s=3600)
    status, body = await http.upload(expired, photo())
    assert status == 401 and body["error"]["code"] == "expired_token"

    status, body = await http.upload(mint("clinic-7/*", sub="pre"), photo())
    assert status == 201, "a prefix token covering the room, as for a connect"
    digest = body["id"]
    other_room = mint("clinic-9/other", sub="ann")
    status, _, _ = await http.image(other_room, digest)
    assert status == 403
    status, body = await http.upload(other_room, photo())
    assert status == 403 and body["error"]["code"] == "wrong_room"
    # A token for the other room reads nothing of this room through its own path either.
    status, _, _ = await http.image(other_room, digest, room="clinic-9/other")
    assert status == 404

    status, _, _ = await http.image(OBSERVER, "0" * 64)
    assert status == 404
    status, _, _ = await http.image(OBSERVER, "../../etc/passwd".replace("/", "%2F"))
    assert status == 404
    status, _, _ = await http.image(None, digest)
    assert status == 401

    await token_server.registry.flush_audit()
    records = await token_server.registry.store.read_audit(ROOM)
    assert any(r.action == "upload" and r.outcome == "permission_denied" for r in records)


async def test_a_locked_board_and_an_ended_session_refuse_participants(
    http, token_server, client_factory
):
    fac = await client_factory(token_server.url, ROOM, auth={"token": FACILITATOR})
    await fac.call("mod:lock", {"locked": True})
    status, body = await http.upload(PARTICIPANT, photo())
    assert status == 403 and body["error"]["code"] == "board_locked"
    status, body = await http.upload(FACILITATOR, photo())
    assert status == 201, "facilitators still place images"
    await fac.call("mod:lock", {"locked": False})
    assert (await http.upload(PARTICIPANT, photo((50, 50))))[0] == 201
    await fac.call("mod:remove", {"userId": "ann"})
    status, body = await http.upload(PARTICIPANT, photo())
    assert status == 403 and body["error"]["code"] == "removed"
    status, _, _ = await http.image(PARTICIPANT, body.get("id", "0" * 64))
    assert status == 403
    await fac.call("mod:end", {})
    status, body = await http.upload(FACILITATOR, photo((10, 10)))
    assert status == 403 and body["error"]["code"] == "session_ended"


async def test_limits(server_factory):
    srv = await server_factory(
        dev=False,
        jwt_secret=SECRET,
        max_image_bytes=40_000,
        max_room_image_bytes=60_000,
        image_burst=4,
        image_rate_per_s=0.01,
    )
    async with aiohttp.ClientSession() as session:
        http = Http(srv.url, session)
        status, body = await http.upload(PARTICIPANT, b"x" * 40_001)
        assert status == 413 and body["error"]["code"] == "image_too_large"
        status, body = await http.upload(PARTICIPANT, b"plain text, not an image", kind="image/png")
        assert status == 415 and body["error"]["code"] == "unsupported_image"
        status, body = await http.upload(PARTICIPANT, photo(), kind="text/html")
        assert status == 415 and body["error"]["code"] == "unsupported_image"
        # Each attempt takes one of the burst (4), before its body is read: the
        # three refusals above and this one.
        first = photo((100, 100), noise=True)
        assert 25_000 < len(first) < 40_000
        status, body = await http.upload(PARTICIPANT, first, kind="image/png")
        assert status == 201, body
        second = photo((100, 100), noise=True)
        status, body = await http.upload(mint(ROOM, sub="ben"), second, kind="image/png")
        assert status == 409 and body["error"]["code"] == "image_quota_exceeded"
        status, body = await http.upload(PARTICIPANT, photo((8, 8)))
        assert status == 429 and body["error"]["code"] == "rate_limited"
    metrics = srv.app.metrics.render().decode()
    for limit in ("image_size", "image_quota", "image_uploads"):
        assert f'collab_limit_refusals_total{{limit="{limit}"}} 1.0' in metrics, limit


class NoImages:
    """A store written elsewhere that keeps no images (no BlobStore methods)."""

    _BLOBS = {"put_blob", "get_blob", "list_blobs", "delete_blobs", "list_documents"}

    def __init__(self, inner: MemoryStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in self._BLOBS:
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_a_store_without_images_says_so():
    settings = settings_from(None, {}, dev=False, jwt_secret=SECRET, port=0)
    app = create_app(settings, store=NoImages(MemoryStore()))  # type: ignore[arg-type]
    runner = web.AppRunner(app.web_app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with aiohttp.ClientSession() as session:
            http = Http(f"http://127.0.0.1:{runner.addresses[0][1]}", session)
            status, body = await http.upload(PARTICIPANT, photo())
            assert status == 501 and body["error"]["code"] == "images_unavailable"
    finally:
        await runner.cleanup()


def image_shape(digest: str, x: float = 0) -> Map:
    return Map({"type": "image", "x": x, "y": 0, "w": 120, "h": 80, "src": digest})


async def test_redaction_deletes_an_image_no_other_shape_shows(http, token_server, client_factory):
    fac = await client_factory(token_server.url, ROOM, auth={"token": FACILITATOR})
    _, a = await http.upload(PARTICIPANT, photo((30, 30)))
    _, b = await http.upload(PARTICIPANT, photo((40, 40)))
    shapes = fac.doc.get("shapes", type=Map)
    shapes["a1"] = image_shape(a["id"])
    shapes["a2"] = image_shape(a["id"], 200)  # the same picture twice
    shapes["b1"] = image_shape(b["id"])
    board = token_server.registry.rooms[ROOM].docs["board"]
    await until(lambda: len(board.engine.read_map("shapes")) == 3, what="the shapes arrived")
    store = token_server.registry.store

    await fac.call("mod:redact-shape", {"shapeId": "b1"})
    assert await store.get_blob(ROOM, b["id"]) is None, "no shape shows it any more"
    status, _, _ = await http.image(OBSERVER, b["id"])
    assert status == 404

    await fac.call("mod:redact-shape", {"shapeId": "a1"})
    assert await store.get_blob(ROOM, a["id"]) is not None, "a2 still shows it"
    await fac.call("mod:redact-shape", {"shapeId": "a2"})
    assert await store.get_blob(ROOM, a["id"]) is None


async def test_deleting_the_room_deletes_its_images(http, token_server):
    _, body = await http.upload(PARTICIPANT, photo())
    store = token_server.registry.store
    async with http.session.get(f"{token_server.url}{PATH}", headers=bearer(ADMIN_KEY)) as r:
        info = await r.json()
    assert info["images"] == 1 and info["imageBytes"] == body["bytes"]
    async with http.session.delete(f"{token_server.url}{PATH}", headers=bearer(ADMIN_KEY)) as r:
        assert r.status == 200
    assert await store.get_blob(ROOM, body["id"]) is None
    assert await store.list_blobs(ROOM) == []


async def test_retention_purges_a_room_with_images(http, token_server):
    _, body = await http.upload(PARTICIPANT, photo())
    registry = token_server.registry
    await until(lambda: ROOM not in registry.rooms or not registry.rooms[ROOM].in_use)
    assert ROOM in [i.room for i in await registry.store.list_room_infos()], (
        "the upload kept a record"
    )
    real = registry.clock_ms
    registry.clock_ms = lambda: real() + 400 * 86_400_000.0
    try:
        assert ROOM in await registry.purge_expired()
    finally:
        registry.clock_ms = real
    assert await registry.store.get_blob(ROOM, body["id"]) is None


async def test_an_unload_collects_images_no_shape_shows(
    server_factory, client_factory, monkeypatch
):
    monkeypatch.setattr(blobs, "COLLECT_GRACE_MS", 0.0)
    srv = await server_factory(dev=False, jwt_secret=SECRET, unload_after_s=0.1)
    async with aiohttp.ClientSession() as session:
        http = Http(srv.url, session)
        _, shown = await http.upload(PARTICIPANT, photo((30, 30)))
        _, dropped = await http.upload(PARTICIPANT, photo((40, 40)))
        client = await client_factory(srv.url, ROOM, auth={"token": PARTICIPANT})
        client.doc.get("shapes", type=Map)["s"] = image_shape(shown["id"])
        board = srv.registry.rooms[ROOM].docs["board"]
        await until(lambda: "s" in board.engine.read_map("shapes"), what="the shape arrived")
        await client.close()
        await until(lambda: ROOM not in srv.registry.rooms, what="the room unloaded")
    store = srv.registry.store
    assert await store.get_blob(ROOM, shown["id"]) is not None
    assert await store.get_blob(ROOM, dropped["id"]) is None


async def test_exports_carry_the_images(http, token_server, client_factory):
    import base64
    from xml.etree import ElementTree

    from tests.integration.test_admin_api import check

    _, body = await http.upload(PARTICIPANT, photo())
    check("Image", body)
    fac = await client_factory(token_server.url, ROOM, auth={"token": FACILITATOR})
    fac.doc.get("shapes", type=Map)["pic"] = image_shape(body["id"], 50)
    board = token_server.registry.rooms[ROOM].docs["board"]
    await until(lambda: "pic" in board.engine.read_map("shapes"), what="the shape arrived")
    stored, _ = await token_server.registry.store.get_blob(ROOM, body["id"])
    url = f"{token_server.url}{PATH}/export"
    async with http.session.get(url, params={"format": "json"}, headers=bearer(FACILITATOR)) as r:
        assert r.status == 200
        exported = await r.json()
    check("Export", exported)
    (shape,) = exported["board"]["shapes"]
    assert shape["type"] == "image" and shape["src"] == body["id"]
    assert base64.b64decode(exported["board"]["images"][body["id"]]["data"]) == stored
    async with http.session.get(url, params={"format": "svg"}, headers=bearer(ADMIN_KEY)) as r:
        assert r.status == 200 and "img-src data:" in r.headers["Content-Security-Policy"]
        svg = ElementTree.fromstring(await r.text())
    (image,) = svg.iter("{http://www.w3.org/2000/svg}image")
    assert (image.get("x"), image.get("width"), image.get("height")) == ("50", "120", "80")
    assert base64.b64decode(image.get("href", "").split(",", 1)[1]) == stored


async def test_an_unload_keeps_restore_points_and_the_images_they_show(
    server_factory, client_factory, monkeypatch
):
    """A restore point's state is a blob no shape names, and so may be an
    image only a restore point's board shows (it was deleted since): the
    unload's collection keeps both (a restore brings the shape back)."""
    monkeypatch.setattr(blobs, "COLLECT_GRACE_MS", 0.0)
    srv = await server_factory(
        dev=False, jwt_secret=SECRET, unload_after_s=0.1, restore_interval_s=0
    )
    facilitator = mint(ROOM, role="facilitator", name="Fac", sub="fac")
    async with aiohttp.ClientSession() as session:
        http = Http(srv.url, session)
        _, past = await http.upload(PARTICIPANT, photo((30, 30)))
        client = await client_factory(srv.url, ROOM, auth={"token": facilitator})
        shapes = client.doc.get("shapes", type=Map)
        shapes["s"] = image_shape(past["id"])
        board = srv.registry.rooms[ROOM].docs["board"]
        await until(lambda: "s" in board.engine.read_map("shapes"), what="the shape arrived")
        point = (await client.call("mod:restore-point", {}))["point"]
        shapes.pop("s")
        await until(lambda: not board.engine.read_map("shapes"), what="the shape deleted")
        await client.close()
        await until(lambda: ROOM not in srv.registry.rooms, what="the room unloaded")
    store = srv.registry.store
    assert await store.get_blob(ROOM, past["id"]) is not None
    assert await store.get_blob(ROOM, point["digest"]) is not None
