"""Two people in one session: a facilitator and a participant, each in their
own browser context, against one ``collab serve --dev`` process."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "clinic-7/group-a"


async def join_both(browsers: Browsers, collab: CollabNode) -> tuple[SessionPage, SessionPage]:
    facilitator = SessionPage(await browsers.page())
    participant = SessionPage(await browsers.page())
    await facilitator.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await participant.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    return facilitator, participant


async def test_draw_chat_lock_mute_redact_and_reload(browsers: Browsers, collab: CollabNode):
    fac, par = await join_both(browsers, collab)

    # Presence: each sees the other, with their role.
    await expect(fac.page.locator(".person", has_text="Ann")).to_contain_text("Participant")
    await expect(par.page.locator(".person", has_text="Dr. Kim")).to_contain_text("Facilitator")

    # A rectangle, then a freehand stroke that the facilitator sees while it is drawn.
    await par.draw_rect((0.15, 0.3), (0.35, 0.55))
    await expect(fac.shapes("rect")).to_have_count(1)
    await par.tool("Pen").click()
    mouse = par.page.mouse
    await mouse.move(*await par.board_point(0.5, 0.3))
    await mouse.down()
    await mouse.move(*await par.board_point(0.6, 0.45), steps=8)
    await expect(fac.shapes("pen")).to_have_count(1)  # still drawing
    await mouse.move(*await par.board_point(0.7, 0.35), steps=8)
    await mouse.up()
    # Both points of the stroke reached the facilitator (a path through the end).
    end_x, _ = await par.board_point(0.7, 0.35)
    pen = fac.shapes("pen")
    await expect(pen).to_have_attribute("d", re.compile(r"L[\d.]+ [\d.]+$"))
    box = await pen.bounding_box()
    assert box is not None and abs(box["x"] + box["width"] - end_x) < 12, box
    # The participant's live cursor, with their name.
    await expect(fac.page.locator(".cursor", has_text="Ann")).to_be_visible()

    # Chat both ways, with author and role.
    await par.send_chat("Hello from Ann")
    await fac.send_chat("Welcome, Ann")
    await expect(fac.chat_message("Hello from Ann")).to_contain_text("Participant")
    await expect(par.chat_message("Welcome, Ann")).to_contain_text("Dr. Kim")
    await expect(par.chat_message("Welcome, Ann")).to_contain_text("Facilitator")

    # Unread count while the participant's panel is collapsed.
    await par.page.get_by_role("button", name="Hide chat and people").click()
    await fac.send_chat("Are you there?")
    toggle = par.page.get_by_role("button", name="Show chat and people (1 unread)")
    await expect(toggle).to_be_visible()
    await expect(toggle.locator(".badge")).to_have_text("1")
    await toggle.click()
    await expect(par.chat_message("Are you there?")).to_be_visible()
    await expect(par.page.locator(".panel-toggle .badge")).to_be_hidden()

    await browsers.screenshot(fac.page, "session-facilitator")
    await browsers.screenshot(par.page, "session-participant")

    # Lock: the participant sees it, cannot pick a tool, and nothing is drawn.
    await fac.page.get_by_role("button", name="Lock the board").click()
    await expect(par.banner("locked")).to_be_visible()
    await expect(fac.page.get_by_role("button", name="Unlock the board")).to_be_visible()
    await expect(par.tool("Rectangle")).to_be_disabled()
    await par.board.focus()
    await par.page.keyboard.press("r")
    # The banner says why (pointed at again), once: no toast besides it.
    await expect(par.banner("locked")).to_have_attribute("data-attention", "1")
    await expect(par.toast("locked")).to_have_count(0)
    await par.drag((0.4, 0.6), (0.6, 0.8))
    await expect(par.shapes()).to_have_count(2)
    # The facilitator still draws while the board is locked.
    await fac.draw_rect((0.7, 0.6), (0.85, 0.8))
    await expect(par.shapes("rect")).to_have_count(2)

    # Mute: the participant sees why they cannot send.
    await fac.page.get_by_role("button", name="Mute Ann").click()
    await expect(par.chat_input).to_be_disabled()
    await expect(par.page.locator(".chat-notice")).to_contain_text("muted you")
    await expect(par.banner("muted")).to_be_visible()

    # Redaction: the message disappears for both.
    await fac.page.get_by_role("button", name="Remove message from Ann").click()
    await fac.confirm("Remove message")
    for page in (fac, par):
        await expect(page.page.get_by_text("Hello from Ann")).to_have_count(0)
        await expect(page.page.locator(".chat-text.removed")).to_have_text("message removed")

    await browsers.screenshot(fac.page, "moderated-facilitator")
    await browsers.screenshot(par.page, "moderated-participant")

    # A reload keeps the board, the chat and the room's state.
    await par.page.reload()
    await par.wait_synced()
    await expect(par.shapes("rect")).to_have_count(2)
    await expect(par.shapes("pen")).to_have_count(1)
    await expect(par.page.locator(".chat-text.removed")).to_have_text("message removed")
    await expect(par.chat_message("Welcome, Ann")).to_be_visible()
    await expect(par.banner("locked")).to_be_visible()
    await expect(par.chat_input).to_be_disabled()
    await browsers.screenshot(par.page, "reloaded-participant")


async def test_offline_edits_sync_on_reconnect(browsers: Browsers, collab: CollabNode):
    fac, par = await join_both(browsers, collab)
    context = par.page.context

    await context.set_offline(True)
    await expect(par.status).to_have_attribute("data-state", "offline")
    await expect(par.status).to_contain_text("Offline")
    await par.draw_rect((0.2, 0.2), (0.4, 0.4))
    await par.draw_pen([(0.5, 0.5), (0.6, 0.6), (0.7, 0.5)])
    await expect(par.shapes()).to_have_count(2)
    await browsers.screenshot(par.page, "offline-participant")
    await context.set_offline(False)
    await par.wait_synced()
    await expect(fac.shapes("rect")).to_have_count(1)
    await expect(fac.shapes("pen")).to_have_count(1)
    # The participant is back in the facilitator's list of people.
    await expect(fac.page.locator(".person", has_text="Ann")).to_be_visible()

    # Edits made offline while the facilitator locked the board are refused
    # by the server when they arrive, and the participant is told.
    await context.set_offline(True)
    await expect(par.status).to_have_attribute("data-state", "offline")
    await par.draw_rect((0.6, 0.1), (0.8, 0.3))
    await expect(par.shapes("rect")).to_have_count(2)
    await fac.page.get_by_role("button", name="Lock the board").click()
    await expect(fac.banner("locked")).to_be_visible()
    await context.set_offline(False)
    await expect(par.toast("not saved")).to_be_visible()
    await expect(par.banner("locked")).to_be_visible()
    await par.wait_synced()
    await expect(par.shapes("rect")).to_have_count(1)
    await expect(fac.shapes("rect")).to_have_count(1)


async def test_export_observer_remove_and_end(browsers: Browsers, collab: CollabNode, tmp_path):
    fac, par = await join_both(browsers, collab)
    obs = SessionPage(await browsers.page())
    await obs.join_from_lobby(collab.url, ROOM, "Olga", "observer")
    await par.draw_rect((0.2, 0.2), (0.4, 0.4))
    await par.send_chat("Notes for the record")
    await expect(fac.shapes("rect")).to_have_count(1)

    # Only the facilitator has the controls.
    await expect(par.page.get_by_role("group", name="Facilitator controls")).to_be_hidden()
    export = fac.page.get_by_role("button", name="Export the session")
    contents = {}
    for label, suffix in (
        ("Download JSON (everything)", ".json"),
        ("Download chat transcript (Markdown)", ".md"),
        ("Download board (SVG)", ".svg"),
    ):
        await export.click()
        async with fac.page.expect_download() as info:
            await fac.page.get_by_role("menuitem", name=label).click()
        download = await info.value
        assert download.suggested_filename == "clinic-7_group-a" + suffix
        path = tmp_path / download.suggested_filename
        await download.save_as(path)
        contents[suffix] = path.read_text()
    assert '"type": "rect"' in contents[".json"] or '"type":"rect"' in contents[".json"]
    assert "Notes for the record" in contents[".json"]
    assert "Notes for the record" in contents[".md"] and "Ann" in contents[".md"]
    assert "<svg" in contents[".svg"] and "<rect" in contents[".svg"]

    # An observer sees the board and chat read-only, and is seen by the others.
    await expect(obs.banner("observer")).to_be_visible()
    await expect(obs.tool("Pen")).to_be_disabled()
    await expect(obs.chat_input).to_be_disabled()
    await expect(obs.shapes("rect")).to_have_count(1)
    await expect(obs.chat_message("Notes for the record")).to_be_visible()
    await expect(fac.page.locator(".person", has_text="Olga")).to_contain_text("Observer")
    # Removed: the observer is told and disconnected; the facilitator can readmit.
    await fac.page.get_by_role("button", name="Remove Olga from the session").click()
    await fac.confirm("Remove Olga")
    blocker = obs.page.get_by_role("alertdialog")
    await expect(blocker).to_contain_text("A facilitator removed you from this session.")
    await expect(obs.status).to_have_attribute("data-state", "blocked")
    present = fac.page.get_by_role("list", name="People in this session")
    await expect(present.locator(".person", has_text="Olga")).to_have_count(0)
    await expect(fac.page.get_by_role("button", name="Readmit Olga")).to_be_visible()
    await browsers.screenshot(obs.page, "removed-observer")

    # End: everyone sees it; the board and chat are read-only.
    await fac.page.get_by_role("button", name="End the session for everyone").click()
    await fac.confirm("End session")
    for page in (fac, par):
        await expect(page.banner("ended")).to_be_visible()
        await expect(page.chat_input).to_be_disabled()
        await expect(page.tool("Pen")).to_be_disabled()
    await browsers.screenshot(par.page, "ended-participant")
