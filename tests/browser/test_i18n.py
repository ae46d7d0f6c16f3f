"""Languages and time zones (issue 16): the locale from the embedding page's
handshake, else ``?lang=``, else the browser's languages; times in the viewer's
time zone, on the chat and in the Markdown transcript."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from playwright.async_api import Page, expect

from tests.browser.conftest import Browsers, dev_token
from tests.browser.session import SessionPage
from tests.procs import CollabNode, free_port

ROOM = "clinica-7/grupo-a"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def join_in_spanish(
    page: Page, url: str, name: str = "Ana", role: str = "participant"
) -> None:
    """The dev join form of a session page, in Spanish; waits until synced."""
    await page.goto(url)
    await page.get_by_label("Tu nombre").fill(name)
    await page.get_by_label("Rol").select_option(role)
    await page.get_by_role("button", name="Entrar en la sesión").click()
    await expect(page.locator(".conn-status")).to_have_attribute("data-state", "synced")


async def expect_spanish(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    tools = page.get_by_role("toolbar", name="Herramientas de dibujo")
    for label in ("Seleccionar", "Lápiz", "Rectángulo", "Nota adhesiva", "Borrador"):
        await expect(tools.get_by_role("button", name=label, exact=True)).to_be_visible()
    await expect(page.get_by_role("textbox", name="Mensaje")).to_have_attribute(
        "placeholder", "Escribe un mensaje…"
    )
    await expect(page.locator("#people-title")).to_contain_text("Personas")
    await expect(page.locator(".conn-status")).to_contain_text("Sincronizado")
    # Nothing of the English interface is left.
    await expect(page.get_by_role("toolbar", name="Drawing tools")).to_have_count(0)
    await expect(page.get_by_text("Write a message…")).to_have_count(0)


async def test_lang_parameter_gives_spanish(browsers: Browsers, collab: CollabNode) -> None:
    page = await browsers.page()  # an English browser
    await page.goto(collab.url + "/?lang=es")
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    await page.get_by_label("Sala").fill(ROOM)
    await page.get_by_label("Tu nombre").fill("Ana")
    await page.get_by_role("button", name="Entrar en la sesión").click()
    # The lobby hands ?lang= on to the session.
    await page.wait_for_url(re.compile(re.escape(f"/r/{ROOM}?lang=es") + "$"))
    await expect(page.locator(".conn-status")).to_have_attribute("data-state", "synced")
    await expect_spanish(page)

    # Plural forms and the help, in Spanish.
    tools = page.get_by_role("toolbar", name="Herramientas de dibujo")
    await tools.get_by_role("button", name="Rectángulo", exact=True).click()
    await page.get_by_role("application", name=re.compile("^Pizarra")).press("Enter")
    summary = page.locator(".visually-hidden", has_text="1 forma en la pizarra")
    await expect(summary).to_have_count(1)
    await page.keyboard.press("Escape")
    await page.get_by_role("button", name="Atajos de teclado y ayuda").click()
    heading = page.get_by_role("dialog").get_by_role("heading")
    await expect(heading).to_have_text("Atajos de teclado")
    await page.get_by_role("dialog").get_by_role("button", name="Cerrar").click()
    await browsers.screenshot(page, "spanish")


async def test_a_spanish_browser_gets_spanish(browsers: Browsers, collab: CollabNode) -> None:
    page = await browsers.page(locale="es-ES")
    await join_in_spanish(page, f"{collab.url}/r/{ROOM}")
    await expect_spanish(page)

    # ?lang= wins over the browser.
    english = await browsers.page(locale="es-ES")
    await english.goto(f"{collab.url}/r/{ROOM}?lang=en")
    await expect(english.locator("html")).to_have_attribute("lang", "en")
    await expect(english.get_by_label("Your name")).to_be_visible()


async def test_chat_times_and_the_transcript_are_in_the_viewers_time_zone(
    browsers: Browsers, collab: CollabNode, tmp_path: Path
) -> None:
    zone = "Asia/Kolkata"  # +05:30: neither UTC nor a whole hour away from it
    page = await browsers.page(locale="en-GB", timezone_id=zone)
    await page.goto(f"{collab.url}/r/{ROOM}")
    await page.get_by_label("Your name").fill("Dr Rao")
    await page.get_by_label("Role").select_option("facilitator")
    await page.get_by_role("button", name="Join session").click()
    session = SessionPage(page)
    await session.wait_synced()
    await session.send_chat("namaste")

    time = session.chat_message("namaste").locator("time")
    stamp = await time.get_attribute("datetime")
    assert stamp is not None
    local = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    await expect(time).to_have_text(f"{local:%H:%M}")

    # The transcript the web app downloads has the same local time, with its offset.
    await page.get_by_role("button", name="Export the session").click()
    async with page.expect_download() as info:
        await page.get_by_role("menuitem", name="Download chat transcript (Markdown)").click()
    download = await info.value
    path = tmp_path / download.suggested_filename
    await download.save_as(path)
    transcript = path.read_text(encoding="utf-8")
    assert f"**Dr Rao** (facilitator) · {local:%Y-%m-%d %H:%M} (+05:30)" in transcript
    # The zone as the browser names it (Chromium's ICU may say Asia/Calcutta).
    assert re.search(r"times in Asia/(Kolkata|Calcutta)", transcript), transcript


HOST_PAGE = """<!doctype html>
<html lang="es"><head><meta charset="utf-8"><title>Plataforma</title>
<link rel="icon" href="data:,"></head>
<body>
<iframe id="collab" title="Pizarra y chat" src="%(collab)s/r/%(room)s"
        width="1100" height="620"></iframe>
