"""A facilitator's live controls over people and shapes (protocol.md §6.3):
role overrides (``mod:role``) that the affected page follows from
``room:state.roles`` (§6.4) without reconnecting, shape redaction
(``mod:redact-shape``), and the export button's refusal of a prefix token
(§10.1)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.conftest import SECRET, mint
from tests.procs import CollabNode

ROOM = "clinic-7/roles"
OBSERVER_BANNER = "A facilitator made you an observer"
#: The warning a refused board change shows (session.js REFUSED): the server
#: saw a change it had to refuse, which the page should not have sent.
SERVER_REFUSED = re.compile("cannot change the board|was not saved")

#: Counts the WebSockets a page opens (``window.socketsOpened``).
COUNT_SOCKETS = """
window.socketsOpened = 0
const NativeWebSocket = window.WebSocket
window.WebSocket = class extends NativeWebSocket {
  constructor (...args) {
    super(...args)
    window.socketsOpened++
  }
}
"""


async def join_both(browsers: Browsers, collab: CollabNode) -> tuple[SessionPage, SessionPage]:
    facilitator = SessionPage(await browsers.page())
    participant = SessionPage(await browsers.page())
    await participant.page.add_init_script(COUNT_SOCKETS)
    await facilitator.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await participant.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    return facilitator, participant


async def sockets_opened(s: SessionPage) -> int:
    return int(await s.page.evaluate("window.socketsOpened"))


async def add_sticky(s: SessionPage, at: tuple[float, float], text: str) -> None:
    await s.tool("Sticky note").click()
    await s.page.mouse.click(*await s.board_point(*at))
    editor = s.page.get_by_role("textbox", name="Edit text")
    await expect(editor).to_be_focused()
    await editor.fill(text)
    await s.page.keyboard.press("Escape")


async def test_participant_made_observer_and_back_without_reconnecting(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac, par = await join_both(browsers, collab)
    people = fac.page.get_by_role("list", name="People in this session")
    ann = people.locator(".person", has_text="Ann")
    await expect(ann).to_contain_text("Participant")
    # Board, chat and meta: the connections that must stay up throughout.
    assert await sockets_opened(par) == 3
    await par.draw_rect((0.1, 0.2), (0.25, 0.4))
    await expect(fac.shapes("rect")).to_have_count(1)

    # No role control for a facilitator (oneself here), one for the participant.
    await expect(
        people.locator(".person", has_text="Dr. Kim").locator(".role-button")
    ).to_have_count(0)
    await fac.page.get_by_role("button", name="Make observer: Ann").click()

    # The participant's page follows room:state at once: banner, tools, chat.
    await expect(par.banner("observer")).to_contain_text(OBSERVER_BANNER, timeout=3000)
    await expect(par.toast("made you an observer")).to_be_visible()
    await expect(par.tool("Pen")).to_be_disabled()
    await expect(par.tool("Rectangle")).to_be_disabled()
    await expect(par.chat_input).to_be_disabled()
    await expect(par.page.get_by_role("button", name="Send message")).to_be_disabled()
    await expect(par.page.locator(".chat-notice")).to_contain_text("Observers can read the chat")
    await expect(par.page.locator(".whoami .role-badge")).to_have_text("Observer")
    await expect(par.status).to_have_attribute("data-state", "synced")
    # The facilitator sees the new role, marked as set in this session, and the way back.
    await expect(ann.locator(".role-badge")).to_contain_text("Observer")
    await expect(ann.locator(".role-badge.role-overridden")).to_have_count(1)
    await expect(fac.page.get_by_role("button", name="Make participant: Ann")).to_be_visible()
    await expect(fac.page.get_by_role("button", name="Mute Ann")).to_have_count(0)

    # Drawing attempts are stopped in the page: a shortcut points at the
    # banner that says why (no error), a drag on the board draws nothing, and
    # nothing reaches the server.
    await par.board.focus()
    await par.page.keyboard.press("r")
    await expect(par.banner("observer")).to_have_attribute("data-attention", "1")
    await par.drag((0.5, 0.5), (0.7, 0.7))
    await par.page.keyboard.press("Delete")
    await par.page.keyboard.press("Control+z")
    await expect(par.shapes()).to_have_count(1)
    await expect(fac.shapes()).to_have_count(1)
    # A round trip through the server: the facilitator's next shape arrives
    # after anything the observer might have sent, and nothing was refused.
    await fac.draw_rect((0.6, 0.1), (0.7, 0.2))
    await expect(par.shapes("rect")).to_have_count(2)
    await expect(par.toast(SERVER_REFUSED)).to_have_count(0)
    # Ann's presence was stamped again with the new role: her cursor, as the
    # facilitator sees it, is an observer's.
    cursor = fac.page.locator(".cursor", has_text="Ann")
    await expect(cursor).to_have_attribute("data-role", "observer")
    await browsers.screenshot(par.page, "made-observer")
    await browsers.screenshot(fac.page, "made-observer-facilitator")

    # Back to participant: drawing and chat work again, still without reconnecting.
    await fac.page.get_by_role("button", name="Make participant: Ann").click()
    await expect(par.banner("observer")).to_have_count(0, timeout=3000)
    await expect(par.toast("made you a participant")).to_be_visible()
    await expect(par.chat_input).to_be_enabled()
    await expect(par.page.locator(".whoami .role-badge")).to_have_text("Participant")
    await expect(ann.locator(".role-badge")).to_contain_text("Participant")
    await expect(fac.page.get_by_role("button", name="Make observer: Ann")).to_be_visible()
    await par.draw_rect((0.3, 0.6), (0.45, 0.8))
    await expect(fac.shapes("rect")).to_have_count(3)
    await par.send_chat("Back in the conversation")
    await expect(fac.chat_message("Back in the conversation")).to_contain_text("Ann")
    await expect(par.toast(SERVER_REFUSED)).to_have_count(0)
    assert await sockets_opened(par) == 3
    await expect(par.status).to_have_attribute("data-state", "synced")


async def test_facilitator_redacts_a_sticky_note(
    browsers: Browsers, collab: CollabNode, tmp_path: Path
) -> None:
    fac, par = await join_both(browsers, collab)
    marker = "REDACT-ME-7f3c9a"
    await add_sticky(par, (0.4, 0.45), marker + " private note")
    await add_sticky(par, (0.75, 0.45), "keep this one")
    for s in (fac, par):
        await expect(s.page.locator(".sticky-text", has_text=marker)).to_be_visible()
        await expect(s.shapes("sticky")).to_have_count(2)

    # Select the note: the facilitator's selection offers Redact; the dialog
    # says how it differs from a delete, and cancelling changes nothing.
    await fac.tool("Select").click()
    await fac.page.mouse.click(*await fac.board_point(0.4, 0.45))
    redact = fac.page.get_by_role("toolbar", name="Selection").get_by_role("button", name="Redact")
    await redact.click()
    dialog = fac.page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Unlike Delete")
    await expect(dialog).to_contain_text("for good")
    await browsers.screenshot(fac.page, "redact-dialog")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    await expect(par.shapes("sticky")).to_have_count(2)

    await redact.click()
    await fac.confirm("Redact shape")
    await expect(fac.toast("Shape redacted")).to_be_visible()
    for s in (fac, par):
        await expect(s.shapes("sticky")).to_have_count(1)
        await expect(s.page.get_by_text(marker)).to_have_count(0)
        await expect(s.page.locator(".sticky-text")).to_have_text("keep this one")
        assert marker not in await s.page.content()
    await expect(fac.page.get_by_role("toolbar", name="Selection")).to_be_hidden()
    # The other note by secondary click: the shape menu offers Redact too.
    await fac.page.mouse.click(*await fac.board_point(0.75, 0.45), button="right")
    menu = fac.page.get_by_role("menu", name="Shape actions")
    await expect(menu.get_by_role("menuitem", name="Delete shape")).to_be_visible()
    await browsers.screenshot(fac.page, "shape-menu")
    await menu.get_by_role("menuitem", name="Redact shape").click()
    await fac.confirm("Redact shape")
    for s in (fac, par):
        await expect(s.shapes("sticky")).to_have_count(0)

    # The author's undo and redo (their own creations and edits of both notes)
    # bring nothing back: undo acts at once on the page's copy, and a shape
    # drawn after shows that the server has seen whatever the keys sent.
    await par.board.focus()
    for key in ("Control+z",) * 4 + ("Control+Shift+z",) * 4:
        await par.page.keyboard.press(key)
    await expect(par.shapes("sticky")).to_have_count(0)
    await par.draw_rect((0.1, 0.7), (0.2, 0.85))
    await expect(fac.shapes("rect")).to_have_count(1)
    await expect(fac.shapes("sticky")).to_have_count(0)

    # Someone joining later syncs a board without the marker anywhere.
    late = SessionPage(await browsers.page())
    await late.join_from_lobby(collab.url, ROOM, "Late Lou", "participant")
    await expect(late.page.locator(".person", has_text="Ann")).to_be_visible()
    await expect(late.shapes("rect")).to_have_count(1)
    await expect(late.shapes()).to_have_count(1)
    assert marker not in await late.page.content()
    # Nor is it in the session's export.
    await fac.page.get_by_role("button", name="Export the session").click()
    async with fac.page.expect_download() as info:
        await fac.page.get_by_role("menuitem", name="Download JSON (everything)").click()
    path = tmp_path / "export.json"
    await (await info.value).save_as(path)
    exported = path.read_text()
    assert '"shapes"' in exported and marker not in exported


async def test_export_with_a_prefix_token_says_what_the_platform_must_do(
    browsers: Browsers, tmp_path: Path
) -> None:
    """Outside --dev, with a facilitator token for ``clinic-7/*``: the session
    works, the export is refused (403 permission_denied) and the page says
    that the platform must mint a token for the exact room."""
    node = CollabNode(
        tmp_path,
        "--jwt-secret",
        SECRET,
        "--store",
        "sqlite",
        "--log-level",
        "warning",
        node_id="tokens",
    )
    await node.start()
    try:
        token = mint("clinic-7/*", role="facilitator", name="Dr. Kim", sub="dr-kim")
        context = await browsers.context()
        entry = json.dumps({"token": token})
        # The platform's hand-over, as the dev lobby would store it (only on the
        # server's pages: about:blank has no storage).
        await context.add_init_script(
            f"if (location.origin === {json.dumps(node.url)}) "
            f"sessionStorage.setItem({json.dumps('collab:token:' + ROOM)}, {json.dumps(entry)})"
        )
        s = SessionPage(await context.new_page())
        await s.page.goto(node.url + "/r/clinic-7/roles")
        await s.wait_synced()
        await s.page.get_by_role("button", name="Export the session").click()
        async with s.page.expect_response(re.compile(r"/export\?")) as info:
            await s.page.get_by_role("menuitem", name="Download JSON (everything)").click()
        response = await info.value
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "permission_denied"
        message = s.toast("exports need a token for this one room")
        await expect(message).to_be_visible()
        await expect(message).to_contain_text('a token for exactly "clinic-7/roles"')
        await browsers.screenshot(s.page, "export-prefix-token")
        # The one error this test causes, and only it, is shown to the user.
        log = context.log  # type: ignore[attr-defined]
        expected = [e for e in log.errors if "exports need a token for this one room" in e]
        assert len(expected) == 1, log.errors
        log.errors.remove(expected[0])
        # The browser reports the refused request itself as a console error.
        log.errors[:] = [
            e for e in log.errors if not ("Failed to load resource" in e and "403" in e)
        ]
    finally:
        await node.kill()
