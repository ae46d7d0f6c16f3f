"""Embedding: a platform page on another loopback origin frames the session
and hands it the token with ``postMessage``; a message from any other origin
is ignored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from playwright.async_api import expect

from tests.browser.conftest import Browsers, dev_token
from tests.procs import CollabNode, free_port

ROOM = "clinic-7/embedded"

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Platform</title>
<link rel="icon" href="data:,"></head>
<body>
<h1>Group session</h1>
<iframe id="collab" title="Whiteboard and chat" src="%(collab)s/r/%(room)s"
        width="1100" height="620" style="border:1px solid #ccc"></iframe>
<iframe id="other" title="Another site" src="%(other)s/other.html" width="200" height="40"></iframe>
<script>
  // The platform's side of the handshake (README, "Embedding").
  const COLLAB = %(collab_json)s
  const frame = document.getElementById('collab')
  window.readies = 0
  window.handOver = false
  window.addEventListener('message', (event) => {
    if (event.origin !== COLLAB || event.source !== frame.contentWindow) return
    if (!event.data || event.data.type !== 'collab:ready') return
    window.readies++
    if (window.handOver) {
      frame.contentWindow.postMessage({ type: 'collab:token', token: %(token_json)s }, COLLAB)
    }
  })
</script>
</body></html>
"""

OTHER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Other</title>
<link rel="icon" href="data:,"></head><body>other</body></html>
"""


async def serve_pages(pages: dict[str, str]) -> tuple[web.AppRunner, str]:
    """A plain HTTP server on a free loopback port: another origin."""

    def handler(body: str):  # type: ignore[no-untyped-def]
        async def respond(request: web.Request) -> web.Response:
            return web.Response(text=body, content_type="text/html")

        return respond

    app = web.Application()
    for path, body in pages.items():
        app.router.add_get(path, handler(body))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def other_origin() -> AsyncIterator[str]:
    runner, url = await serve_pages({"/other.html": OTHER_PAGE})
    yield url
    await runner.cleanup()


async def test_platform_hands_the_token_to_the_frame(
    browsers: Browsers, collab_factory, other_origin: str
):
    host_port = free_port()
    host_origin = f"http://127.0.0.1:{host_port}"
    collab: CollabNode = await collab_factory("--frame-ancestors", f"'self',{host_origin}")
    token = await dev_token(collab.url, ROOM, "Ann", "participant")
    forged = await dev_token(collab.url, ROOM, "Mallory", "facilitator")
    host_html = HOST_PAGE % {
        "collab": collab.url,
        "collab_json": json.dumps(collab.url),
        "room": ROOM,
        "other": other_origin,
        "token_json": json.dumps(token),
    }
    app = web.Application()

    async def host(request: web.Request) -> web.Response:
        return web.Response(text=host_html, content_type="text/html")

    app.router.add_get("/host.html", host)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", host_port).start()
    try:
        page = await browsers.page()
        await page.goto(host_origin + "/host.html")
        frame = page.frame_locator("#collab")
        # The frame asks its parent for a token and waits.
        await page.wait_for_function("window.readies >= 1")
        await expect(frame.get_by_text("Waiting for the platform")).to_be_visible()

        # Another origin (a sibling frame) sends a token: ignored.
        other = page.frame(url=other_origin + "/other.html")
        assert other is not None
        await other.evaluate(
            "(token) => parent.frames[0].postMessage({type: 'collab:token', token}, '*')",
            forged,
        )
        # The frame keeps asking (it stops once it accepted a token).
        seen = await page.evaluate("window.readies")
        await page.wait_for_function(f"window.readies >= {seen + 2}")
        await expect(frame.get_by_text("Waiting for the platform")).to_be_visible()
        await expect(frame.get_by_text("Mallory")).to_have_count(0)

        # The platform answers: the session opens with its user.
        await page.evaluate("window.handOver = true")
        status = frame.locator(".conn-status")
        await expect(status).to_have_attribute("data-state", "synced")
        await expect(frame.locator(".person", has_text="Ann")).to_contain_text("(you)")
        await expect(frame.get_by_text("Mallory")).to_have_count(0)
        session = page.frame(url=collab.url + "/r/" + ROOM)
        assert session is not None and "token" not in session.url
        await browsers.screenshot(page, "embedded")
    finally:
        await runner.cleanup()