<script>
  const COLLAB = %(collab_json)s
  const frame = document.getElementById('collab')
  window.addEventListener('message', (event) => {
    if (event.origin !== COLLAB || event.source !== frame.contentWindow) return
    if (!event.data || event.data.type !== 'collab:ready') return
    frame.contentWindow.postMessage(
      { type: 'collab:token', token: %(token_json)s,
        locale: 'es', timeZone: 'America/Mexico_City' }, COLLAB)
  })
</script>
</body></html>
"""


async def test_the_embed_handshake_sets_language_and_time_zone(
    browsers: Browsers, collab_factory
) -> None:
    host_port = free_port()
    host_origin = f"http://127.0.0.1:{host_port}"
    collab: CollabNode = await collab_factory("--frame-ancestors", f"'self',{host_origin}")
    token = await dev_token(collab.url, ROOM, "Lucía", "participant")
    host_html = HOST_PAGE % {
        "collab": collab.url,
        "collab_json": json.dumps(collab.url),
        "room": ROOM,
        "token_json": json.dumps(token),
    }

    async def host(request: web.Request) -> web.Response:
        return web.Response(text=host_html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/host.html", host)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", host_port).start()
    try:
        # An English browser in UTC: the platform's choice wins.
        page = await browsers.page(locale="en-US", timezone_id="UTC")
        await page.goto(host_origin + "/host.html")
        frame = page.frame_locator("#collab")
        await expect(frame.locator(".conn-status")).to_have_attribute("data-state", "synced")
        await expect(frame.locator("html")).to_have_attribute("lang", "es")
        await expect(frame.get_by_role("toolbar", name="Herramientas de dibujo")).to_be_visible()
        await expect(frame.locator(".person", has_text="Lucía")).to_contain_text("(tú)")

        message = frame.get_by_role("textbox", name="Mensaje")
        await message.fill("hola")
        await message.press("Enter")
        time = (
            frame.locator("li.chat-message:not(.pending)").filter(has_text="hola").locator("time")
        )
        await expect(time).to_have_attribute("datetime", ISO_UTC)
        stamp = await time.get_attribute("datetime")
        assert stamp is not None
        local = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(
            ZoneInfo("America/Mexico_City")
        )
        await expect(time).to_have_text(f"{local:%H:%M}")
        await browsers.screenshot(page, "embedded-spanish")
    finally:
        await runner.cleanup()
